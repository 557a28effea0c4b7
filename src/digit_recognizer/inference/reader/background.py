"""Step 3, background: the paper's lighting taken out, the ink stretched to full, a blank page refused.

Lighting, shadows and the strokes' width are judged on a coarse copy (about `side` px); the paper under the ink
is a grey opening of it that passes over the strokes, carried back to the working size. Whether there is ink at
all is judged against the lighting (an opening a quarter of the image wide), so a shadow on a blank page is not
ink: marks brighter than the paper around them or, where fat strokes fill the frame, gaps of paper darker than
the strokes around them. Then the paper is estimated past the strokes' whole width, so that fat strokes keep
their middles, and no further, so that it follows the shadows.

    background(x ink bright, params) -> (ink on black, stretched to 255, facts)   # raises NoInk
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...constants import PIXEL_MAX
from ...errors import NoInk
from .masks import bounds, edge, typical_width
from .ops import box_mean, gaussian, opened, shrunk, stretched, wide_blur
from .stats import MAD_TO_SIGMA, SAMPLE, median, percentile, sample, sample_at
from .params import Background, ReaderParams


def coarse(x: np.ndarray, p: Background) -> np.ndarray:
    """A copy averaged in whole blocks: the largest blocks that leave its longer side at least p.side px (so at
    most twice that; an image no longer than p.side is itself), except that an image up to twice p.side px is
    judged at half its size (a digit's photo of 200 x 150 px at 100 x 75) where its shorter side keeps p.coarse_min
    px (a number, flat, keeps its digits' rows)."""
    longer, shorter = max(x.shape), min(x.shape)
    step = max(1, longer // p.side)
    if step == 1 and longer > p.side and shorter // 2 >= p.coarse_min:
        step = 2
    if step == 1:
        return np.array(x, dtype=np.float32)  # small or flat: the image itself, as a copy of its own
    sy, sx = min(step, x.shape[0]), min(step, x.shape[1])  # a sliver of an image keeps its one row or column
    h, w = x.shape[0] // sy, x.shape[1] // sx
    return shrunk(x[:h * sy, :w * sx], (h, w))  # whole blocks of sy x sx px averaged (OpenCV's area resize)


def detail(small: np.ndarray, p: Background) -> np.ndarray:
    """The image less its lighting (a blur over 1/p.lighting of it): paper near 0 everywhere, ink far from it."""
    return small - wide_blur(small, min(small.shape) / p.lighting)


def beyond_halfway(d: np.ndarray) -> np.ndarray:
    """(h, w) bool: what lies beyond halfway from the darkest to the brightest of d."""
    return d > (d.min() + d.max()) / 2


def edge_sharpness(d: np.ndarray, ink: np.ndarray) -> float:
    """How steeply d rises across the edge of `ink`: the median gradient there (per px) as a share of d's range.
    A pen's edge rises over a pixel or two; a shadow's over tens. A sliver (one row or column) has no edge to
    judge: infinitely sharp."""
    spread = float(d.max() - d.min())
    if min(d.shape) < 2 or spread <= 0:
        return float("inf")
    ys, xs = np.nonzero(edge(ink))
    if not len(ys):
        return float("inf")
    return median(gradient_at(d, ys, xs)) / spread


def gradient_at(d: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """np.hypot(*np.gradient(d))[ys, xs], to the last bit, computed at those pixels only (a rim is a small part
    of the image): central differences inside, one-sided ones on the image's border."""
    def along(f: np.ndarray, i: np.ndarray, at) -> np.ndarray:  # d/di at index i of f's first axis, at at(i)
        lo, hi = np.maximum(i - 1, 0), np.minimum(i + 1, f.shape[0] - 1)
        diff = f[at(hi)] - f[at(lo)]
        return np.where((i == 0) | (i == f.shape[0] - 1), diff, diff / 2.0)  # in d's own precision, as NumPy

    gy = along(d, ys, lambda r: (r, xs))
    gx = along(d.T, xs, lambda c: (c, ys))
    return np.hypot(gy, gx)


@dataclass
class Coarse:
    """What the background step measures once on the coarse copy of the image."""
    small: np.ndarray  # (h, w) float32, ink bright
    lighting: int  # px: the opening that follows the lighting
    sharpness: float  # of the smoothed detail's strokes' edges (edge_sharpness)
    width: float  # px: the strokes' typical width
    ink_height: int  # px: how tall the ink stands (its bounding box; 0 for none)

    @classmethod
    def measure(cls, x: np.ndarray, p: Background, seen: dict | None = None) -> "Coarse":
        """Measured on x (ink bright), or taken from the polarity step's coarse copy and detail of it."""
        seen = seen or {}
        small = seen["_coarse"] if "_coarse" in seen else coarse(x, p)
        lighting = max(p.min_opening, max(small.shape) // p.lighting)
        # Strokes are what lies beyond halfway in the detail smoothed a little (chalk's gappy strokes measured
        # whole); where that has soft edges it may be a shadow the detail kept, brighter than faint strokes
        # beside it: the width is measured again less the lighting's opening, and the narrower one kept.
        d = gaussian(seen["_detail"] if "_detail" in seen else detail(small, p), p.stroke_smoothing)
        ink = beyond_halfway(d)
        sharpness = edge_sharpness(d, ink)
        width = typical_width(ink, "edge", exact=False)
        if sharpness < p.min_sharpness:
            y = gaussian(small - paper(small, lighting, p, sharpness, lighting), p.stroke_smoothing)
            width = min(width, typical_width(beyond_halfway(y), "edge", exact=False))
        box = bounds(ink)
        return cls(small, lighting, sharpness, width, 0 if box is None else box[0].stop - box[0].start)

    def shrink(self, shape: tuple[int, int], p: Background) -> float:
        """The factor (<= 1) that brings an image of `shape` to where its ink stands at most p.ink_height px tall
        (the ink of a number's digits side by side, or of one digit, stands as tall as a digit) and its strokes
        stay at least p.min_stroke px wide; 1 where that would shrink it by less than p.shrink_below, and where
        what was measured as the ink has no pen's edges (a shadow's size says nothing of the digit's)."""
        if not self.ink_height or self.sharpness < p.min_sharpness:
            return 1.0
        per = shape[0] / self.small.shape[0]  # px of the image per coarse px
        factor = max(p.ink_height / (self.ink_height * per), p.min_stroke / (self.width * per))
        return factor if factor <= p.shrink_below else 1.0

    def stroke_opening(self, p: Background) -> int:
        """An opening wide enough to pass over the strokes (a bold digit cut out tight), and for thin strokes no
        wider than need be, so that it follows a shadow's edge."""
        fat = int(np.ceil(p.fat_opening * self.width)) + 1
        if fat >= self.lighting:
            return fat
        thin = int(np.ceil(p.thin_opening * self.width)) + 1
        return min(self.lighting, max(thin, int(p.shadow_share * self.lighting), p.min_opening))


def paper(small: np.ndarray, opening: int, p: Background, sharpness: float, lighting: int) -> np.ndarray:
    """The paper's brightness on the coarse copy: a grey opening `opening` px wide, averaged as wide. Wider than
    the lighting's, it spans the image and is the darkest paper everywhere: a smooth surface fitted to the
    paper beside the strokes is used instead (surface), where their edges are a pen's (a tiny digit enlarged has
    no paper apart from its blur)."""
    bg = box_mean(opened(small, (opening, opening)), opening)
    if opening > lighting and sharpness >= p.min_sharpness:
        from .surface import paper_surface

        surface = paper_surface(small, bg, p)
        bg = bg if surface is None else surface
    return bg


def neighbour_differences(y: np.ndarray) -> np.ndarray:
    """`sample` of the differences between vertical neighbours, then horizontal ones, of y, computed at the sampled
    places only."""
    h, w = y.shape
    down, total = (h - 1) * w, (h - 1) * w + h * (w - 1)
    if total <= SAMPLE:
        return np.concatenate([np.diff(y, axis=0).ravel(), np.diff(y, axis=1).ravel()])
    at = sample_at(total)
    flat, vertical = y.ravel(), at < down
    across = max(w - 1, 1)  # differences per row (a one-column image has only vertical ones)
    here = np.where(vertical, at, (at - down) // across * w + (at - down) % across)  # flat index of the pixel
    return flat[here + np.where(vertical, w, 1)] - flat[here]


def pixel_noise(y: np.ndarray) -> float:
    """Standard deviation of pixel noise, from neighbour differences (robust: edges are a minority of pixels,
    however much of the image the ink covers)."""
    d = neighbour_differences(y)
    return MAD_TO_SIGMA * median(np.abs(d)) / np.sqrt(2.0) if d.size else 0.0


def peak(y: np.ndarray, p: Background) -> tuple[float, np.ndarray]:
    """The brightest mark of y once a photo's grain is smoothed away, and y so smoothed."""
    smooth = gaussian(y, p.grain_sigma)
    return float(smooth.max()), smooth


def background(x: np.ndarray, params: ReaderParams, seen: dict | None = None) -> tuple[np.ndarray, dict]:
    """The background step (see the module's docstring)."""
    p = params.background
    c = Coarse.measure(x, p, seen)
    before = x.shape
    x = shrunk(x, c.shrink(x.shape, p))  # the steps from here on work at the ink's size, not the image's
    scale = (seen or {}).get("scale", 1.0) * max(x.shape) / max(before)  # working px per px as given

    def under(small: np.ndarray, opening: int) -> np.ndarray:
        return stretched(paper(small, opening, p, c.sharpness, c.lighting), x.shape)

    y = x - under(c.small, c.lighting)
    (top, smooth), noise = peak(y, p), pixel_noise(y)

    def clear(t: float, n: float, contrast: float) -> bool:
        return t >= max(contrast, p.noise_margin * n)

    faint = clear(top, noise, p.faint_contrast) and c.sharpness >= p.pen_sharpness
    if not (clear(top, noise, p.min_contrast) or faint):  # then perhaps gaps of paper between fat strokes
        gaps = -under(-c.small, c.lighting) - x
        if not clear(peak(gaps, p)[0], pixel_noise(gaps), p.min_contrast):
            raise NoInk("no ink found (blank or nearly uniform image)")
    opening = c.stroke_opening(p)
    if opening != c.lighting:  # the paper estimated again past the strokes: measured again
        y = x - under(c.small, opening)
        top, smooth = peak(y, p)
    y = np.clip(y, 0, None)
    full = percentile(sample(y[smooth > max(top, 1.0) / 2]), p.ink_percentile)
    facts = {"scale": scale, "working_size": [x.shape[1], x.shape[0]],
             "stroke_px": round(c.width * max(x.shape) / max(c.small.shape), 2), "opening_px": opening,
             "edge_sharpness": round(min(c.sharpness, 99.0), 3), "ink_level": round(full, 1)}
    return np.clip(y * (PIXEL_MAX / max(full, 1.0)), 0, PIXEL_MAX), facts
