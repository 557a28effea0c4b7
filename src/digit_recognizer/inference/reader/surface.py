"""The paper's brightness under strokes too fat for any opening that still follows the lighting.

A fat marker's digit can fill most of its frame: a grey opening wide enough to pass over the strokes (see
`background.Coarse.stroke_opening`) spans the whole image and returns the darkest paper everywhere, so a lighting
gradient or a vignette across the page is left as grey "ink" around and inside the strokes. Here the paper is
measured where it shows, beside the strokes, and a smooth surface (a quadratic in x and y: a gradient, a
vignette, a broad shadow) fitted to it by least squares is carried under them.

    paper_surface(small (h, w) ink bright, flat (h, w) the opening's estimate, params) -> (h, w) | None

The strokes are left out of the fit (what stands above p.surface_stroke of the ink level, the 99th percentile,
grown by p.surface_edge of the shorter side so that their soft edges are left out too); it is fitted twice, the
second time without the pixels further than p.surface_outliers robust standard deviations from the first fit
(dust, a stroke's faint tail, JPEG ringing).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .ops import grown, percentile

if TYPE_CHECKING:
    from .params import Background

MIN_FIT = 6  # pixels: a quadratic in x and y has 6 coefficients
PERCENTILE_INK = 99  # the ink level of what stands above the opening


@lru_cache(maxsize=16)
def design(h: int, w: int) -> np.ndarray:
    """(h*w, 6): 1, x, y, x^2, xy, y^2 at every pixel, x and y in -1..1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = (xx / max(w - 1, 1)) * 2 - 1
    v = (yy / max(h - 1, 1)) * 2 - 1
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], -1).reshape(-1, 6)


def paper_surface(small: np.ndarray, flat: np.ndarray, p: "Background") -> np.ndarray | None:
    """A quadratic surface fitted to the paper of `small` (ink bright, coarse px) where it shows between and
    around the strokes, found as what stands less than p.surface_stroke of the ink level above `flat`; clipped to the
    range of the paper it was fitted to, so that it does not run away under a wide stroke. None when too little
    paper shows for a fit (a crop the strokes fill)."""
    h, w = small.shape
    if min(h, w) < 3:
        return None
    y = small - flat
    level = percentile(y, PERCENTILE_INK)
    if level <= 0:
        return None
    grow = max(1, int(round(p.surface_edge * min(h, w))))
    paper = ~grown(y > p.surface_stroke * level, grow)
    if paper.sum() < max(MIN_FIT, p.surface_min_paper * paper.size):
        return None
    a, values = design(h, w), small.ravel().astype(np.float64)
    keep = paper.ravel()
    for _ in range(2):
        fit = a[keep]  # least squares by the normal equations: 6 unknowns, thousands of pixels
        coef = np.linalg.lstsq(fit.T @ fit, fit.T @ values[keep], rcond=None)[0]
        residual = values - a @ coef
        spread = 1.4826 * float(np.median(np.abs(residual[keep]))) + 1e-6
        keep = paper.ravel() & (np.abs(residual) <= p.surface_outliers * spread)
        if keep.sum() < MIN_FIT:
            return None
    seen = values[paper.ravel()]
    return np.clip(a @ coef, seen.min(), seen.max()).reshape(h, w).astype(np.float32)
