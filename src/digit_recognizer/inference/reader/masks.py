"""Boolean masks on OpenCV: the one test of what is ink, and masks' edges, depths, boxes, stroke widths and
connected components."""
from __future__ import annotations

import numpy as np

from ...constants import PIXEL_MAX
from .ops import opencv
from .stats import percentile

WIDTH_PERCENTILE = 90  # of the depths inside strokes: twice it is their width (how MNIST_STROKES was measured)


def labelled(labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """(h, w) bool: the pixels of a label image (components' numbering) whose label is one of `ids`."""
    lut = np.zeros(int(labels.max(initial=0)) + 1, bool)  # one lookup per pixel (np.isin sorts instead)
    lut[[i for i in ids if i < len(lut)]] = True
    return lut[labels]


def is_ink(x: np.ndarray, level: float) -> np.ndarray:
    """(h, w) bool: the pixels of x (ink bright, 0..255) above `level`, a share of full ink (ReaderParams.ink)."""
    return x > level * PIXEL_MAX


def grown(mask: np.ndarray, px: int, square: bool = False) -> np.ndarray:
    """A boolean mask grown by `px` steps of a 3x3 cross (or square)."""
    cv2 = opencv()
    shape = cv2.MORPH_RECT if square else cv2.MORPH_CROSS
    kernel = cv2.getStructuringElement(shape, (3, 3))
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=px).astype(bool)


def edge(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (the frame counts as outside)."""
    cv2 = opencv()
    inner = cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & ~inner.astype(bool)


def depth(mask: np.ndarray, beyond: str | None = None, exact: bool = True) -> np.ndarray:
    """Euclidean distance in px from each pixel of a boolean mask to the nearest pixel outside it (0 outside).
    With `beyond`, the frame is not outside: the mask goes on past it one px ("edge": a stroke cut by the frame
    goes on; "constant": paper). Not `exact`: OpenCV's 5 x 5 chamfer approximation, within 2% of the distance
    and a fifth of the exact transform's time."""
    cv2 = opencv()
    kind = cv2.DIST_MASK_PRECISE if exact else cv2.DIST_MASK_5
    m = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)  # the same bytes, 0 and 1
    if beyond is None:
        return cv2.distanceTransform(m, cv2.DIST_L2, kind)
    m = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_REPLICATE if beyond == "edge" else cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(m, cv2.DIST_L2, kind)[1:-1, 1:-1]


def bounds(mask: np.ndarray) -> tuple[slice, slice] | None:
    """(rows, columns) of a boolean mask's bounding box, or None for an empty mask (OpenCV's bounding box of
    the non-zero pixels of an 8-bit image: one pass, where NumPy's any() along each axis takes two)."""
    m = np.ascontiguousarray(mask if mask.dtype == bool else mask != 0)
    x, y, w, h = opencv().boundingRect(m.view(np.uint8))
    if w == 0:
        return None
    return slice(y, y + h), slice(x, x + w)


def typical_width(mask: np.ndarray, beyond: str = "constant", exact: bool = True) -> float:
    """Typical width in px of the strokes in a boolean mask: twice the 90th percentile of the distance to the
    nearest non-stroke pixel, as MNIST's widths were measured (constants.MNIST_STROKES). `beyond` is how the mask
    goes on past its edges ("edge": a stroke cut by the frame goes on; "constant": paper). 1 px for no strokes.
    Not `exact`: by the approximate distances (depth), for a width judged on a coarse copy anyway; a width
    compared with MNIST's is measured exactly, as those were."""
    box = bounds(mask)
    if box is None:
        return 1.0
    if beyond == "constant":  # paper all round: the strokes' box alone gives the same distances
        mask = mask[box]
    else:  # the box and the ring of paper round it where the frame does not cut it: the same distances
        rows, cols = box
        mask = mask[max(rows.start - 1, 0):rows.stop + 1, max(cols.start - 1, 0):cols.stop + 1]
    d = depth(mask, beyond, exact)
    return 2.0 * percentile(d[mask], WIDTH_PERCENTILE)


def components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """A boolean mask's connected components: (h, w) int32 labels (0: background) and (n + 1, 5) stats (x, y,
    width, height, area), row 0 the background's (its area counted within the marks' bounding box only).
    Labelled within that box, which on a page is a small part of it."""
    cv2 = opencv()
    box = bounds(mask)
    if box is None:
        return np.zeros(mask.shape, np.int32), np.array([[0, 0, mask.shape[1], mask.shape[0], mask.size]])
    # Grana's block-based algorithm labels 8-connected marks 2-3x faster here than the default, with the same
    # labels and stats (both number the marks in raster order).
    method = cv2.CCL_GRANA if connectivity == 8 else cv2.CCL_DEFAULT
    _, inside, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask[box].astype(np.uint8), connectivity,
                                                                       cv2.CV_32S, method)
    labels = np.zeros(mask.shape, np.int32)
    labels[box] = inside
    stats[1:, 0] += box[1].start
    stats[1:, 1] += box[0].start
    return labels, stats


def cropped(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x cut to the bounding box of a non-empty mask."""
    return x[bounds(mask)]
