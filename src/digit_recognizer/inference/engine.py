"""The one inference path from 28x28 uint8 images to class probabilities, shared by every caller."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..constants import NUM_CLASSES
from ..models.net import Net
from .device import autocast, engine

EVAL_BATCH = 256  # images per forward pass on a CPU: measured fastest of 32..10000 on 2 cores, fp32 and bf16
GPU_EVAL_BATCH = 10_000  # on a GPU one pass takes a whole test set (28x28 images are tiny)


def device_of(net: torch.nn.Module) -> torch.device:
    """Where a net's weights are; the CPU for one without parameters (int8 nets keep packed weights, and say so:
    looking for a parameter walks every module of one, 35 us a call)."""
    said = getattr(net, "device", None)
    if isinstance(said, torch.device):
        return said
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.inference_mode()
def logits(net: Net, images: torch.Tensor, *, bf16: bool = False, batch: int | None = None) -> torch.Tensor:
    """images (N, 28, 28) or (N, 1, 28, 28), pixels 0..255, on any device -> float32 logits (N, 10) on the
    images' device, computed on the net's."""
    device = device_of(net)
    batch = batch or (EVAL_BATCH if device.type == "cpu" else GPU_EVAL_BATCH)
    x = images.reshape(-1, 1, *images.shape[-2:])
    was_training = net.training
    if was_training:  # a loaded net is in eval mode already: no walk over its modules per call
        net.eval()
    try:
        out = []
        for i in range(0, len(x), batch):
            with autocast(bf16, device.type):
                out.append(net(x[i:i + batch].to(device, non_blocking=True)).float())
        if not out:
            return torch.empty(0, NUM_CLASSES, device=images.device)
        return (out[0] if len(out) == 1 else torch.cat(out)).to(images.device)
    finally:
        if was_training:
            net.train()


def tta_views(images: torch.Tensor, shift: int) -> list[torch.Tensor]:
    """The image and its four copies shifted by `shift` px right, left, down and up, zero-filled (test-time
    augmentation). Padding and slicing, so that an exported graph computes them too."""
    x = images.reshape(-1, 1, *images.shape[-2:])  # (N, 1, H, W)
    h, w = x.shape[-2:]
    s = shift
    return [x, F.pad(x, (s, 0))[..., :w], F.pad(x, (0, s))[..., s:], F.pad(x, (0, 0, s, 0))[..., :h, :],
            F.pad(x, (0, 0, 0, s))[..., s:, :]]


def scores(nets: Sequence[Net], images: torch.Tensor, *, temperatures: Sequence[float] | None = None,
           precision: str = "fp32", tta: bool = False,
           int8_nets: Callable[[int], Sequence[torch.nn.Module]] | None = None,
           cascade: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean calibrated softmax over ensemble members (and shifted views with tta) -> (N, 10), rows sum to 1, and
    each image's digit score (N,): the mean over the same members and views of logsumexp(logits / T), the
    negative of Liu et al.'s free energy (NeurIPS 2020). Trained with outlier exposure, a net gives marks that
    are not digits flat, low logits, so the score falls well below any digit's even where one class still wins
    the softmax (docs/experiments.md, "A learned score for not a digit").

    `int8_nets(k)` gives the first k members quantized (built on first use); see `engine` for what "auto" runs.
    Tutorial CNN, 10k test images on 2 Zen 4 cores: fp32 0.68 s, bf16 0.39-0.80 s, int8 0.23 s.
    With `cascade`, the first member alone reads each image (one view); the rows where its calibrated
    confidence stays under `cascade` are read again by every member with every view, and take that answer and
    score.
    """
    if cascade is None or (len(nets) == 1 and not tta):
        return averaged(nets, images, temperatures, precision, tta, int8_nets)
    temperatures = temperatures or [1.0] * len(nets)
    probs, score = averaged(nets[:1], images, temperatures[:1], precision, False, int8_nets)  # (N, 10), (N,)
    unsure = probs.amax(1) < cascade  # (N,) bool
    if unsure.any():  # images (N, 28, 28) or (N, 1, 28, 28): the rows are the first axis either way
        again, again_score = averaged(nets, images[unsure], temperatures, precision, tta, int8_nets)
        probs, score = probs.index_put((unsure,), again), score.index_put((unsure,), again_score)
    return probs, score


def probabilities(nets: Sequence[Net], images: torch.Tensor, **how: Any) -> torch.Tensor:
    """`scores`' probabilities alone (N, 10), for the callers that need no digit score."""
    return scores(nets, images, **how)[0]


def averaged(nets: Sequence[Net], images: torch.Tensor, temperatures: Sequence[float] | None, precision: str,
             tta: bool, int8_nets: Callable[[int], Sequence[torch.nn.Module]] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every member on every view of every image: their calibrated softmax averaged (N, 10), and their
    logsumexp of the calibrated logits averaged (N,)."""
    views = tta_views(images, 1) if tta else [images.reshape(-1, 1, *images.shape[-2:])]
    x = torch.cat(views) if len(views) > 1 else views[0]  # (V*N, 1, 28, 28): all views in the same passes
    # int8 nets are offered only for a model on the CPU: no walk over the net's parameters to find its device
    device_type = "cpu" if int8_nets is not None else device_of(nets[0]).type
    kind = engine(precision, len(x), int8_nets is not None, device_type)
    bf16 = kind == "bf16"
    if kind == "int8":
        nets = int8_nets(len(nets))
    temperatures = temperatures or [1.0] * len(nets)
    total = total_score = None
    for net, t in zip(nets, temperatures):
        z = logits(net, x, bf16=bf16) / t  # (V*N, 10)
        p, e = F.softmax(z, dim=1), torch.logsumexp(z, dim=1)
        if len(views) > 1:  # (V*N, 10) -> (N, 10), averaged over the views
            p, e = p.reshape(len(views), -1, NUM_CLASSES).mean(0), e.reshape(len(views), -1).mean(0)
        total, total_score = (p, e) if total is None else (total + p, total_score + e)
    if len(nets) > 1:
        total, total_score = total / len(nets), total_score / len(nets)
    return total, total_score
