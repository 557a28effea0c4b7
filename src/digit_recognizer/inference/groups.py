"""Marks on a page grouped into digits: connected components -> merged strokes -> specks dropped -> broken
pieces joined, all on bounding boxes (the cost grows with the number of marks, not with it times the image).

Used by the number reader (segment) and by single-digit prediction, which refuses several digits side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import NotADigit

INK_THRESHOLD = 0.35  # of full ink level: a mark holds stroke pixels at least this bright ...
FAINT_THRESHOLD = 0.15  # ... and runs on through pixels this bright (a thin pen's faint stretches, which one
# threshold breaks into specks: a light 7 dropped from a number, a 2 read as two digits) ...
RESIDUE_PERCENTILE, RESIDUE_MARGIN = 99, 1.5  # ... or this far above the brightest 1% of the paper, what the
# background's removal left there (a JPEG's blocks), paper being what lies CLEARANCE of the longer side or
# more from any stroke pixel. Validation, 500 numbers each: 95.2 -> 97.0%, tight 98.0 -> 98.4%.
CLEARANCE = 0.01
SPECK_HEIGHT = 0.25  # a group shorter than this fraction of the tallest one ...
SPECK_AREA_RATIO = 0.1  # ... and with less than this fraction of the largest one's ink is dirt
MERGE_OVERLAP = 0.5  # components overlapping horizontally by this much of the narrower are one digit
FRAGMENT = 0.45  # a group narrower and shorter than this times the typical height is a piece of a neighbour
FLAT = 0.4  # so is a piece flatter than this times the typical height and wider than tall: a detached bar
MERGE_GAP = 0.08  # ... and is merged into the closest group within this many typical heights
MAX_COMPONENTS = 500  # separate marks in one image: a long number on a dusty page has far fewer
# Marks with less ink than this share of the largest one are dust: a grainy photo of faint ink, its contrast
# stretched, leaves hundreds of 1-20 px grains above the ink level; no digit's stroke is so small beside another.
DUST_SHARE = 0.01


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


def labelled(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A mask's 8-connected components: the label image and each label's area (areas[0], the paper's, is 0)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    return labels, areas


def not_dust(areas: np.ndarray) -> np.ndarray:
    """The labels of the components (areas as `labelled` gives them) with at least DUST_SHARE of the largest's."""
    return np.flatnonzero(areas >= DUST_SHARE * areas.max()) if len(areas) > 1 else np.zeros(0, int)


def without_dust(mask: np.ndarray) -> np.ndarray:
    """A boolean mask less its dust."""
    labels, areas = labelled(mask)
    keep = np.zeros(len(areas), bool)
    keep[not_dust(areas)] = True
    return keep[labels]


def components(mask: np.ndarray, name: str) -> tuple[np.ndarray, list[Group]]:
    """Label image and one Group per 8-connected component that is not dust. Everything after works on boxes,
    so the cost grows with the number of components, not with it times the image size; too many is refused."""
    labels, areas = labelled(mask)
    marks = not_dust(areas)
    if len(marks) > MAX_COMPONENTS:
        raise NotADigit(f"{name}: {len(marks):,} separate marks (more than {MAX_COMPONENTS}): not a digit or "
                        "a number")
    boxes = ndimage.find_objects(labels)  # boxes[i - 1]: (rows, cols) slices of component i
    groups = []
    for i in marks:
        rows, cols = boxes[i - 1]
        groups.append(Group([int(i)], cols.start, cols.stop, rows.start, rows.stop, int(areas[i])))
    return labels, groups


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


def stroke_mask(ink: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of `ink` above a faint level that are connected to one above INK_THRESHOLD (a
    hysteresis threshold), the faint level clear of what is left on the paper."""
    strong = ink > INK_THRESHOLD * 255
    clear = int(CLEARANCE * max(ink.shape)) * 2 + 1
    paper = ink[~ndimage.maximum_filter(strong, size=clear)]
    residue = float(np.percentile(paper, RESIDUE_PERCENTILE)) if paper.size else 0.0
    faint = min(INK_THRESHOLD * 255, max(FAINT_THRESHOLD * 255, RESIDUE_MARGIN * residue))
    labels, n = ndimage.label(ink > faint, structure=np.ones((3, 3)))
    keep = np.zeros(n + 1, bool)
    keep[labels[strong]] = True
    keep[0] = False
    return keep[labels]


def digit_groups(ink: np.ndarray, name: str) -> tuple[np.ndarray, list[Group]]:
    """Label image of the ink (bright, 0..255) and its marks grouped into digits, left to right."""
    labels, comps = components(stroke_mask(ink), name)
    return labels, merge_fragments(drop_specks(merge_overlapping(comps))) if comps else []
