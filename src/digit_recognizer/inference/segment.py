"""Finding the digits in an image of a number: ink mask -> connected components -> merged strokes ->
split touching digits -> one MNIST-style 28x28 crop per digit, left to right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import NoInk
from .preprocess import ImageInput, fit_and_centre, ink_bright, open_image, remove_background, to_gray

INK_THRESHOLD = 0.35  # of full ink level: what counts as a stroke pixel
SPECK_HEIGHT = 0.25  # a group shorter than this fraction of the tallest one ...
SPECK_AREA_RATIO = 0.1  # ... and with less than this fraction of the largest one's ink is dirt
MERGE_OVERLAP = 0.5  # components overlapping horizontally by this much of the narrower are one digit
MAX_ASPECT = 1.25  # a group wider than this times the typical digit height holds touching digits
DIGIT_ASPECT = 0.75  # typical width / height of one handwritten digit, to guess how many are touching
FRAGMENT = 0.45  # a group narrower and shorter than this times the typical height is a piece of a neighbour
FLAT = 0.4  # so is a piece flatter than this times the typical height and wider than tall: a detached bar
MERGE_GAP = 0.08  # ... and is merged into the closest group within this many typical heights


@dataclass(frozen=True)
class Segment:
    box: tuple[int, int, int, int]  # x, y, w, h in the original image's pixels
    image: np.ndarray  # (28, 28) uint8
    # For a part of a group split as touching digits: the whole group as one digit (shared by its parts),
    # the other reading, since a wide flat 5 or 0 looks like two touching digits to geometry alone.
    whole: Segment | None = None


def ink_image(src: ImageInput, name: str) -> tuple[np.ndarray, float]:
    """Background-free ink image (bright on dark) and the scale from it back to the original pixels."""
    img = open_image(src, name)
    gray = to_gray(img)
    # The longer sides match whatever EXIF turned and however much a large image was shrunk.
    return remove_background(ink_bright(gray), name), max(img.size) / max(gray.shape)


def components(mask: np.ndarray) -> list[tuple[slice, slice, np.ndarray]]:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        out.append((sl[0], sl[1], labels[sl] == i))
    return out


def drop_specks(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Drop groups that are both much shorter and much lighter than the real digits: dirt, dots."""
    if not masks:
        return masks
    heights = [np.ptp(np.nonzero(m.any(1))[0]) + 1 for m in masks]
    areas = [int(m.sum()) for m in masks]
    return [m for m, h, a in zip(masks, heights, areas)
            if not (h < SPECK_HEIGHT * max(heights) and a < SPECK_AREA_RATIO * max(areas))]


def merge_overlapping(comps, shape) -> list[np.ndarray]:
    """Group components whose column ranges overlap (a 5's detached bar, a 4 in two strokes) into masks."""
    comps = sorted(comps, key=lambda c: c[1].start)
    groups: list[list] = []
    for c in comps:
        x0, x1 = c[1].start, c[1].stop
        if groups:
            g = groups[-1]
            gx0, gx1 = min(k[1].start for k in g), max(k[1].stop for k in g)
            overlap = min(x1, gx1) - max(x0, gx0)
            if overlap > MERGE_OVERLAP * min(x1 - x0, gx1 - gx0):
                g.append(c)
                continue
        groups.append([c])
    masks = []
    for g in groups:
        m = np.zeros(shape, bool)
        for rs, cs, cm in g:
            m[rs, cs] |= cm
        masks.append(m)
    return masks


def extent(m: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) of a mask's ink, end-exclusive."""
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    return cols[0], cols[-1] + 1, rows[0], rows[-1] + 1


def typical_height(masks: list[np.ndarray]) -> float:
    """Median height of the groups at least half as tall as the tallest: fragments must not drag it down."""
    heights = [extent(m)[3] - extent(m)[2] for m in masks]
    return float(np.median([h for h in heights if 2 * h >= max(heights)]))


def merge_fragments(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Small pieces (a stroke broken by faint ink) join the horizontally nearest group if it is close."""
    masks = sorted(masks, key=lambda m: extent(m)[0])
    h = typical_height(masks)
    changed = True
    while changed and len(masks) > 1:
        changed = False
        for i, m in enumerate(masks):
            x0, x1, y0, y1 = extent(m)
            small = x1 - x0 < FRAGMENT * h and y1 - y0 < FRAGMENT * h * 1.5
            bar = y1 - y0 < FLAT * h and x1 - x0 > y1 - y0  # a 5's top stroke written apart from its body
            if not (small or bar):
                continue
            gaps = []
            for j in (i - 1, i + 1):
                if 0 <= j < len(masks):
                    nx0, nx1, _, _ = extent(masks[j])
                    gaps.append((max(nx0 - x1, x0 - nx1, 0), j))
            gap, j = min(gaps)
            if gap <= MERGE_GAP * h:
                masks[j] = masks[j] | m
                del masks[i]
                changed = True
                break
    return masks


def split_touching(mask: np.ndarray, height: float) -> list[np.ndarray]:
    """Split a group wider than a digit at the columns with the least ink, into as many digits as its width
    suggests given the typical digit height in the image."""
    x0, x1, y0, y1 = extent(mask)
    w = x1 - x0
    h = max(height, y1 - y0) if y1 - y0 < 1.5 * height else height
    if w <= MAX_ASPECT * h:
        return [mask]
    k = max(2, int(round(w / (DIGIT_ASPECT * h))))
    profile = mask[:, x0:x1].sum(0).astype(float)
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
        m[:, x0 + start:x0 + cut] = mask[:, x0 + start:x0 + cut]
        if m.any():
            parts.append(m)
        start = cut
    return parts


def segment(src: ImageInput, name: str = "image") -> list[Segment]:
    """The digits in the image, left to right, each as an MNIST-style crop with its box."""
    ink, scale = ink_image(src, name)
    mask = ink > INK_THRESHOLD * 255
    comps = components(mask)
    if not comps:
        raise NoInk(f"{name}: no ink found")
    groups = merge_fragments(drop_specks(merge_overlapping(comps, mask.shape)))
    height = typical_height(groups)
    out = []
    for group in groups:
        parts = split_touching(group, height)
        whole = crop_segment(group, ink, scale) if len(parts) > 1 else None
        out += [crop_segment(p, ink, scale, whole) for p in parts]
    out.sort(key=lambda s: s.box[0])
    return out


def crop_segment(m: np.ndarray, ink: np.ndarray, scale: float, whole: Segment | None = None) -> Segment:
    c0, c1, r0, r1 = extent(m)
    # Keep this digit's own ink (soft edges included), not its neighbours'.
    own = ndimage.binary_dilation(m, iterations=2)[r0:r1, c0:c1]
    crop = np.where(own, ink[r0:r1, c0:c1], 0)
    box = tuple(int(round(v * scale)) for v in (c0, r0, c1 - c0, r1 - r0))
    return Segment(box, fit_and_centre(crop), whole)
