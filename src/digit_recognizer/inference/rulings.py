"""Lined and squared paper, and boxes on forms: the printed lines that cross a whole image are taken out before
the digit is cut out.

Left in, a page's rulings are ink to the reader: they widen the crop to the whole image and cross the digit, so a
0 on squared paper reads as an 8. A ruling is a thin bright (ink-coloured) straight run along at least RULING_SPAN
of the image, in a row or a column; a digit's own strokes never run that far but for a bar of a tightly cropped 7 or
2, so lines are taken out where a page has several of them in one direction, where thin lines in both directions
make a box (three or more sides), or where a line is far thinner than the digit's strokes (one side of a form's box
cut out with the digit). A line has paper beside it; the straight middle of a marker's bar has the rest of the bar.
Where a stroke crosses a line, the stroke goes on: the line's pixels take the dimmer of the pixels just beyond the
line on either side.
"""
from __future__ import annotations

import numpy as np

from .fit import INK_LEVEL, typical_width

RULING_SPAN = 0.9  # of the image's width (rows) or height (columns) that a printed line runs unbroken
MIN_RULINGS = 2  # lines in one direction before any is taken out: one long bar may be a digit's own stroke
# Thin lines in both directions together that make a box (or a grid): a digit cropped tight makes at most two
# (a 7's bar and its upright stem), a form's box cut out with the digit three or four.
BOX_SIDES = 3
# A printed line is thin: at most this share of its length (the image's side along it), or MIN_LINE_PX (a
# marker's bar that fills a tight crop is far thicker), or far thinner than the digit's strokes (LONE_LINE).
MAX_LINE_SHARE, MIN_LINE_PX = 0.05, 2
# A lone line (a side of a form's box around a digit) is taken out when it is thinner than LONE_LINE times the
# ink's typical stroke width: a printed rule of 1-3% of the image against a pen's 5-15%, where a 7's or a 2's bar
# is as thick as the rest of the digit (validation, 500 boxed digits: 0.35 97.0%, 0.4 97.8%, 0.45 98.2%, 0.6
# 98.4% read; a 7's bar 0.4 as thick as its stem stays a bar).
LONE_LINE = 0.4
MAX_INK_BESIDE = 0.5  # share of ink in the rows beside a line, above which it is the middle of a wider stroke
LINE_INK = 0.1 * 255  # a line's pixels, once the paper is removed, are at least this bright (ink: 255) ...
PAPER_LEVEL = 0.03 * 255  # ... and it has paper, no brighter than this, right beside it on both sides ...
PAPER_MARGIN = 2.0  # ... or than this times the typical row's brightest long run


def core(along: np.ndarray, rows: slice) -> slice:
    """The rows of a line at least half as bright as its middle (`along`: each row's brightest long run): a
    line blurred by enlarging or focus spreads faint edges that do not count."""
    bright = np.nonzero(along[rows] >= along[rows].max() / 2)[0] + rows.start
    return slice(int(bright[0]), int(bright[-1]) + 1)


def paper_beside(x: np.ndarray, rows: slice) -> bool:
    """Whether the rows just beyond a line are mostly paper: a printed line is, where the straight middle of a
    marker's bar, as wide as the image, has the rest of the bar beside it."""
    beside = [x[i] for i in (rows.start - 1, rows.stop) if 0 <= i < len(x)]
    return all(float((row > INK_LEVEL).mean()) < MAX_INK_BESIDE for row in beside)


def row_lines(x: np.ndarray, stroke: float) -> tuple[list[slice], list[slice], np.ndarray]:
    """The horizontal lines of x (h, w), ink bright: those thin enough to be printed (at most MAX_LINE_SHARE of
    the width, MIN_LINE_PX, or LONE_LINE times `stroke`, the ink's typical stroke width in px), the subset far
    thinner than the strokes (under LONE_LINE times `stroke`), and x's bright runs at least RULING_SPAN long
    along each row, (h, w)."""
    from scipy import ndimage

    h, w = x.shape
    lines = ndimage.grey_opening(x, size=(1, max(2, int(RULING_SPAN * w))))
    along = lines.max(axis=1)  # (h,) how bright each row's longest runs are
    printed = max(MIN_LINE_PX, MAX_LINE_SHARE * w)  # thin for a printed line as long as the image
    finer = LONE_LINE * stroke  # far finer than the digit's strokes
    # Stretches of rows with paper on both sides; the paper is the level most rows stay at, which a faint page
    # whose contrast was stretched leaves well above PAPER_LEVEL (a comb of boxes 30 px tall).
    runs, _ = ndimage.label(along > max(PAPER_LEVEL, PAPER_MARGIN * float(np.median(along))))
    found = [(rows, core(along, rows)) for (rows,) in ndimage.find_objects(runs) if along[rows].max() > LINE_INK]
    found = [(rows, middle.stop - middle.start) for rows, middle in found if paper_beside(x, middle)]
    thin = [rows for rows, across in found if across <= max(printed, finer)]
    return thin, [rows for rows, across in found if across < finer], lines


def without_rows(x: np.ndarray, rulings: list[slice], lines: np.ndarray) -> np.ndarray:
    """x with the rows of `rulings` less their `lines`; where a stroke crosses, the dimmer of the rows beside."""
    h, w = x.shape
    out = x.copy()
    for rows in rulings:
        above = x[rows.start - 1] if rows.start > 0 else np.zeros(w, x.dtype)
        below = x[rows.stop] if rows.stop < h else np.zeros(w, x.dtype)
        out[rows] = np.maximum(np.clip(x[rows] - lines[rows], 0, None), np.minimum(above, below))
    return out


def remove_rulings(x: np.ndarray) -> np.ndarray:
    """(h, w) float image, ink bright on a removed background -> the same without ruled or squared lines, or the
    box drawn round the digit. Lines are found in both directions before any is taken out: a column's line
    broken where a row's line crossed it would no longer run the whole image."""
    ink = x > INK_LEVEL
    stroke = typical_width(ink, "constant") if ink.any() else 0.0
    (rows, lone_rows, row_runs), (cols, lone_cols, col_runs) = row_lines(x, stroke), row_lines(x.T, stroke)
    if len(rows) + len(cols) < BOX_SIDES:  # else a box or a grid: every thin line goes, in both directions
        rows = rows if len(rows) >= MIN_RULINGS else lone_rows
        cols = cols if len(cols) >= MIN_RULINGS else lone_cols
    if not rows and not cols:
        return x
    return without_rows(without_rows(x, rows, row_runs).T, cols, col_runs).T
