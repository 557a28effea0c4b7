"""Int8 inference: a network quantized with activation ranges measured once, on training images, at training time.

The ranges travel in the model JSON ("int8_ranges"), so loading an int8 model needs no data. Kernels are
PyTorch's x86 quantized engine (oneDNN/FBGEMM with AVX512-VNNI where the CPU has it): tutorial CNN, 10,000
test images on 2 Zen 4 cores, 0.25 s against 0.39-0.80 s in bf16 and 0.68 s in fp32, with the same accuracy.
"""
from __future__ import annotations

import contextlib
import copy
import math
import threading
import warnings
from typing import Any, Iterator

import torch
from torch import nn

from ..constants import IMAGE_SIZE
from ..errors import DigitsError
from ..models.net import Net
from .device import int8_is_available

CALIBRATION_IMAGES = 2048  # training images run through the observers (more moved no range measurably)
CALIBRATION_BATCH = 256
# torch.ao.quantization announces its move to torchao (DeprecationWarning) and its observers ask for
# quant_min/quant_max (UserWarning) on every build; only these are silenced, around our own calls.
QUIET_WARNINGS = ((DeprecationWarning, r"torch\.ao\.quantization"), (UserWarning, r"Please use quant_min"),
                  (UserWarning, r"torch\.quantize_per_tensor"), (DeprecationWarning, r"`torch\.jit\."),
                  (Warning, r"Converting a tensor to a Python"))  # the last: a scale read once, as a constant
PROBE_BATCHES = (1, 3)  # images a frozen graph must answer exactly as the module does before it replaces it
# A torch.fx setting that only some releases have (2.13 does, 2.11 does not): read by name, never assumed.
FX_NO_STACK_TRACES = "do_not_emit_stack_traces"
_FX_SETTINGS = threading.Lock()  # torch.fx's config is process-wide; the server quantizes from worker threads


class _Body(nn.Module):
    """The network after its input normalisation, with each ReLU back before its pool (so conv+ReLU fuse)."""

    def __init__(self, net: Net):
        super().__init__()
        layers = list(copy.deepcopy(net.features))
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.MaxPool2d) and isinstance(layers[i + 1], nn.ReLU):
                layers[i], layers[i + 1] = layers[i + 1], layers[i]  # max commutes with ReLU: same function
        self.features = nn.Sequential(*layers)
        self.head = copy.deepcopy(net.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Int8Net(nn.Module):
    """Same interface as Net: (B, 1, 28, 28) pixels 0..255 -> float32 logits (B, 10)."""

    device = torch.device("cpu")  # int8 runs on the CPU only (engine.device_of)

    def __init__(self, net: Net, body: nn.Module):
        super().__init__()
        self.normalize = net.normalize  # float, before the first quantize: cheaper than quantized mul/sub
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x).contiguous())


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for category, message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


@contextlib.contextmanager
def no_fx_stack_traces() -> Iterator[None]:
    """No stack traces on FX-traced nodes: symbolizing them imports torch._inductor, 1.8 of the 2.1 s it took
    to build the shipped model's int8 network. The setting exists only in some PyTorch releases (2.13 has it,
    2.11 does not); where it is missing, tracing is just slower."""
    try:
        import torch.fx.config as fx_config
    except ImportError:
        fx_config = None
    if not hasattr(fx_config, FX_NO_STACK_TRACES):
        yield
        return
    with _FX_SETTINGS:
        saved = getattr(fx_config, FX_NO_STACK_TRACES)
        setattr(fx_config, FX_NO_STACK_TRACES, True)
        try:
            yield
        finally:
            setattr(fx_config, FX_NO_STACK_TRACES, saved)


def _prepared(net: Net) -> torch.fx.GraphModule:
    with quiet():
        from torch.ao.quantization import QConfig, QConfigMapping
        from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver
        from torch.ao.quantization.quantize_fx import prepare_fx

    # Min/max activation ranges (a pair of floats per tensor, storable in JSON); symmetric per-channel weights.
    # Tutorial CNN after 2 epochs: 6 of the 10,000 test argmaxes changed against fp32, 11 with the default
    # histogram observer.
    qconfig = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8),
                      weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                                qscheme=torch.per_channel_symmetric))
    body = _Body(net).float().to(memory_format=torch.contiguous_format).eval()
    example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    with no_fx_stack_traces(), quiet():
        return prepare_fx(body, QConfigMapping().set_global(qconfig), (example,))


def _observers(prepared: nn.Module) -> dict[str, Any]:
    from torch.ao.quantization.observer import MinMaxObserver
    return {name: m for name, m in prepared.named_modules() if type(m) is MinMaxObserver}


@torch.no_grad()
def activation_ranges(net: Net, images: torch.Tensor) -> dict[str, list[float]] | None:
    """Min and max of every quantized activation over `images` (N, 28, 28) uint8 -> {observer: [min, max]};
    None where this PyTorch has no int8 engine (the model then predicts in fp32 or bf16)."""
    if not int8_is_available():
        return None
    prepared = _prepared(net)
    x = images[:CALIBRATION_IMAGES].reshape(-1, 1, *images.shape[-2:])
    for i in range(0, len(x), CALIBRATION_BATCH):
        prepared(net.normalize(x[i:i + CALIBRATION_BATCH]))
    return {name: [obs.min_val.item(), obs.max_val.item()] for name, obs in _observers(prepared).items()}


def quantize(net: Net, ranges: dict[str, Any], where: str = "model") -> Int8Net:
    """The int8 network for `net`, from ranges recorded by activation_ranges."""
    with quiet():
        from torch.ao.quantization.quantize_fx import convert_fx
    prepared = _prepared(net)
    observers = _observers(prepared)
    if not isinstance(ranges, dict) or set(ranges) != set(observers):
        raise DigitsError(f"{where}: its int8 ranges do not match this network (retrain, or use precision fp32)")
    for name, obs in observers.items():
        pair = ranges[name]
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
                and pair[0] <= pair[1]):
            raise DigitsError(f"{where}: bad int8 range for {name}: {pair!r} (expected [min, max])")
        obs.min_val, obs.max_val = torch.tensor(float(pair[0])), torch.tensor(float(pair[1]))
    with quiet():
        body = convert_fx(prepared)
    return Int8Net(net, frozen(body)).eval()


def frozen(body: nn.Module) -> nn.Module:
    """The converted body traced into one TorchScript graph and frozen: its packed weights become constants, so a
    call costs the kernels, not a Python module call and an attribute look-up per layer (shipped model, one
    image on a Zen 4 core: 0.37 -> 0.11 ms; the trace takes about 50 ms, once). TorchScript is deprecated in
    recent PyTorch releases and has no replacement that builds this fast; where it is missing or fails, or
    where the graph answers differently from the module on probe images, the module itself is used."""
    g = torch.Generator().manual_seed(0)
    probes = [torch.randn(n, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g) for n in PROBE_BATCHES]  # normalized pixels
    try:
        with quiet(), torch.no_grad():
            graph = torch.jit.freeze(torch.jit.trace(body, probes[0], check_trace=False).eval())
            if all(torch.equal(graph(x), body(x)) for x in probes):
                return graph
    except Exception:  # noqa: BLE001 - any failure of an optional speed-up leaves the module in place
        pass
    return body
