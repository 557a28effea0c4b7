"""Finding the digits in an image of a number: ink mask -> connected components -> merged strokes ->
split touching digits -> one MNIST-style 28x28 crop per digit, left to right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import NoInk, NotADigit
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
MAX_COMPONENTS = 500  # separate marks in one image: a long number on a dusty page has far fewer


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


@dataclass
class Group:
    """Connected components read as one digit: their label ids and the bounding box of their ink."""
    ids: list[int]
    x0: int
    x1: int  # end-exclusive
    y0: int
    y1: int
    area: int  # ink pixels

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def absorb(self, other: "Group") -> None:
        self.ids += other.ids
        self.x0, self.x1 = min(self.x0, other.x0), max(self.x1, other.x1)
        self.y0, self.y1 = min(self.y0, other.y0), max(self.y1, other.y1)
        self.area += other.area

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """The group's ink inside its box, (height, width) bool."""
        return np.isin(labels[self.y0:self.y1, self.x0:self.x1], self.ids)


def components(mask: np.ndarray, name: str) -> tuple[np.ndarray, list[Group]]:
    """Label image and one Group per 8-connected component. Everything after works on boxes, so the cost
    grows with the number of components, not with it times the image size; too many is refused."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n > MAX_COMPONENTS:
        raise NotADigit(f"{name}: {n:,} separate marks (more than {MAX_COMPONENTS}): not a number to read")
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    return labels, [Group([i], sl[1].start, sl[1].stop, sl[0].start, sl[0].stop, int(areas[i]))
                    for i, sl in enumerate(ndimage.find_objects(labels), start=1)]


def drop_specks(groups: list[Group]) -> list[Group]:
    """Drop groups that are both much shorter and much lighter than the real digits: dirt, dots."""
    if not groups:
        return groups
    tallest, largest = max(g.height for g in groups), max(g.area for g in groups)
    return [g for g in groups if not (g.height < SPECK_HEIGHT * tallest and g.area < SPECK_AREA_RATIO * largest)]


def merge_overlapping(comps: list[Group]) -> list[Group]:
    """Group components whose column ranges overlap (a 5's detached bar, a 4 in two strokes)."""
    groups: list[Group] = []
    for c in sorted(comps, key=lambda c: c.x0):
        if groups:
            g = groups[-1]
            overlap = min(c.x1, g.x1) - max(c.x0, g.x0)
            if overlap > MERGE_OVERLAP * min(c.width, g.width):
                g.absorb(c)
                continue
        groups.append(c)
    return groups


def typical_height(groups: list[Group]) -> float:
    """Median height of the groups at least half as tall as the tallest: fragments must not drag it down."""
    heights = [g.height for g in groups]
    return float(np.median([h for h in heights if 2 * h >= max(heights)]))


def merge_fragments(groups: list[Group]) -> list[Group]:
    """Small pieces (a stroke broken by faint ink) join the horizontally nearest group if it is close. After a
    merge only the merged group's neighbours can change their minds, so the scan resumes just before it."""
    groups = sorted(groups, key=lambda g: g.x0)
    h = typical_height(groups)
    i = 0
    while i < len(groups) and len(groups) > 1:
        g = groups[i]
        small = g.width < FRAGMENT * h and g.height < FRAGMENT * h * 1.5
        bar = g.height < FLAT * h and g.width > g.height  # a 5's top stroke written apart from its body
        if small or bar:
            gap, j = min((max(groups[j].x0 - g.x1, g.x0 - groups[j].x1, 0), j)
                         for j in (i - 1, i + 1) if 0 <= j < len(groups))
            if gap <= MERGE_GAP * h:
                groups[j].absorb(g)
                del groups[i]
                i = max(0, min(i, j) - 1)
                continue
        i += 1
    return groups


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
    labels, comps = components(ink > INK_THRESHOLD * 255, name)
    if not comps:
        raise NoInk(f"{name}: no ink found")
    groups = merge_fragments(drop_specks(merge_overlapping(comps)))
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
    return Segment(box, fit_and_centre(crop), whole)
