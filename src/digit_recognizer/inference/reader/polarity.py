"""Step 2, polarity: make ink bright on a dark background, whichever way round it was written.

The paper holds most of the border, even when the ink touches it (a tight crop); with the lighting removed, the
paper sits on the near side of halfway between the darkest and the brightest marks, whatever the page's overall
brightness. A form's box printed along the border is looked past to the first line that holds paper and ink.

    polarity(gray, params) -> (x ink bright, {"inverted": bool})
"""
from __future__ import annotations

import numpy as np

from ...constants import PIXEL_MAX
from .background import coarse, detail
from .stats import median
from .params import Polarity, ReaderParams


def edge_line(lines: np.ndarray, mid: float, depth: int, p: Polarity) -> np.ndarray:
    """The values along one side of the border: `lines` (n, L) runs from that edge inwards. Lines all on one
    side of `mid` (a margin of plain paper, or a form's box line printed along the edge) are passed over, up to
    `depth` of them, to the first line that holds both paper and ink; if there is none, all of them."""
    depth = min(depth, len(lines) - 1)
    above = (lines[:depth] > mid).mean(axis=1)  # (depth,) share of each line beyond halfway
    mixed = np.flatnonzero(np.maximum(above, 1.0 - above) < p.uniform_line)
    return lines[mixed[0]] if len(mixed) else lines[:max(depth, 1)].ravel()


def polarity(gray: np.ndarray, params: ReaderParams, seen: dict | None = None) -> tuple[np.ndarray, dict]:
    """The image with ink bright (255 - gray where the border is brighter than halfway)."""
    small = coarse(gray, params.background)
    d = detail(small, params.background)
    mid = (d.min() + d.max()) / 2
    depth = max(1, int(params.polarity.frame_depth * max(d.shape)))
    border = np.concatenate([edge_line(lines, mid, depth, params.polarity)
                             for lines in (d, d[::-1], d.T, d.T[::-1])])
    inverted = bool(median(border) > mid)
    # The coarse copy and its detail, ink bright, go on to the background step (measured once; not shown).
    flip = (lambda a: PIXEL_MAX - a) if inverted else (lambda a: a)
    return flip(gray), {"inverted": inverted, "_coarse": flip(small), "_detail": -d if inverted else d}
