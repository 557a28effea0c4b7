"""CNN architectures as named, frozen configs. Every network takes raw pixels and normalises them itself.

A `layers` spec reads left to right: "cN" = 3x3 conv to N channels (+BatchNorm if enabled) + ReLU,
"sN" = the same with a 4x4 stride-2 conv (halves the size: the receptive field of a 3x3 conv and 2x2 pool,
at a quarter of the positions), "p" = 2x2 max-pool. Sizes of later layers are derived from the spec and
IMAGE_SIZE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..constants import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES, PIXEL_MAX
from ..errors import DigitsError


STRIDED_KERNEL, STRIDED_PADDING = 4, 1  # "sN" layers: 28x28 -> 14x14


@dataclass(frozen=True)
class ModelConfig:
    name: str
    layers: tuple[str, ...]
    hidden: tuple[int, ...] = (100,)  # widths of the dense layers before the output
    padding: int = 0  # conv padding: 0 = 'valid' as in Keras, 1 = 'same'
    batchnorm: bool = False
    dropout: float = 0.0  # before each dense layer
    # With batchnorm: conv -> pool -> BatchNorm -> ReLU (as airbench), so BatchNorm and ReLU see a quarter of the
    # elements. Not the same function as pooling after BatchNorm (a negative BatchNorm scale turns max into min).
    pool_before_bn: bool = False
    # Inputs are pixels in [0, 255]; the network computes (x / 255 - mean) / std.
    mean: float = 0.0
    std: float = 1.0


ARCHITECTURES = {
    # The tutorial's Keras CNN, layer for layer: 159,254 parameters, inputs scaled to [0, 1].
    "tutorial": ModelConfig("tutorial", ("c32", "p", "c64", "c64", "p"), hidden=(100,)),
    # Small and BatchNorm-ed: few FLOPs per image (CPU training is compute-bound), >99.2% in two epochs.
    # The dense layer costs 1% of the FLOPs and gained 0.1-0.2 points of validation accuracy. The strided
    # first layer and pooling before BatchNorm made a training step 1.3x faster than 3x3 conv + BatchNorm +
    # pool at 28x28, with the same validation accuracy over 5 seeds (99.09% vs 99.10%).
    "fast": ModelConfig("fast", ("s16", "c32", "p", "c64", "p"), hidden=(128,), padding=1, batchnorm=True,
                        pool_before_bn=True, mean=MNIST_MEAN, std=MNIST_STD),
    # Twice the fast net's channels and a wider dense layer for the best-accuracy recipe. Built like the fast
    # net: an epoch took 10.4-10.9 s instead of 13 s, and 36 epochs matched 30 of the earlier 3x3-conv-first
    # version on validation (74 vs 73 errors over 3 seeds; 71 vs 71 with shifted views) in the same time.
    "wide": ModelConfig("wide", ("s32", "c64", "p", "c128", "p"), hidden=(256,), padding=1, batchnorm=True,
                        pool_before_bn=True, mean=MNIST_MEAN, std=MNIST_STD),
    # An et al. 2020's M3 ("An Ensemble of Simple Convolutional Neural Network Models for MNIST"): ten unpadded
    # 3x3 conv + BatchNorm + ReLU layers, 16 channels wider each, no pooling (28x28 -> 8x8), straight into the
    # output layer; about 99.8% alone in their 150 epochs. 23x the wide net's multiply-adds: a GPU's net.
    "deep": ModelConfig("deep", tuple(f"c{32 + 16 * k}" for k in range(10)), hidden=(), padding=0,
                        batchnorm=True, mean=MNIST_MEAN, std=MNIST_STD),
}


def get_architecture(name: str) -> ModelConfig:
    if name not in ARCHITECTURES:
        raise DigitsError(f"unknown model '{name}' (choose from {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


class Net(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        feats: list[nn.Module] = []
        channels, size = 1, IMAGE_SIZE
        for spec in cfg.layers:
            if spec == "p":
                # Pool before the preceding ReLU: the same function (max commutes with ReLU) on a quarter of
                # the elements, 5% faster per tutorial training step; module indices are unchanged.
                at = len(feats) - 1 if feats and isinstance(feats[-1], nn.ReLU) else len(feats)
                if cfg.pool_before_bn and at > 0 and isinstance(feats[at - 1], nn.BatchNorm2d):
                    at -= 1
                feats.insert(at, nn.MaxPool2d(2))
                size //= 2
            elif spec[:1] in ("c", "s") and spec[1:].isdigit():
                out = int(spec[1:])
                if spec[0] == "c":
                    feats.append(nn.Conv2d(channels, out, 3, padding=cfg.padding, bias=not cfg.batchnorm))
                    size = size - 2 + 2 * cfg.padding
                else:
                    feats.append(nn.Conv2d(channels, out, STRIDED_KERNEL, stride=2, padding=STRIDED_PADDING,
                                           bias=not cfg.batchnorm))
                    size = (size + 2 * STRIDED_PADDING - STRIDED_KERNEL) // 2 + 1
                if cfg.batchnorm:
                    feats.append(nn.BatchNorm2d(out))
                feats.append(nn.ReLU(inplace=True))
                channels = out
            else:
                raise DigitsError(f"model '{cfg.name}': bad layer spec '{spec}'")
            if size < 1:
                raise DigitsError(f"model '{cfg.name}': the layers shrink a {IMAGE_SIZE}x{IMAGE_SIZE} image to "
                                  f"nothing at '{spec}'")
        self.features = nn.Sequential(*feats)
        head: list[nn.Module] = [nn.Flatten()]
        width = channels * size * size
        for h in cfg.hidden:
            head += [nn.Dropout(cfg.dropout)] if cfg.dropout else []
            head += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        head += [nn.Dropout(cfg.dropout)] if cfg.dropout else []
        head.append(nn.Linear(width, NUM_CLASSES))
        self.head = nn.Sequential(*head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # As Keras: he_uniform kernels for ReLU layers, glorot_uniform for the output, zero biases.
        linears = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for m in linears:
            if m is linears[-1]:
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 1, 28, 28) pixels in [0, 255], any dtype -> float32 (x / 255 - mean) / std
        return (x.float() * (1.0 / (PIXEL_MAX * self.cfg.std))) - (self.cfg.mean / self.cfg.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, 28, 28) pixels in [0, 255], any dtype -> logits (B, 10)
        return self.head(self.features(self.normalize(x)))


# Bounds a model description must keep before anything is allocated for it (a file may come from anyone):
# far above any net that fits MNIST, far below what would exhaust a machine's memory.
MAX_LAYERS = 32
MAX_CHANNELS = 2048
MAX_HIDDEN_LAYERS = 8
MAX_HIDDEN = 16384
MAX_PARAMETERS = 50_000_000  # 200 MB of float32 weights
MAX_SPEC_CHARS = 8


def check_config(cfg: ModelConfig, where: str = "architecture") -> None:
    """Refuse a config outside the bounds above, or one whose layers shrink the image to nothing, in one line,
    before a single weight is allocated. The parameter count is taken from a weightless (meta) copy."""
    def fail(why: str) -> None:
        raise DigitsError(f"{where}: {why}")

    if not 1 <= len(cfg.layers) <= MAX_LAYERS:
        fail(f"needs 1 to {MAX_LAYERS} layers, has {len(cfg.layers)}")
    for spec in cfg.layers:
        ok = spec == "p" or (len(spec) <= MAX_SPEC_CHARS and spec[:1] in ("c", "s") and spec[1:].isdigit()
                             and 1 <= int(spec[1:]) <= MAX_CHANNELS)
        if not ok:
            fail(f"bad layer spec {spec[:MAX_SPEC_CHARS]!r} (cN or sN with 1 <= N <= {MAX_CHANNELS}, or p)")
    if len(cfg.hidden) > MAX_HIDDEN_LAYERS or not all(1 <= h <= MAX_HIDDEN for h in cfg.hidden):
        fail(f"hidden widths must be 1 to {MAX_HIDDEN}, at most {MAX_HIDDEN_LAYERS} of them")
    if cfg.padding not in (0, 1):
        fail(f"padding must be 0 or 1, got {cfg.padding}")
    if not 0.0 <= cfg.dropout < 1.0:
        fail(f"dropout must be in [0, 1), got {cfg.dropout}")
    if not (math.isfinite(cfg.mean) and math.isfinite(cfg.std) and cfg.std > 0):
        fail("mean must be finite and std finite and positive")
    with torch.device("meta"):
        n = count_parameters(Net(cfg))
    if n > MAX_PARAMETERS:
        fail(f"{n:,} parameters exceed the {MAX_PARAMETERS:,} allowed")


def build_model(cfg: ModelConfig | str) -> Net:
    return Net(get_architecture(cfg) if isinstance(cfg, str) else cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module) -> int:
    """Floating-point operations of one image's forward pass through the convolutions and dense layers (2 per
    multiply-add; what PyTorch's FlopCounterMode counts for these nets, without the torch.compile machinery it
    imports, which costs training 1.3 s). Counted on one (1, 1, 28, 28) image."""
    macs: list[int] = []

    def count(m: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        per_output = m.weight[0].numel()  # multiply-adds per output value: (C_in / groups) * kH * kW, or in
        macs.append(per_output * out[0].numel())

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE, device=next(model.parameters()).device))  # (1, 1, 28, 28)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return 2 * sum(macs)
