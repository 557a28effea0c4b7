"""Undo a nearest-neighbour enlargement: a small digit zoomed in an image viewer, a screenshot of pixel art, an
8x8 digit blown up without smoothing. Each of its pixels became a block of identical ones, and the reader would
see square steps where the writer drew curves; taken back to its real pixels, the image is enlarged smoothly
like any other small image.

An image is taken to be blocky only when every change between neighbouring rows, and every one between
neighbouring columns, falls on the edge of one regular grid of blocks at least MIN_BLOCK px wide, the same in
both directions. Such an image is exactly its small original repeated, so taking it back loses nothing, whatever
it shows; a photo, a scan or a smoothly drawn image changes between almost every pair of lines and is left as
it is.
"""
from __future__ import annotations

import numpy as np

MIN_BLOCK = 2  # px: each original pixel covers at least 2 x 2
SAME_LEVEL = 1.0  # grey levels: neighbouring lines closer than this everywhere are copies of one pixel row
MIN_EDGES = 6  # changes between lines, rows and columns together: fewer say too little about a grid
ROUNDING = (0.5, 1.0)  # px a block edge may fall before / after its exact place (see grid)
SCALE_AGREEMENT = 0.15  # the grid's scale along rows and along columns agree within this fraction


def edges(gray: np.ndarray, axis: int) -> np.ndarray:
    """Indices i (1..L-1) where line i differs from line i-1 along `axis` (0: rows, 1: columns)."""
    step = np.abs(np.diff(gray, axis=axis)).max(axis=1 - axis)
    return np.nonzero(step >= SAME_LEVEL)[0] + 1


def grid(length: int, found: np.ndarray) -> np.ndarray | None:
    """The middle px of each block of the coarsest grid of n blocks, s = length / n px each, with an edge near
    every edge `found` along an axis of `length` px; None when no grid of blocks MIN_BLOCK px or wider fits.
    Block j starts at j * s, rounded one way or another by the program that enlarged it (Pillow maps from a
    pixel's centre, NumPy and OpenCV from its start): between j * s - 0.5 and j * s + 1."""
    for n in range(len(found) + 1, length // MIN_BLOCK + 1):  # fewest blocks (coarsest) first
        s = length / n
        off = found - np.rint(found / s) * s
        if ((off >= -ROUNDING[0]) & (off < ROUNDING[1])).all():
            return np.floor((np.arange(n) + 0.5) * s).astype(int)
    return None


def unblocked(gray: np.ndarray) -> np.ndarray:
    """(H, W) grey levels -> the image it was enlarged from without smoothing, or the image itself."""
    rows, cols = edges(gray, 0), edges(gray, 1)
    h, w = gray.shape
    if len(rows) + len(cols) < MIN_EDGES or len(rows) >= h / MIN_BLOCK or len(cols) >= w / MIN_BLOCK:
        return gray  # a photo changes at nearly every line: no search
    row_mids, col_mids = grid(h, rows), grid(w, cols)
    if row_mids is None or col_mids is None:
        return gray
    scale_y, scale_x = h / len(row_mids), w / len(col_mids)
    if abs(scale_y - scale_x) > SCALE_AGREEMENT * max(scale_y, scale_x):
        return gray
    return gray[np.ix_(row_mids, col_mids)]
