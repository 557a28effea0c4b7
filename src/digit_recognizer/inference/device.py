"""The device and precision policy: which device runs the work (`--device auto|cpu|cuda|cuda:N|mps`), what
this machine's CPU and PyTorch build can do, and which arithmetic (fp32, bf16, int8) a forward pass uses on
that device. Asked in ways that work on every supported PyTorch release.

PyTorch's own CPU-feature probes (`torch.cpu._is_vnni_supported` and friends) are private and come and go
between releases, so each one is used only when present, with the kernel's CPU flags as the fallback.
"""
from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import DigitsError, DigitsWarning

if TYPE_CHECKING:
    import torch

ENGINE = "x86"  # PyTorch's quantized engine for int8 (oneDNN/FBGEMM, VNNI where the CPU has it)

# Our name for a CPU feature -> (PyTorch's private probe, the Linux /proc/cpuinfo flags that mean it).
CPU_FEATURES = {
    "avx512_bf16": ("_is_avx512_bf16_supported", ("avx512_bf16",)),
    "amx_tile": ("_is_amx_tile_supported", ("amx_tile",)),
    "vnni": ("_is_vnni_supported", ("avx512_vnni",)),
}
CPUINFO = Path("/proc/cpuinfo")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
AUTO_ORDER = ("cuda", "mps", "cpu")  # what `auto` picks: the first available


def device_available(kind: str) -> bool:
    import torch

    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return kind == "cpu"


def resolve_device(spec: str | None = "auto") -> torch.device:
    """'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps' -> a torch.device that is usable
    here, or a one-line error that names the device and why it is not."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device(next(k for k in AUTO_ORDER if device_available(k)))
    kind, _, index = spec.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise DigitsError(f"unknown device '{spec}' (choose from {DEVICE_CHOICES})")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA: a CPU-only build"
            raise DigitsError(f"device '{spec}' is not available: no CUDA GPU is visible to PyTorch "
                              f"{torch.__version__} ({build}); use --device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise DigitsError(f"device '{spec}' is not available: this machine has {count} CUDA GPU(s), "
                              f"cuda:0 to cuda:{count - 1}")
        return torch.device(spec)
    if not device_available(kind):
        raise DigitsError(f"device '{kind}' is not available here (MPS needs an Apple-silicon Mac); "
                          "use --device cpu")
    return torch.device(kind)


def describe_device(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (NVIDIA H200)': for logs and the model file's training record."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.lru_cache(maxsize=None)
def cpuinfo_flags() -> frozenset[str]:
    """The CPU flags the Linux kernel reports (empty elsewhere, or when unreadable)."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_has(feature: str) -> bool:
    """Whether the CPU has `feature` (a key of CPU_FEATURES): PyTorch's probe where this release has it."""
    import torch

    probe, flags = CPU_FEATURES[feature]
    fn = getattr(getattr(torch, "cpu", None), probe, None)
    if callable(fn):
        try:
            return bool(fn())
        except (RuntimeError, OSError):
            pass  # a probe that exists but cannot answer here: fall back to the kernel's flags
    return any(f in cpuinfo_flags() for f in flags)


@functools.lru_cache(maxsize=None)
def cpu_bf16_is_native() -> bool:
    """Whether bf16 convolutions run natively on this CPU (oneDNN with AVX512-BF16 or AMX).

    On an AVX2-only CPU, bf16 autocast is emulated and about 7x slower than fp32 (measured). This is about
    the CPU only: a CUDA build or a GPU in the machine does not change it.
    """
    import torch

    return torch.backends.mkldnn.is_available() and (cpu_has("avx512_bf16") or cpu_has("amx_tile"))


@functools.lru_cache(maxsize=None)
def int8_is_available() -> bool:
    """Whether PyTorch's x86 quantized engine is in use and its FX graph-mode quantization is importable
    (the int8 precision setting needs both; later PyTorch releases move it to the torchao package)."""
    import torch

    try:
        import torch.ao.quantization.quantize_fx  # noqa: F401
    except ImportError:
        return False
    return ENGINE in torch.backends.quantized.supported_engines and torch.backends.quantized.engine == ENGINE


@functools.lru_cache(maxsize=None)
def int8_is_fast() -> bool:
    """Whether int8 runs on VNNI dot products here. Without VNNI the kernels fall back to 16-bit
    intermediate sums, which can saturate with full-range (8-bit) activations like ours."""
    return int8_is_available() and cpu_has("vnni")


# Below this many images, bf16 casts cost more than they save. int8 on VNNI pays from one image on: the shipped
# net, one thread, AMD EPYC Zen 4, PyTorch 2.13: 1 image 0.29 ms in int8 against 0.40 ms in fp32, 2 images 0.45
# against 0.58 (benchmarks/reader_speed.py times the whole predict); and one image is read as in a batch.
BF16_MIN_BATCH = 64

TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
PRECISIONS = (*TRAIN_PRECISIONS, "int8")  # int8 is inference only, for models that carry int8 ranges


def check_precision(precision: str, choices: Sequence[str] = PRECISIONS) -> str:
    if precision not in choices:
        raise DigitsError(f"unknown precision '{precision}' (choose from {', '.join(choices)})")
    return precision


@functools.lru_cache(maxsize=None)
def warn_once(message: str) -> None:
    import warnings

    warnings.warn(message, DigitsWarning, stacklevel=4)


EMULATED_BF16 = ("bf16 is emulated on this CPU (it has neither AVX512-BF16 nor AMX): several times slower than "
                 "fp32 (about 7x measured); precision auto avoids it")
INT8_WITHOUT_VNNI = ("int8 on a CPU without VNNI: the kernels sum in 16 bits, which can saturate and cost accuracy; "
                     "precision auto avoids it")


def check_forced(precision: str, device_type: str) -> None:
    """Warn once when a forced precision lacks the CPU feature that makes it pay."""
    if device_type != "cpu":
        return
    if precision == "bf16" and not cpu_bf16_is_native():
        warn_once(EMULATED_BF16)
    if precision == "int8" and int8_is_available() and not cpu_has("vnni"):
        warn_once(INT8_WITHOUT_VNNI)


def bf16_is_native(device_type: str = "cpu") -> bool:
    """Whether bf16 runs natively on this kind of device: the CPU's own features on the CPU, the GPU's on CUDA
    (Ampere and later); MPS stays in fp32."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device_type == "cpu" and cpu_bf16_is_native()


def use_bf16(precision: str, device_type: str = "cpu") -> bool:
    """Resolve a training precision ('auto' = bf16 where it is native on the device) to whether to autocast."""
    check_precision(precision, TRAIN_PRECISIONS)
    check_forced(precision, device_type)
    return precision == "bf16" or (precision == "auto" and bf16_is_native(device_type))


def engine(precision: str, rows: int, has_int8: bool, device_type: str = "cpu") -> str:
    """The arithmetic for a forward pass of `rows` images on a device: "fp32", "bf16" or "int8".

    "auto" on the CPU: int8 when the model carries int8 ranges and the CPU has PyTorch's x86 quantized engine
    with VNNI (any number of images, so that an image gets the same answer alone as in a batch); else fp32
    below BF16_MIN_BATCH images, and above, bf16 where the CPU runs it natively, else fp32.
    "auto" on a GPU: bf16 where the GPU runs it natively, else fp32. int8 is CPU-only.
    """
    check_precision(precision)
    if precision == "int8" and device_type != "cpu":
        raise DigitsError(f"int8 runs on the CPU only, not on {device_type}; use --device cpu, or precision "
                          "auto, fp32 or bf16")
    if precision == "int8" and not has_int8:
        raise DigitsError("this model carries no int8 ranges (models trained before int8 support do not); "
                          "retrain it, or use precision auto, fp32 or bf16")
    if precision == "int8" and not int8_is_available():
        raise DigitsError("int8 needs PyTorch's x86 quantized engine, which this PyTorch build lacks")
    if precision != "auto":
        check_forced(precision, device_type)
        return precision
    if device_type != "cpu":
        return "bf16" if bf16_is_native(device_type) else "fp32"
    if has_int8 and int8_is_fast():
        return "int8"
    if rows < BF16_MIN_BATCH:
        return "fp32"
    return "bf16" if cpu_bf16_is_native() else "fp32"


def autocast(enabled: bool, device_type: str = "cpu", cache: bool = True):
    """bf16 autocast where enabled; `cache=False` leaves out its weight cache, which a CUDA graph capture cannot
    hold."""
    import torch

    return (torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=cache) if enabled
            else contextlib.nullcontext())
