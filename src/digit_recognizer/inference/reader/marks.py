"""Marks on a page grouped into digits: a hysteresis threshold -> connected components -> merged strokes ->
specks dropped -> broken pieces joined, all on bounding boxes (the cost grows with the number of marks, not with
it times the image). Used by the crop step, for one digit (refusing several side by side) and for a number.

    digit_groups(ink, params) -> (labels (h, w) int32, [Group], left to right)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...constants import PIXEL_MAX
from ...errors import NotADigit
from .masks import components, grown, is_ink, labelled
from .stats import median, percentile, sample
from .params import Crop, ReaderParams


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
        return labelled(labels[self.y0:self.y1, self.x0:self.x1], self.ids)


def not_dust(stats: np.ndarray, ids: np.ndarray, p: Crop) -> np.ndarray:
    """Of the components `ids` (stats as masks.components gives them), those with at least p.dust_share of the
    largest one's ink: a grainy photo of faint ink, stretched, leaves hundreds of 1-20 px grains."""
    areas = stats[ids, 4]
    return ids[areas >= p.dust_share * areas.max()] if len(ids) else ids


def dust_free_box(mask: np.ndarray, p: Crop) -> tuple[slice, slice]:
    """(rows, columns) of the bounding box of a non-empty boolean mask less its dust, from its marks' boxes."""
    _, stats = components(mask, p.mark_connectivity)
    found = stats[not_dust(stats, np.arange(1, len(stats)), p)]  # (n, 5) x, y, width, height, area
    x0, y0 = found[:, 0].min(), found[:, 1].min()
    x1, y1 = (found[:, 0] + found[:, 2]).max(), (found[:, 1] + found[:, 3]).max()
    return slice(int(y0), int(y1)), slice(int(x0), int(x1))


def marks(labels: np.ndarray, stats: np.ndarray, ids: np.ndarray, p: Crop) -> tuple[np.ndarray, list[Group]]:
    """Label image and one Group per component of `ids` (labels and stats as masks.components gives them) that
    is not dust; too many is refused."""
    found = not_dust(stats, ids, p)
    if len(found) > p.max_marks:
        raise NotADigit(f"{len(found):,} separate marks (more than {p.max_marks}): not a digit or a number")
    return labels, [Group([int(i)], int(x), int(x + w), int(y), int(y + h), int(a))
                    for i, (x, y, w, h, a) in zip(found, stats[found])]


def drop_specks(groups: list[Group], p: Crop) -> list[Group]:
    """Drop groups that are both much shorter and much lighter than the real digits: dirt, dots."""
    if not groups:
        return groups
    tallest, largest = max(g.height for g in groups), max(g.area for g in groups)
    return [g for g in groups if not (g.height < p.speck_height * tallest and g.area < p.speck_area * largest)]


def merge_overlapping(comps: list[Group], p: Crop) -> list[Group]:
    """Group components whose column ranges overlap (a 5's detached bar, a 4 in two strokes)."""
    groups: list[Group] = []
    for c in sorted(comps, key=lambda c: c.x0):
        if groups:
            g = groups[-1]
            overlap = min(c.x1, g.x1) - max(c.x0, g.x0)
            if overlap > p.merge_overlap * min(c.width, g.width):
                g.absorb(c)
                continue
        groups.append(c)
    return groups


def typical_height(groups: list[Group]) -> float:
    """Median height of the groups at least half as tall as the tallest: fragments must not drag it down."""
    heights = [g.height for g in groups]
    return median(np.array([h for h in heights if 2 * h >= max(heights)]))


def merge_fragments(groups: list[Group], p: Crop) -> list[Group]:
    """Small pieces (a stroke broken by faint ink) join the horizontally nearest group if it is close. After a
    merge only the merged group's neighbours can change their minds, so the scan resumes just before it."""
    groups = sorted(groups, key=lambda g: g.x0)
    h = typical_height(groups)
    i = 0
    while i < len(groups) and len(groups) > 1:
        g = groups[i]
        small = g.width < p.fragment * h and g.height < p.fragment * p.fragment_height * h
        bar = g.height < p.flat * h and g.width > g.height  # a 5's top stroke written apart from its body
        if small or bar:
            gap, j = min((max(groups[j].x0 - g.x1, g.x0 - groups[j].x1, 0), j)
                         for j in (i - 1, i + 1) if 0 <= j < len(groups))
            if gap <= p.merge_gap * h:
                groups[j].absorb(g)
                del groups[i]
                i = max(0, min(i, j) - 1)
                continue
        i += 1
    return groups


def stroke_components(ink: np.ndarray, params: ReaderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The connected components (labels, stats as masks.components gives them) of the pixels of `ink` above a
    faint level, and the ids of those connected to a pixel above ink.strong (a hysteresis threshold). The faint
    level is clear of what the background's removal left on the paper (a JPEG's blocks): p.residue_margin times
    its p.residue_percentile, paper being p.clearance of the longer side or more from any strong pixel."""
    p, levels = params.crop, params.ink
    strong = is_ink(ink, levels.strong)
    reach = int(p.clearance * max(ink.shape))
    paper = ink[~grown(strong, reach, square=True)] if reach else ink[~strong]
    residue = percentile(sample(paper), p.residue_percentile) if paper.size else 0.0
    faint = min(levels.strong * PIXEL_MAX, max(levels.faint * PIXEL_MAX, p.residue_margin * residue))
    labels, stats = components(ink > faint, p.mark_connectivity)
    keep = np.zeros(len(stats), bool)
    keep[labels[strong]] = True
    keep[0] = False
    return labels, stats, np.flatnonzero(keep)  # the others stay labelled: no Group holds them


def digit_groups(ink: np.ndarray, params: ReaderParams) -> tuple[np.ndarray, list[Group]]:
    """Label image of the ink (bright, 0..255) and its marks grouped into digits, left to right."""
    p = params.crop
    labels, comps = marks(*stroke_components(ink, params), p)
    return labels, merge_fragments(drop_specks(merge_overlapping(comps, p), p), p) if comps else []
