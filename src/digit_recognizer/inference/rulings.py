"""Lined and squared paper: the printed lines that cross a whole image are taken out before the digit is cut out.

Left in, a page's rulings are ink to the reader: they widen the crop to the whole image and cross the digit, so a
0 on squared paper reads as an 8. A ruling is a thin bright (ink-coloured) straight run along at least RULING_SPAN
of the image, in a row or a column; a digit's own strokes never run that far but for a bar of a tightly cropped 7 or
2, so lines are taken out only where a page has several of them in one direction. Where a stroke crosses a line,
the stroke goes on: the line's pixels take the dimmer of the pixels just beyond the line on either side.
"""
from __future__ import annotations

import numpy as np

RULING_SPAN = 0.9  # of the image's width (rows) or height (columns) that a printed line runs unbroken
MIN_RULINGS = 2  # lines in one direction before any is taken out: one long bar may be a digit's own stroke
# A printed line is thin: at most this share of the image across it, or MIN_LINE_PX (a marker's bar that fills
# a tight crop is far thicker).
MAX_LINE_SHARE, MIN_LINE_PX = 0.05, 2
LINE_INK = 0.1 * 255  # a line's pixels, once the paper is removed, are at least this bright (ink: 255) ...
PAPER_LEVEL = 0.03 * 255  # ... and it has paper, no brighter than this, right beside it on both sides


def without_rows(x: np.ndarray) -> np.ndarray:
    """x (h, w), ink bright, with its horizontal rulings taken out (x itself if it has fewer than MIN_RULINGS)."""
    from scipy import ndimage

    h, w = x.shape
    span = max(2, int(RULING_SPAN * w))
    lines = ndimage.grey_opening(x, size=(1, span))  # bright runs at least `span` px long along a row
    along = lines.max(axis=1)  # (h,) how bright each row's longest runs are
    thin = max(MIN_LINE_PX, MAX_LINE_SHARE * h)
    runs, _ = ndimage.label(along > PAPER_LEVEL)  # stretches of rows with paper on both sides
    rulings = [rows for (rows,) in ndimage.find_objects(runs)
               if rows.stop - rows.start <= thin and along[rows].max() > LINE_INK]
    if len(rulings) < MIN_RULINGS:
        return x
    out = x.copy()
    for rows in rulings:
        above = x[rows.start - 1] if rows.start > 0 else np.zeros(w, x.dtype)
        below = x[rows.stop] if rows.stop < h else np.zeros(w, x.dtype)
        out[rows] = np.maximum(np.clip(x[rows] - lines[rows], 0, None), np.minimum(above, below))
    return out


def remove_rulings(x: np.ndarray) -> np.ndarray:
    """(h, w) float image, ink bright on a removed background -> the same without ruled or squared lines."""
    return without_rows(without_rows(x).T).T
