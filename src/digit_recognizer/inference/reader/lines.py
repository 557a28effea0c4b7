"""Step 4, lines: lined and squared paper, and boxes on forms: the printed lines that cross a whole image are taken
out before the digit is cut out.

Left in, a page's rulings are ink to the reader: they widen the crop to the whole image and cross the digit, so a
0 on squared paper reads as an 8. A ruling is a thin bright (ink-coloured) straight run along at least
ReaderParams.lines.span of the image, in a row or a column; a digit's own strokes never run that far but for a
bar of a tightly cropped 7 or 2, so lines are taken out where a page has several of them in one direction, where
thin lines in both directions make a box (three or more sides), or where a line is far thinner than the digit's
strokes (one side of a form's box cut out with the digit). A line has paper beside it; the straight middle of a
marker's bar has the rest of the bar. Where a stroke crosses a line, the stroke goes on: the line's pixels take
the dimmer of the pixels just beyond the line on either side.
"""
from __future__ import annotations

import numpy as np

from ...constants import PIXEL_MAX
from .masks import is_ink, typical_width
from .ops import longest_runs, opened
from .stats import median
from .params import Lines, ReaderParams


def core(along: np.ndarray, rows: slice) -> slice:
    """The rows of a line at least half as bright as its middle (`along`: each row's brightest long run): a
    line blurred by enlarging or focus spreads faint edges that do not count."""
    bright = np.nonzero(along[rows] >= along[rows].max() / 2)[0] + rows.start
    return slice(int(bright[0]), int(bright[-1]) + 1)


def with_edges(along: np.ndarray, rows: slice, middle: slice, edge: float) -> slice:
    """The line's middle with its soft edges, the rows of the stretch at least `edge` of its brightest: a
    line 1-2 px thick, resampled, leaves a neighbour row at half its brightness, which is the line, not ink
    beside it."""
    top = float(along[middle].max())
    start, stop = middle.start, middle.stop
    while start > rows.start and along[start - 1] >= edge * top:
        start -= 1
    while stop < rows.stop and along[stop] >= edge * top:
        stop += 1
    return slice(start, stop)


def paper_beside(x: np.ndarray, rows: slice, p: Lines, inside: float) -> bool:
    """Whether the rows just beyond a line are mostly paper: a printed line is, where the straight middle of a
    marker's bar, as wide as the image, has the rest of the bar beside it."""
    beside = [x[i] for i in (rows.start - 1, rows.stop) if 0 <= i < len(x)]
    return all(float(is_ink(row, inside).mean()) < p.max_ink_beside for row in beside)


def runs(flags: np.ndarray) -> list[slice]:
    """The stretches of True in a (n,) bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def span(w: int, p: Lines) -> int:
    """px: how long a run along a row of w px must be to count as a printed line."""
    return max(2, int(p.span * w))


def may_run(x: np.ndarray, length: int, level: float) -> bool:
    """Whether a row of x (h, w) may hold a run that `longest_runs(x, length)` finds brighter than `level` (a share
    of full ink): only where a row has that many px that bright, or half as many near its ends, where the run is
    read on past the end mirrored (its levels are x rounded, so x half a level dimmer counts too). A page with
    no such row has no line, and its runs need not be measured."""
    need = min(x.shape[1], (length + 1) // 2)
    return bool((np.count_nonzero(x > level * PIXEL_MAX - 0.5, axis=1) >= need).any())


def row_lines(x: np.ndarray, params: ReaderParams) -> list[tuple[slice, int]]:
    """The horizontal lines of x (h, w), ink bright, with paper beside them: (rows, px thick) each."""
    p, ink = params.lines, params.ink
    length = span(x.shape[1], p)
    if not may_run(x, length, ink.line):
        return []
    along = longest_runs(x, length)  # (h,) how bright each row's longest runs are
    # Stretches of rows with paper on both sides; the paper is the level most rows stay at, which a faint page
    # whose contrast was stretched leaves well above ink.paper (a comb of boxes 30 px tall).
    stretches = runs(along > max(ink.paper * PIXEL_MAX, p.paper_margin * median(along)))
    found = [(rows, core(along, rows)) for rows in stretches if is_ink(along[rows], ink.line).any()]
    return [(rows, middle.stop - middle.start) for rows, middle in found
            if paper_beside(x, with_edges(along, rows, middle, p.soft_edge), p, ink.inside)]


def thin_lines(found: list[tuple[slice, int]], w: int, stroke: float, p: Lines) -> tuple[list[slice], list[slice]]:
    """Of the lines `found` along rows w px long, those thin enough to be printed (at most p.max_share of w,
    p.min_px, or p.lone times `stroke`, the ink's typical stroke width in px), and the subset far thinner than
    the strokes (under p.lone times `stroke`)."""
    printed = max(p.min_px, p.max_share * w)  # thin for a printed line as long as the image
    finer = p.lone * stroke  # far finer than the digit's strokes
    thin = [rows for rows, across in found if across <= max(printed, finer)]
    return thin, [rows for rows, across in found if across < finer]


def line_runs(x: np.ndarray, rulings: list[slice], p: Lines) -> list[np.ndarray]:
    """The lines themselves: what runs p.span long along each row of each of `rulings` (found before any line
    is taken out: a column's line broken where a row's line crossed it would no longer run the whole image)."""
    return [opened(x[rows], (1, span(x.shape[1], p)), "reflect") for rows in rulings]


def without_rows(x: np.ndarray, rulings: list[slice], runs: list[np.ndarray]) -> np.ndarray:
    """x with the rows of `rulings` less their `runs`; where a stroke crosses, the dimmer of the rows beside."""
    h, w = x.shape
    out = x.copy()
    for rows, run in zip(rulings, runs):
        above = x[rows.start - 1] if rows.start > 0 else np.zeros(w, x.dtype)
        below = x[rows.stop] if rows.stop < h else np.zeros(w, x.dtype)
        out[rows] = np.maximum(np.clip(x[rows] - run, 0, None), np.minimum(above, below))
    return out


def lines(x: np.ndarray, params: ReaderParams, seen: dict | None = None) -> tuple[np.ndarray, dict]:
    """The lines step: (h, w) float image, ink bright on a removed background -> the same without ruled or squared
    lines, or the box drawn round the digit, and how many rows and columns of lines went. Lines are found in both
    directions before any is taken out: a column's line broken where a row's line crossed it would no longer run
    the whole image."""
    p = params.lines
    found_rows, found_cols = row_lines(x, params), row_lines(x.T, params)
    if not (found_rows or found_cols):
        return x, {"row_lines": 0, "column_lines": 0}
    inside = is_ink(x, params.ink.inside)  # the strokes' width is measured only where there are lines to judge
    stroke = typical_width(inside, "constant") if inside.any() else 0.0
    rows, lone_rows = thin_lines(found_rows, x.shape[1], stroke, p)
    cols, lone_cols = thin_lines(found_cols, x.shape[0], stroke, p)
    if len(rows) + len(cols) < p.box_sides:  # else a box or a grid: every thin line goes, in both directions
        rows = rows if len(rows) >= p.min_rulings else lone_rows
        cols = cols if len(cols) >= p.min_rulings else lone_cols
    facts = {"row_lines": len(rows), "column_lines": len(cols)}
    if not rows and not cols:
        return x, facts
    row_runs, col_runs = line_runs(x, rows, p), line_runs(x.T, cols, p)
    return without_rows(without_rows(x, rows, row_runs).T, cols, col_runs).T, facts
