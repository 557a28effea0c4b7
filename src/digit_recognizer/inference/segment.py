"""Finding the digits in an image of a number: ink mask -> connected components -> merged strokes ->
split touching digits -> one MNIST-style 28x28 crop per digit, left to right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import NoInk
from .blocks import unblocked
from .decode import ImageInput, open_image, to_gray
from .fit import Views, digit_views
from .groups import digit_groups, typical_height
from .preprocess import enlarged, ink_only

MAX_ASPECT = 1.25  # a group wider than this times the typical digit height holds touching digits
DIGIT_ASPECT = 0.75  # typical width / height of one handwritten digit, to guess how many are touching


@dataclass(frozen=True)
class Segment:
    box: tuple[int, int, int, int]  # x, y, w, h in the original image's pixels
    views: Views  # the digit, and a stretched view where it is very narrow or flat
    # For a part of a group split as touching digits: the whole group as one digit (shared by its parts),
    # the other reading, since a wide flat 5 or 0 looks like two touching digits to geometry alone.
    whole: Segment | None = None


def ink_image(src: ImageInput, name: str) -> tuple[np.ndarray, float]:
    """Background-free ink image (bright on dark), without a page's rulings or a form's boxes, and the scale from
    it back to the original pixels."""
    img = open_image(src, name)
    gray = enlarged(unblocked(to_gray(img)))
    # The longer sides match whatever EXIF turned and however much a large image was shrunk.
    return ink_only(gray, name), max(img.size) / max(gray.shape)


def extent(m: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) of a mask's ink, end-exclusive."""
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    return cols[0], cols[-1] + 1, rows[0], rows[-1] + 1


def split_touching(mask: np.ndarray, height: float) -> list[np.ndarray]:
    """Split a group's mask (cut to its box) that is wider than a digit at the columns with the least ink, into
    as many digits as its width suggests given the typical digit height in the image. Parts keep the box."""
    hh, w = mask.shape
    h = max(height, hh) if hh < 1.5 * height else height
    if w <= MAX_ASPECT * h:
        return [mask]
    k = max(2, int(round(w / (DIGIT_ASPECT * h))))
    profile = mask.sum(0).astype(float)
    cuts, last = [], 0
    for i in range(1, k):
        centre = int(i * w / k)
        lo, hi = max(last + 1, centre - w // (3 * k)), min(w - 1, centre + w // (3 * k) + 1)
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


def segment(src: ImageInput, name: str = "image") -> list[Segment]:
    """The digits in the image, left to right, each as an MNIST-style crop with its box."""
    ink, scale = ink_image(src, name)
    labels, groups = digit_groups(ink, name)
    if not groups:
        raise NoInk(f"{name}: no ink found")
    height = typical_height(groups)
    out = []
    for group in groups:
        mask, at = group.mask(labels), (group.x0, group.y0)
        parts = split_touching(mask, height)
        whole = crop_segment(mask, at, ink, scale) if len(parts) > 1 else None
        out += [crop_segment(p, at, ink, scale, whole) for p in parts]
    out.sort(key=lambda s: s.box[0])
    return out


def crop_segment(m: np.ndarray, at: tuple[int, int], ink: np.ndarray, scale: float,
                 whole: Segment | None = None) -> Segment:
    """One digit's crop from mask m, which lies in the ink image with its top-left corner at `at` = (x, y)."""
    c0, c1, r0, r1 = extent(m)
    # Keep this digit's own ink (soft edges included), not its neighbours'.
    own = ndimage.binary_dilation(m, iterations=2)[r0:r1, c0:c1]
    x0, y0 = at[0] + c0, at[1] + r0
    crop = np.where(own, ink[y0:y0 + r1 - r0, x0:x0 + c1 - c0], 0)
    box = tuple(int(round(v * scale)) for v in (x0, y0, c1 - c0, r1 - r0))
    return Segment(box, digit_views(crop), whole)
