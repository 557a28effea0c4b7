"""Steps 6-8, from a digit's crop of ink to what the model reads, as MNIST was made: strokes evened to MNIST's
width, the longer side fitted into DIGIT_BOX, the centre of mass at the centre of IMAGE_SIZE x IMAGE_SIZE.

A digit far narrower than MNIST's digits, or a pen's digit as wide as tall, is read twice, as written and
stretched towards MNIST's shapes, and the model's answers are averaged: squeezed into a narrow column, an 8 or a 7
looks like a 1 to a model that has seen few such digits, while a 1 stretched to that width still reads as a 1;
drawn flat, a slanted 1 turns into a fat diagonal the model takes for a 2, while a 0 or a 7 drawn half as wide as
tall is still itself. A marker's digit is left alone: its thinned strokes are a blob whose outline is the clue.

    strokes(crop, params) -> (crop at working size, strokes evened; {"stroke": box px, "marker": bool})
    fit(evened, params, seen) -> ((V, 28, 28) uint8: the digit, and a stretched view if any; facts)
    views(images, params, seen) -> (Views, facts)

The training of the marker reader puts its digits through `fit_and_centre` (strokes, then fit's first view):
a change here changes what that model was trained on, and so the reader's version (params.STEPS_REVISION).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...constants import DIGIT_BOX, IMAGE_SIZE, PIXEL_MAX
from .masks import cropped, is_ink, typical_width
from .ops import dilated, disk, eroded, resized
from .params import PARAMS, ReaderParams


@dataclass(frozen=True)
class Views:
    """What the model reads of one digit: its views, whose answers are averaged, and whether its strokes were a
    fat marker's that the reader thinned (a model with a marker reader hands those digits to it)."""
    images: np.ndarray  # (V, 28, 28) uint8
    marker: bool = False


def box_strokes(crop: np.ndarray, params: ReaderParams) -> tuple[np.ndarray, float]:
    """The crop at working size (at most strokes.working_side px) and its strokes' typical width in px of the
    20-px digit box (0 for a crop with no ink)."""
    side = params.strokes.working_side
    if max(crop.shape) > side:  # the digit ends up 20 px tall: 4x that is detail enough
        f = side / max(crop.shape)
        crop = resized(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                       Image.Resampling.BOX)
    inside = is_ink(crop, params.ink.inside)
    if not inside.any():
        return crop, 0.0
    return crop, typical_width(inside, "constant") * DIGIT_BOX / max(crop.shape)


def evened(crop: np.ndarray, width: float, params: ReaderParams) -> np.ndarray:
    """A crop at working size whose strokes are `width` digit-box px wide, brought to MNIST's median width by a
    grey erosion or dilation with a disk; widths inside MNIST's usual range are left alone."""
    low, typical, high = params.strokes.mnist
    if width == 0 or low <= width <= high:
        return crop
    scale = DIGIT_BOX / max(crop.shape)  # digit-box px per crop px
    radius = abs(width - typical) / 2 / scale  # crop px
    if radius < 0.5:
        return crop
    footprint = disk(radius)
    r = footprint.shape[0] // 2
    out = (eroded if width > high else dilated)(np.pad(crop, r), footprint)
    if not is_ink(out, params.ink.inside).any():
        return crop
    return cropped(out, is_ink(out, params.ink.seen))


def strokes(crop: np.ndarray, params: ReaderParams, seen: dict | None = None) -> tuple[np.ndarray, dict]:
    """The strokes step: bring a marker's fat strokes, or a fine pen's hairlines, to MNIST's width."""
    x, width = box_strokes(crop, params)
    return evened(x, width, params), {"stroke": round(width, 2), "marker": width > params.strokes.mnist[2]}


def placed(x: np.ndarray, params: ReaderParams) -> np.ndarray:
    """(h, w) evened crop -> (28, 28) uint8: longer side DIGIT_BOX (flatter than fit.max_aspect raised to it),
    centre of mass at the centre."""
    h, w = x.shape
    h = max(h, w / params.fit.max_aspect)
    s = DIGIT_BOX / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.clip(resized(x, (nw, nh), Image.Resampling.LANCZOS), 0, PIXEL_MAX)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    cy, cx = centre_of_mass(small) if small.sum() > 0 else (nh / 2, nw / 2)
    top = int(round(IMAGE_SIZE / 2 - cy))
    left = int(round(IMAGE_SIZE / 2 - cx))
    top, left = min(max(top, 0), IMAGE_SIZE - nh), min(max(left, 0), IMAGE_SIZE - nw)
    canvas[top:top + nh, left:left + nw] = small
    return np.rint(canvas).astype(np.uint8)


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    """(row, column) of x's centre of mass: scipy.ndimage.center_of_mass's arithmetic to the last bit, without
    its 60 us of generality on a 20 x 20 digit."""
    total = x.sum()
    rows, cols = np.ogrid[:x.shape[0], :x.shape[1]]
    return float((x * rows.astype(float)).sum() / total), float((x * cols.astype(float)).sum() / total)


def fit(x: np.ndarray, params: ReaderParams, seen: dict) -> tuple[np.ndarray, dict]:
    """The fit step: the evened digit placed as MNIST was and, for a digit narrower than views.narrow, or a pen's
    digit wider than views.flat, the same digit stretched (or squeezed) to that shape, evened again and placed."""
    p = params.views
    h, w = x.shape
    aspect = (p.narrow if w < p.narrow * h else
              p.squeezed if w > p.flat * h and not seen.get("marker", False) else None)
    images = [placed(x, params)]
    if aspect is not None:  # the same height, `aspect` times as wide
        other = resized(x, (max(1, round(aspect * h)), h), Image.Resampling.LANCZOS)
        images.append(placed(strokes(other, params)[0], params))
    return np.stack(images), {"aspect": round(w / h, 2), "stretched_to": aspect}


def views(images: np.ndarray, params: ReaderParams, seen: dict) -> tuple[Views, dict]:
    """The views step: the images as the model's Views, marked as a marker's digit where its strokes were
    thinned. (A scribble is the model's to refuse: it has learned what is not a digit.)"""
    return Views(images, bool(seen.get("marker", False))), {"views": len(images)}


def fit_and_centre(x: np.ndarray, params: ReaderParams = PARAMS) -> np.ndarray:
    """A crop of ink (h, w) -> (28, 28) uint8 as the reader gives the model its first view: strokes evened,
    then placed (training.marker draws its digits through this)."""
    return placed(strokes(x, params)[0], params)
