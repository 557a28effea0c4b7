"""Batch-level geometric augmentation: one random affine warp per image, applied as a single grid_sample."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float, scale: float,
                  shift: float) -> torch.Tensor:
    """x: (B, 1, H, W) float pixels. Rotation in degrees, scale as +/- fraction, shift as fraction of size."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen) * 2 - 1  # (B, 4) in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1.0 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # affine_grid maps output coords to input coords in [-1, 1] units, so a shift of f*size is 2*f.
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * 2 * shift], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_stroke(x: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """Thicken (a thick marker) or thin (a fine pen) a random share p of the images' strokes by one pixel.

    x: (B, 1, H, W) float pixels, ink bright. A 3x3 max-pool dilates the ink; a min-pool erodes it.
    """
    u = torch.rand(x.shape[0], generator=gen)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    # Erosion can wipe out thin digits entirely; keep at least half the ink's peak by mixing.
    thin = 0.5 * (thin + x)
    pick = u.view(-1, 1, 1, 1)
    return torch.where(pick < p / 2, thick, torch.where(pick < p, thin, x))
