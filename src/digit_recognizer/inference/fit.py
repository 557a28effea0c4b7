"""From a digit's crop of ink to the 28x28 images the model reads: strokes evened to MNIST's width, the longer
side fitted into DIGIT_BOX, the centre of mass at the centre of IMAGE_SIZE x IMAGE_SIZE, as MNIST was made.

A digit far narrower than MNIST's digits, or one as wide as tall, is read twice, as written and stretched towards
MNIST's shapes, and the model's two answers are averaged: squeezed into a narrow column, an 8 or a 7 looks like a
1 to a model that has seen few such digits, while a 1 stretched to that width still reads as a 1; drawn flat, a
slanted 1 turns into a fat diagonal the model takes for a 2, while a 0 or a 7 drawn half as wide as tall is
still itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..constants import DIGIT_BOX, IMAGE_SIZE
from .decode import MID_GREY

INK_LEVEL = MID_GREY  # a crop's pixel is inside a stroke above this
INK_FRACTION = 0.25  # a pixel is ink if it is above this fraction of the ink level
# MNIST's strokes, measured in its 20-px digit box on 5,000 training digits: 5th, 50th, 95th percentile (px).
MIN_STROKE, TYPICAL_STROKE, MAX_STROKE = 2.0, 2.8, 4.5
MAX_ASPECT = 1.4  # width / height: 99% of MNIST digits are narrower
STROKE_WORKING_SIDE = 4 * DIGIT_BOX  # strokes are evened on a copy at most this many px on its longer side
# Width / height below which a digit is also read stretched to it (validation, 500 digits a set: tall digits
# 484 -> 492 read, low resolution 494 -> 493, 9 other presentations unchanged).
NARROW_VIEW = 0.4
# Width / height above which a pen's digit is also read squeezed to SQUEEZED. A marker's digit is left
# alone: its thinned strokes are a blob whose outline is the clue (validation, 2,000 flat digits: 1942 -> 1963
# read; 500 a set: flat 487 -> 489, bold tight 488 -> 489, low resolution 495 -> 496, singles and chalkboard
# 494 -> 493, 11 other presentations unchanged).
FLAT_VIEW, SQUEEZED = 0.9, 0.5


@dataclass(frozen=True)
class Views:
    """What the model reads of one digit: its views, whose answers are averaged, and whether its strokes were a
    fat marker's that the reader thinned (a model with a marker reader hands those digits to it)."""
    images: np.ndarray  # (V, 28, 28) uint8
    marker: bool = False


def resized(x: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """A float image resampled to size = (width, height) by Pillow."""
    return np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize(size, method))


def typical_width(mask: np.ndarray, beyond: str) -> float:
    """Typical width in px of the strokes in a boolean mask: twice the 90th percentile of the distance to the
    nearest non-stroke pixel. `beyond` is how the mask continues past its edges (np.pad's mode: "edge" lets a
    stroke cut by the border go on, "constant" puts paper there)."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(mask, 1, mode=beyond))[1:-1, 1:-1]
    return 2.0 * float(np.percentile(depth[mask], 90))


def cropped(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x cut to the bounding box of a non-empty mask."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def box_strokes(crop: np.ndarray) -> tuple[np.ndarray, float]:
    """The crop at working size (at most STROKE_WORKING_SIDE px) and its strokes' typical width in px of the
    20-px digit box (0 for a crop with no ink)."""
    if max(crop.shape) > STROKE_WORKING_SIDE:  # the digit ends up 20 px tall: 4x that is detail enough
        f = STROKE_WORKING_SIDE / max(crop.shape)
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
        crop = resized(crop, size, Image.Resampling.BOX)
    ink = crop > INK_LEVEL
    if not ink.any():
        return crop, 0.0
    return crop, typical_width(ink, "constant") * DIGIT_BOX / max(crop.shape)


def even_strokes(crop: np.ndarray) -> np.ndarray:
    """Bring a marker's fat strokes, or a fine pen's hairlines, to MNIST's width (measured in the 20-px digit
    box), by a grey erosion or dilation of the crop; widths inside MNIST's usual range are left alone."""
    return evened(*box_strokes(crop))


def evened(crop: np.ndarray, width: float) -> np.ndarray:
    """even_strokes for a crop at working size whose strokes are `width` digit-box px wide (box_strokes)."""
    from scipy import ndimage

    if width == 0 or MIN_STROKE <= width <= MAX_STROKE:
        return crop
    scale = DIGIT_BOX / max(crop.shape)  # digit-box px per crop px
    radius = abs(width - TYPICAL_STROKE) / 2 / scale  # crop px
    if radius < 0.5:
        return crop
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = yy ** 2 + xx ** 2 <= radius ** 2
    op = ndimage.grey_erosion if width > MAX_STROKE else ndimage.grey_dilation
    out = op(np.pad(crop, r), footprint=disk)
    if not (out > INK_LEVEL).any():
        return crop
    return cropped(out, out > INK_FRACTION * 255)


def fit_and_centre(x: np.ndarray) -> np.ndarray:
    """Even the strokes, scale so the longer side is DIGIT_BOX (a digit flatter than MNIST's flattest is
    stretched up to MAX_ASPECT), then place the centre of mass at the canvas centre: (h, w) -> (28, 28) uint8."""
    return placed(even_strokes(x))


def digit_views(x: np.ndarray) -> Views:
    """(h, w) crop -> Views of (V, 28, 28) uint8: the digit as `fit_and_centre` makes it, then, for a digit
    narrower than NARROW_VIEW, the same digit stretched to that shape, or for a pen's digit wider than FLAT_VIEW,
    the digit squeezed to SQUEEZED (strokes evened again); marked as a marker's if its strokes were thinned."""
    x, width = box_strokes(x)
    marker = width > MAX_STROKE
    x = evened(x, width)
    h, w = x.shape
    views = [placed(x)]
    aspect = NARROW_VIEW if w < NARROW_VIEW * h else SQUEEZED if w > FLAT_VIEW * h and not marker else None
    if aspect is not None:  # the same height, `aspect` times as wide
        views.append(placed(even_strokes(resized(x, (max(1, round(aspect * h)), h), Image.Resampling.LANCZOS))))
    return Views(np.stack(views), marker)


def placed(x: np.ndarray) -> np.ndarray:
    """(h, w) evened crop -> (28, 28) uint8: longer side DIGIT_BOX (flatter than MAX_ASPECT stretched up to it),
    centre of mass at the centre."""
    from scipy import ndimage

    h, w = x.shape
    h = max(h, w / MAX_ASPECT)
    s = DIGIT_BOX / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.clip(resized(x, (nw, nh), Image.Resampling.LANCZOS), 0, 255)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    cy, cx = ndimage.center_of_mass(small) if small.sum() > 0 else (nh / 2, nw / 2)
    top = int(round(IMAGE_SIZE / 2 - cy))
    left = int(round(IMAGE_SIZE / 2 - cx))
    top, left = min(max(top, 0), IMAGE_SIZE - nh), min(max(left, 0), IMAGE_SIZE - nw)
    canvas[top:top + nh, left:left + nw] = small
    return np.rint(canvas).astype(np.uint8)


