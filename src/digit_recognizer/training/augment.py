"""Batch-level geometric augmentation: one random affine warp per image, applied as a single grid_sample."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..constants import PIXEL_MAX
from ..inference.reader import PARAMS

WIDENED = (0.5, 0.75)  # draws of the squeeze coin in this range widen the digit (a quarter of them)


def extent(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, 1, H, W) -> the ink's (width, height) in px, each (B,); at least 1."""
    def span(seen: torch.Tensor) -> torch.Tensor:  # (B, L) bool -> (B,)
        idx = torch.arange(seen.shape[1], device=seen.device)
        first = torch.where(seen, idx, seen.shape[1]).amin(1)
        last = torch.where(seen, idx, -1).amax(1)
        return (last - first + 1).clamp(min=1).float()

    ink = x[:, 0] > PARAMS.ink.seen * PIXEL_MAX  # (B, H, W): the digit's extent, as the reader sees ink
    return span(ink.any(1)), span(ink.any(2))


def widened(x: torch.Tensor, factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x scale, y scale), each (B,), that show digits widened `factor` times as the reader shows a flat digit:
    the longer side kept, a digit flatter than fit.max_aspect raised to it (inference.reader.fit.placed)."""
    w, h = extent(x)
    raised = torch.clamp(factor * w / (PARAMS.fit.max_aspect * h), min=1.0)  # the reader's height stretch
    fit = torch.maximum(h, w) / torch.maximum(raised * h, factor * w)
    return factor * fit, raised * fit


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float, scale: float,
                  shift: float, squeeze: float = 0.0, widen: float = 0.0) -> torch.Tensor:
    """x: (B, 1, H, W) float pixels. Rotation in degrees, scale as +/- fraction, shift as fraction of size;
    `squeeze` narrows a random half of the digits to between exp(-squeeze) and 1 of their width (tall, thin
    handwriting); `widen` widens a quarter to 1..exp(widen) times theirs, fitted back as the reader fits them
    (a flat 7 dashed off, a squashed 4)."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen, device=gen.device) * 2 - 1  # (B, 4) in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1.0 + u[:, 1] * scale
    width, height = torch.ones_like(s), torch.ones_like(s)
    if squeeze or widen:
        v = torch.rand(b, 2, generator=gen, device=gen.device)  # drawn only when asked: old streams unchanged
        width = torch.where(v[:, 0] < 0.5, torch.exp(-squeeze * v[:, 1]), width)
        if widen:
            wide_x, wide_y = widened(x, torch.exp(widen * v[:, 1]))
            flat = (v[:, 0] >= WIDENED[0]) & (v[:, 0] < WIDENED[1])
            width, height = torch.where(flat, wide_x, width), torch.where(flat, wide_y, height)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # Output x is stretched by `width` and y by `height`: the input coordinate moves 1/width as fast along
    # output x (the output x column of theta), 1/height along output y.
    # affine_grid maps output coords to input coords in [-1, 1] units, so a shift of f*size is 2*f.
    theta = torch.stack([torch.stack([cos / width, -sin / height, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin / width, cos / height, u[:, 3] * 2 * shift], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_stroke(x: torch.Tensor, gen: torch.Generator, p: float, bold: float = 0.0) -> torch.Tensor:
    """Thicken (a thick marker) or thin (a fine pen) a random share p of the images' strokes by one pixel,
    and draw a share `bold` of them with a fat marker (two pixels thicker: small loops close up).

    x: (B, 1, H, W) float pixels, ink bright. A 3x3 max-pool dilates the ink; a min-pool erodes it.
    """
    if bold:
        fat = F.max_pool2d(x, 5, stride=1, padding=2)
        x = torch.where(torch.rand(x.shape[0], generator=gen, device=gen.device).view(-1, 1, 1, 1) < bold, fat, x)
    u = torch.rand(x.shape[0], generator=gen, device=gen.device)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    # Erosion can wipe out thin digits entirely; keep at least half the ink's peak by mixing.
    thin = 0.5 * (thin + x)
    pick = u.view(-1, 1, 1, 1)
    return torch.where(pick < p / 2, thick, torch.where(pick < p, thin, x))


def random_slant(x: torch.Tensor, gen: torch.Generator, degrees: float) -> torch.Tensor:
    """Slant a random half of the images (B, 1, H, W) by up to `degrees` either way, as a forward- or a
    back-slanted hand writes: a shear about the centre, scaled down so that the slanted digit keeps its longer
    side (the reader fits the longer side into its box)."""
    b = x.shape[0]
    v = torch.rand(b, 2, generator=gen, device=gen.device)  # (B, 2): whether, and how far
    k = torch.where(v[:, 0] < 0.5, (v[:, 1] * 2 - 1) * math.tan(math.radians(degrees)), 0.0)  # x shift per y
    w, h = extent(x)
    fit = torch.maximum(h, w) / torch.maximum(h, w + k.abs() * h)  # (B,) <= 1
    zero = torch.zeros_like(k)
    # Output (x, y) reads the input at ((x - k y) / fit, y / fit): the slanted digit, shrunk to fit.
    theta = torch.stack([torch.stack([1 / fit, -k / fit, zero], 1),
                         torch.stack([zero, 1 / fit, zero], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
