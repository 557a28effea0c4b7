"""Undo a nearest-neighbour enlargement: a small digit zoomed in an image viewer, a screenshot of pixel art, an
8x8 digit blown up without smoothing. Each of its pixels became a block of identical ones, and the reader would
see square steps where the writer drew curves; taken back to its real pixels, the image is enlarged smoothly
like any other small image.

An image is taken to be blocky only when every change between neighbouring rows, and every one between
neighbouring columns, falls on the edge of one regular grid of blocks at least min_block px wide, the same in
both directions (ReaderParams.decode). Such an image is exactly its small original repeated, so taking it back
loses nothing, whatever it shows; a photo, a scan or a smoothly drawn image changes between almost every pair of
lines and is left as it is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .ops import opencv

if TYPE_CHECKING:
    from .params import Decode


def edges(gray: np.ndarray, axis: int, same_level: float) -> np.ndarray:
    """Indices i (1..L-1) where line i differs from line i-1 along `axis` (0: rows, 1: columns) of float32 grey
    levels: |np.diff| exactly, in one pass (OpenCV)."""
    a, b = (gray[1:], gray[:-1]) if axis == 0 else (gray[:, 1:], gray[:, :-1])
    step = opencv().absdiff(a, b).max(axis=1 - axis) if a.size else np.zeros(a.shape[axis], gray.dtype)
    return np.nonzero(step >= same_level)[0] + 1


def grid(length: int, found: np.ndarray, p: "Decode") -> np.ndarray | None:
    """The middle px of each block of the coarsest grid of n blocks, s = length / n px each, with an edge near
    every edge `found` along an axis of `length` px; None when no grid of blocks p.min_block px or wider fits.
    Block j starts at j * s, rounded one way or another by the program that enlarged it (Pillow maps from a
    pixel's centre, NumPy and OpenCV from its start): between j * s - 0.5 and j * s + 1."""
    for n in range(len(found) + 1, length // p.min_block + 1):  # fewest blocks (coarsest) first
        s = length / n
        off = found - np.rint(found / s) * s
        if ((off >= -p.rounding[0]) & (off < p.rounding[1])).all():
            return np.floor((np.arange(n) + 0.5) * s).astype(int)
    return None


def unblocked(gray: np.ndarray, p: "Decode") -> np.ndarray:
    """(H, W) grey levels -> the image it was enlarged from without smoothing, or the image itself."""
    h, w = gray.shape
    rows = edges(gray, 0, p.same_level)
    if len(rows) >= h / p.min_block:
        return gray  # a photo changes at nearly every line: no search (and no need to look at its columns)
    cols = edges(gray, 1, p.same_level)
    if len(rows) + len(cols) < p.min_edges or len(cols) >= w / p.min_block:
        return gray
    row_mids, col_mids = grid(h, rows, p), grid(w, cols, p)
    if row_mids is None or col_mids is None:
        return gray
    scale_y, scale_x = h / len(row_mids), w / len(col_mids)
    if abs(scale_y - scale_x) > p.scale_agreement * max(scale_y, scale_x):
        return gray
    return gray[np.ix_(row_mids, col_mids)]
