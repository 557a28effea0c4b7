"""Step 5, crop: the ink's marks grouped into digits and cut out; what no digit makes refused.

A grey veil that a textured page leaves over faint ink is taken off; pixel noise (no spatial coherence) and ink
scattered over many small pieces (texture, dirt) are refused. For one digit, several digits side by side are
refused (read it as a number), as are a speck and a dash, and around a pen's sharp strokes the paper is cleared
(in a blurred image the strokes fade out further than their marks reach). For a number, a group wider than a
digit is split at the columns with the least ink into as many digits as its width suggests, and neighbouring
groups that together are no wider than a digit are also cut out joined (a digit whose ink faded between its
strokes falls apart into pieces that geometry cannot tell from narrow digits: the model chooses,
inference.numbers).

    crop(x, params, seen, number=False) -> [Cut]   # one for a digit; left to right for a number
    facts["_joins"]: [(first, stop, Cut)]            # a number's cuts first..stop-1 read as one digit
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...constants import PIXEL_MAX
from ...errors import NoInk, NotADigit, SeveralDigits
from .marks import Group, digit_groups, dust_free_box, typical_height
from .masks import bounds, components, grown, is_ink, labelled
from .ops import dilated, disk, gaussian
from .stats import correlation, median, sample
from .params import Crop, ReaderParams


@dataclass(frozen=True)
class Cut:
    """One digit's ink cut out: (h, w) float 0..255, and its box (x, y, w, h) in the image's own px. `whole`, for
    a part of a group split as touching digits, is the whole group as one digit (a wide flat 5 or 0 looks like
    two touching digits to geometry alone)."""
    image: np.ndarray
    box: tuple[int, int, int, int]
    whole: "Cut | None" = None
    stroke: float | None = None  # px: a number's pen strokes' width, where the cut may be read levelled


def without_veil(x: np.ndarray, p: Crop) -> np.ndarray:
    """x less the grey veil a textured page leaves over faint ink: the median of what lies below p.veil_far of
    full ink, beyond p.veil_tolerance levels, taken off and the ink stretched back to full."""
    far = x <= p.veil_far * PIXEL_MAX
    veil = median(sample(x[far])) - p.veil_tolerance if far.any() else 0.0
    return np.clip((x - veil) * (PIXEL_MAX / (PIXEL_MAX - veil)), 0, PIXEL_MAX) if veil > 0 else x


def ink_mask(x: np.ndarray, params: ReaderParams) -> np.ndarray:
    """(h, w) bool: the ink that is still ink once a photo's grain is smoothed away (single grains of a faint,
    stretched photo would widen the crop to the page); a shape's edges stay where they were."""
    level = params.ink.seen
    mask = is_ink(x, level)
    strokes = mask & is_ink(gaussian(x, params.background.grain_sigma), level)
    return strokes if strokes.any() else mask


def neighbour_correlation(x: np.ndarray) -> float:
    """Mean correlation of each pixel with its right and lower neighbours (over a sample of the pixels)."""
    pairs = [(x[:, :-1], x[:, 1:]), (x[:-1], x[1:])]  # the same draws from each of a pair: aligned
    cs = [correlation(sample(a), sample(b)) for a, b in pairs if a.size > 1]
    if not cs:
        return 0.0
    known = [c for c in cs if not np.isnan(c)]  # np.nanmean's answer, without its cost on two numbers
    return sum(known) / len(known) if known else float("nan")


def check_strokes(x: np.ndarray, mask: np.ndarray, p: Crop) -> None:
    """Refuse what is not one digit's pen strokes: pixel noise, or ink scattered over many small pieces. (A
    number's marks are grouped instead, and a flood of them refused there: marks.marks.)"""
    if neighbour_correlation(x) < p.min_correlation:
        raise NotADigit("not a digit (the ink has no stroke structure: noise)")
    _, stats = components(mask, p.piece_connectivity)
    if len(stats) - 1 <= p.main_strokes:
        return
    sizes = np.sort(stats[1:, 4])[::-1]
    if sizes[:p.main_strokes].sum() < p.main_share * sizes.sum():
        raise NotADigit(f"not a digit (ink scattered over {len(stats) - 1} pieces: noise or texture)")


def refuse_several(groups: list[Group], params: ReaderParams) -> None:
    """Refuse several digits side by side: two or more groups digit-sized, and side by side (wider together
    than a digit, or apart by a clear gap: a 0 whose faint strokes broke into "(" and ")" is neither)."""
    p = params.crop
    if len(groups) < 2:
        return
    tallest, largest = max(g.height for g in groups), max(g.area for g in groups)
    digits = [g for g in groups if g.height >= p.several_height * tallest and g.area >= p.several_area * largest]
    if len(digits) < 2:
        return
    height = max(g.y1 for g in digits) - min(g.y0 for g in digits)
    width = max(g.x1 for g in digits) - min(g.x0 for g in digits)
    ordered = sorted(digits, key=lambda g: g.x0)
    gap = max(b.x0 - a.x1 for a, b in zip(ordered, ordered[1:]))
    if width > params.fit.max_aspect * height or gap >= p.several_gap * height:
        raise SeveralDigits(f"{len(digits)} digits side by side, not one (read it as a number)")


def paper_cleared(image: np.ndarray, labels: np.ndarray, groups: list[Group], p: Crop) -> np.ndarray:
    """A digit's box (`labels`: its marks' labels there) with nothing left beyond p.own_reach px of its marks: a
    page's grain, a shadow's gradient and dust around a pen's digit are not its ink (MNIST's paper is black), as
    in a number's cuts."""
    near = grown(labelled(labels, [k for g in groups for k in g.ids]), p.own_reach)
    return np.where(near, image, 0)


def refuse_speck_or_dash(crop: np.ndarray, scale: float, p: Crop) -> None:
    """Refuse ink no digit makes: a speck (`scale`: working px per px of the image as given) or a dash."""
    h, w = crop.shape
    if max(h, w) / scale < p.min_side:
        raise NotADigit(f"not a digit (a speck {max(h, w) / scale:.0f} px across)")
    if w > p.max_flatness * h:
        raise NotADigit(f"not a digit (a dash, {w / h:.0f} times as wide as tall)")


def split_touching(mask: np.ndarray, height: float, p: Crop) -> list[np.ndarray]:
    """Split a group's mask (cut to its box) that is wider than a digit at the columns with the least ink, into
    as many digits as its width suggests given the typical digit height. Parts keep the box."""
    hh, w = mask.shape
    h = max(height, hh) if hh < p.tall_group * height else height
    if w <= p.touching * h:
        return [mask]
    k = max(2, int(round(w / (p.digit_aspect * h))))
    profile = mask.sum(0).astype(float)
    cuts, last = [], 0
    for i in range(1, k):
        centre = int(i * w / k)
        reach = w // (p.cut_share * k)  # px either side of the even split where the cut may fall
        lo, hi = max(last + 1, centre - reach), min(w - 1, centre + reach + 1)
        cut = lo + int(np.argmin(profile[lo:hi])) if hi > lo else centre
        cuts.append(cut)
        last = cut
    parts, start = [], 0
    for cut in cuts + [w]:
        m = np.zeros_like(mask)
        m[:, start:cut] = mask[:, start:cut]
        if m.any():
            parts.append(m)
        start = cut
    return parts


def cut(m: np.ndarray, at: tuple[int, int], ink: np.ndarray, scale: float, p: Crop,
        whole: Cut | None = None, stroke: float | None = None) -> Cut:
    """One digit's ink from mask m, which lies in `ink` with its top-left corner at `at` = (x, y): its own ink,
    soft edges included, not its neighbours'; `stroke` (px wide) where it may be read levelled (`levelled`)."""
    rows, cols = bounds(m)
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    own = grown(m, p.own_reach)[rows, cols]
    x0, y0 = at[0] + c0, at[1] + r0
    image = np.where(own, ink[y0:y0 + r1 - r0, x0:x0 + c1 - c0], 0)
    box = tuple(int(round(v / scale)) for v in (x0, y0, c1 - c0, r1 - r0))
    return Cut(image, box, whole, stroke)


def levelled(image: np.ndarray, stroke: float, p: Crop) -> np.ndarray:
    """A digit's ink with its faded stretches raised to full: each pixel scaled by full ink over the brightest
    ink within p.level_reach stroke widths (`stroke` px), by at most 1 / p.level_floor. A pen running dry leaves
    a stroke bright where it starts and faint where it ends, and a model that learned MNIST's even strokes takes
    such a digit for no digit; the stroke's profile across, its soft edges, stays as it was."""
    near = dilated(image, disk(max(1.0, p.level_reach * stroke)))  # (h, w) the brightest ink near each pixel
    gain = np.clip(PIXEL_MAX / np.maximum(near, p.level_floor * PIXEL_MAX), 1.0, None)
    return np.minimum(image * gain, PIXEL_MAX).astype(np.float32)


def joined(groups: list[Group], alone: dict[int, Cut], labels: np.ndarray, x: np.ndarray, scale: float,
           height: float, p: Crop, stroke: float | None = None) -> list[tuple[Cut, Cut, Cut, int]]:
    """(first cut, last cut, the joined cut, how many) for each run of 2 to p.join_marks neighbouring groups, each
    cut whole (`alone`: id of a group -> its cut), that together are no wider than one digit (p.touching typical
    heights). A joined cut holds all the ink of its box but the other groups': the faint stretches between its
    marks too."""
    out = []
    for i, first in enumerate(groups):
        if id(first) not in alone:
            continue
        run = [first]
        for g in groups[i + 1:i + p.join_marks]:
            run.append(g)
            if id(g) not in alone or max(r.x1 for r in run) - min(r.x0 for r in run) > p.touching * height:
                break
            out.append((alone[id(first)], alone[id(g)], boxed(run, groups, labels, x, scale, stroke), len(run)))
    return out


def boxed(run: list[Group], groups: list[Group], labels: np.ndarray, x: np.ndarray, scale: float,
          stroke: float | None = None) -> Cut:
    """The groups `run` cut out as one digit: all the ink of their box (faint stretches between their marks
    too) but that of the other `groups`; `stroke` as for `cut`."""
    x0, x1 = min(r.x0 for r in run), max(r.x1 for r in run)
    y0, y1 = min(r.y0 for r in run), max(r.y1 for r in run)
    others = [k for r in groups if all(r is not q for q in run) for k in r.ids]
    image = np.where(labelled(labels[y0:y1, x0:x1], others), 0, x[y0:y1, x0:x1])
    return Cut(image, tuple(int(round(v / scale)) for v in (x0, y0, x1 - x0, y1 - y0)), stroke=stroke)


def crop(x: np.ndarray, params: ReaderParams, seen: dict, number: bool = False) -> tuple[list[Cut], dict]:
    """The crop step (see the module's docstring); `seen["scale"]`: working px per px of the image as given."""
    p, scale = params.crop, seen["scale"]
    # a pen's sharp edges: its paper is cleared, its faded ink may be levelled; a blurred image fades out further
    # than its marks reach, and its soft edges would swell
    pen = seen.get("edge_sharpness", 0.0) >= params.background.pen_sharpness
    x = without_veil(x, p)
    mask = ink_mask(x, params)
    if not mask.any():
        raise NoInk("no ink found")
    if not number:
        check_strokes(x, mask, p)
    labels, groups = digit_groups(x, params)
    if not number:
        refuse_several(groups, params)
        rows, cols = dust_free_box(mask, p)
        image = x[rows, cols]
        refuse_speck_or_dash(image, scale, p)
        box = tuple(int(round(v / scale)) for v in (cols.start, rows.start, image.shape[1], image.shape[0]))
        cleared = bool(groups) and pen
        if cleared:
            image = paper_cleared(image, labels[rows, cols], groups, p)
        return [Cut(image, box)], {"box": list(box), "marks": len(groups), "paper_cleared": cleared}
    if not groups:
        raise NoInk("no ink found")
    height, cuts, alone = typical_height(groups), [], {}
    stroke = seen["stroke_px"] if pen else None
    for group in groups:
        m, at = group.mask(labels), (group.x0, group.y0)
        parts = split_touching(m, height, p)
        whole = cut(m, at, x, scale, p) if len(parts) > 1 else None
        cuts += [cut(part, at, x, scale, p, whole, stroke) for part in parts]
        if whole is None:
            alone[id(group)] = cuts[-1]
    runs = joined(groups, alone, labels, x, scale, height, p, stroke)
    cuts.sort(key=lambda c: c.box[0])
    index = {id(c): i for i, c in enumerate(cuts)}
    # a run's cuts lie side by side in the order read, unless a wide split group's part lies among them
    joins = [(index[id(a)], index[id(b)] + 1, j) for a, b, j, n in runs if index[id(b)] - index[id(a)] == n - 1]
    return cuts, {"boxes": [list(c.box) for c in cuts], "marks": len(groups), "_joins": joins}
