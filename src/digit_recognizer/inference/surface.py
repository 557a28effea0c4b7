"""The paper's brightness under strokes too fat for any opening that still follows the lighting.

A fat marker's digit can fill most of its frame: a grey opening wide enough to pass over the strokes (see
`preprocess.stroke_opening`) spans the whole image and returns the darkest paper everywhere, so a lighting
gradient or a vignette across the page is left as grey "ink" around and inside the strokes. Here the paper is
measured where it shows, beside the strokes, and a smooth surface (a quadratic in x and y: a gradient, a
vignette, a broad shadow) fitted to it by least squares is carried under them.

    paper_surface(small (h, w) ink bright, flat (h, w) the opening's estimate) -> (h, w) | None
"""
from __future__ import annotations

import numpy as np

# The strokes, to be left out of the fit: above this share of the opening's ink level (its 99th percentile)...
STROKE_SHARE = 0.25
# ... grown by this share of the image's shorter side (coarse px), so that their soft edges are left out too.
EDGE_SHARE = 0.03
MIN_PAPER_SHARE = 0.05  # of the pixels: with less paper showing than this, nothing is fitted (None)
# Fitted twice: pixels further than this many robust standard deviations from the first fit (dust, a stroke's
# faint tail, JPEG ringing) are left out of the second.
OUTLIER_SIGMAS = 3.0


def design(h: int, w: int) -> np.ndarray:
    """(h*w, 6): 1, x, y, x^2, xy, y^2 at every pixel, x and y in -1..1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = (xx / max(w - 1, 1)) * 2 - 1
    v = (yy / max(h - 1, 1)) * 2 - 1
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], -1).reshape(-1, 6)


def paper_surface(small: np.ndarray, flat: np.ndarray) -> np.ndarray | None:
    """A quadratic surface fitted to the paper of `small` (ink bright, coarse px) where it shows between and
    around the strokes, found as what stands less than STROKE_SHARE of the ink level above `flat`; clipped to the
    range of the paper it was fitted to, so that it does not run away under a wide stroke. None when too little
    paper shows for a fit (a crop the strokes fill)."""
    from scipy import ndimage

    h, w = small.shape
    if min(h, w) < 3:
        return None
    y = small - flat
    level = float(np.percentile(y, 99))
    if level <= 0:
        return None
    grow = max(1, int(round(EDGE_SHARE * min(h, w))))
    paper = ~ndimage.binary_dilation(y > STROKE_SHARE * level, iterations=grow)
    if paper.sum() < max(6, MIN_PAPER_SHARE * paper.size):
        return None
    a, values = design(h, w), small.ravel().astype(np.float64)
    keep = paper.ravel()
    for _ in range(2):
        coef = np.linalg.lstsq(a[keep], values[keep], rcond=None)[0]
        residual = values - a @ coef
        spread = 1.4826 * float(np.median(np.abs(residual[keep]))) + 1e-6
        keep = paper.ravel() & (np.abs(residual) <= OUTLIER_SIGMAS * spread)
        if keep.sum() < 6:
            return None
    seen = values[paper.ravel()]
    return np.clip(a @ coef, seen.min(), seen.max()).reshape(h, w)
