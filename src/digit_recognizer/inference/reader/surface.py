"""The paper's brightness under strokes too fat for any opening that still follows the lighting.

A fat marker's digit can fill most of its frame: a grey opening wide enough to pass over the strokes (see
`background.Coarse.stroke_opening`) spans the whole image and returns the darkest paper everywhere, so a lighting
gradient or a vignette across the page is left as grey "ink" around and inside the strokes. Here the paper is
measured where it shows, beside the strokes, and a smooth surface (a quadratic in x and y: a gradient, a
vignette, a broad shadow) fitted to it by least squares is carried under them.

    paper_surface(small (h, w) ink bright, flat (h, w) the opening's estimate, params) -> (h, w) | None

The strokes are left out of the fit (what stands above p.surface_stroke of the ink level, its p.surface_ink
percentile, grown by p.surface_edge of the shorter side so that their soft edges are left out too); it is fitted
twice, the second time without the pixels further than p.surface_outliers robust standard deviations from the
first fit (dust, a stroke's faint tail, JPEG ringing).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .masks import grown
from .stats import MAD_TO_SIGMA, median, percentile

if TYPE_CHECKING:
    from .params import Background

MIN_FIT = 6  # pixels: a quadratic in x and y has 6 coefficients


TERMS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))  # the quadratic's terms x^a y^b as (a, b)


@lru_cache(maxsize=16)
def powers(n: int) -> np.ndarray:
    """(n, 5) float64: t^0..t^4 at n points spread evenly over -1..1 (x along a row, y down a column)."""
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1) * 2 - 1
    return np.stack([np.ones_like(t), t, t * t, t * t * t, t * t * t * t], -1)


def moments(weights: np.ndarray, px: np.ndarray, py: np.ndarray, degree: int) -> np.ndarray:
    """(degree+1, degree+1): m[b, a] = sum of weights * x^a * y^b over the image, by two small matrix products
    (the sums of the normal equations, without a row per pixel)."""
    return py[:, :degree + 1].T @ (weights @ px[:, :degree + 1])


def surface(coef: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """(h, w) float64: the quadratic sum(coef[k] * x^a * y^b) at every pixel."""
    c = np.zeros((3, 3))
    for k, (a, b) in enumerate(TERMS):
        c[b, a] = coef[k]
    return py[:, :3] @ c @ px[:, :3].T


def paper_surface(small: np.ndarray, flat: np.ndarray, p: "Background") -> np.ndarray | None:
    """A quadratic surface fitted to the paper of `small` (ink bright, coarse px) where it shows between and
    around the strokes, found as what stands less than p.surface_stroke of the ink level above `flat`; clipped to the
    range of the paper it was fitted to, so that it does not run away under a wide stroke. None when too little
    paper shows for a fit (a crop the strokes fill)."""
    h, w = small.shape
    if min(h, w) < 3:
        return None
    y = small - flat
    level = percentile(y, p.surface_ink)
    if level <= 0:
        return None
    grow = max(1, int(round(p.surface_edge * min(h, w))))
    paper = ~grown(y > p.surface_stroke * level, grow)
    if paper.sum() < max(MIN_FIT, p.surface_min_paper * paper.size):
        return None
    px, py, values = powers(w), powers(h), small.astype(np.float64)  # values (h, w)
    keep = paper
    for _ in range(2):  # least squares by the normal equations: 6 unknowns, thousands of pixels
        weights = keep.astype(np.float64)
        m4, m2 = moments(weights, px, py, 4), moments(weights * values, px, py, 2)
        normal = np.array([[m4[bi + bj, ai + aj] for aj, bj in TERMS] for ai, bi in TERMS])
        coef = np.linalg.lstsq(normal, np.array([m2[b, a] for a, b in TERMS]), rcond=None)[0]
        residual = values - surface(coef, px, py)
        spread = MAD_TO_SIGMA * median(np.abs(residual[keep])) + 1e-6
        keep = paper & (np.abs(residual) <= p.surface_outliers * spread)
        if keep.sum() < MIN_FIT:
            return None
    seen = values[paper]
    return np.clip(surface(coef, px, py), seen.min(), seen.max()).astype(np.float32)
