"""The image operations every step uses, on OpenCV (float32 images, (h, w)), and the one test of what is ink.

Border conventions follow what each use needs: "nearest" repeats the edge pixel (lighting goes on past the
frame), "reflect" mirrors (a smoothing), "constant" puts paper there.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from ...constants import PIXEL_MAX

GAUSS_TRUNCATE = 4.0  # a Gaussian's kernel reaches this many sigmas (SciPy's default, so widths carry over)
SAMPLE = 1 << 13  # pixels a statistic of a whole image is taken over


def _cv2():
    import cv2

    cv2.setNumThreads(1)  # the reader runs one image per thread; OpenCV's own pool would oversubscribe the cores
    return cv2


def border(mode: str) -> int:
    cv2 = _cv2()
    return {"nearest": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT,
            "constant": cv2.BORDER_CONSTANT}[mode]


def f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def sample(values: np.ndarray) -> np.ndarray:
    """SAMPLE of the values at random places fixed once (the same image gives the same answer; a regular stride
    would alias with a regular pattern, ruled lines, a grid): enough for a median or a percentile of a whole
    image's pixels at a fixed cost whatever its size (docs/experiments.md, § The reader as named steps)."""
    values = values.ravel()
    if values.size <= SAMPLE:
        return values
    return values[sample_at(values.size)]


def sample_at(size: int) -> np.ndarray:
    """The SAMPLE positions `sample` takes of `size` values: the same share of the way along for every size."""
    return (sample_places() * size).astype(np.int64)


@lru_cache(maxsize=1)
def sample_places() -> np.ndarray:
    """SAMPLE uniform draws in [0, 1), from a fixed seed."""
    return np.random.default_rng(SAMPLE).random(SAMPLE)


def percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (its default, linear interpolation), to the last bit, by one partition: NumPy's
    own costs 30 us of checks around a 4 us selection on a digit's few thousand values."""
    return percentiles(values, (q,))[0]


def percentiles(values: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """percentile(values, q) for each q, all from one partition."""
    v = np.asarray(values).ravel()
    if v.size == 0:
        return tuple(float(np.percentile(v, q)) for q in qs)  # NumPy's own answer for nothing
    at = [q / 100 * (v.size - 1) for q in qs]
    los = [int(np.floor(a)) for a in at]
    his = [min(lo + 1, v.size - 1) for lo in los]
    part = np.partition(v, sorted(set(los + his)))
    out = []
    for a_t, lo, hi in zip(at, los, his):
        a, b, t = part[lo], part[hi], a_t - lo
        out.append(float(b - (b - a) * (1 - t)) if t >= 0.5 else float(a + (b - a) * t))  # NumPy's two-sided lerp
    return tuple(out)


def median(values: np.ndarray) -> float:
    """np.median(values), to the last bit, by one partition (without NumPy's checks around it)."""
    v = np.asarray(values).ravel()
    if v.size == 0:
        return float(np.median(v))  # NumPy's own answer for nothing
    k = v.size // 2
    part = np.partition(v, [k - 1, k] if v.size % 2 == 0 else k)
    return float(part[k]) if v.size % 2 else float((part[k - 1] + part[k]) / 2)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two equally long arrays (nan where either is constant)."""
    a, b = a.astype(np.float64) - a.mean(dtype=np.float64), b.astype(np.float64) - b.mean(dtype=np.float64)
    norm = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / norm if norm > 0 else float("nan")


def is_ink(x: np.ndarray, level: float) -> np.ndarray:
    """(h, w) bool: the pixels of x (ink bright, 0..255) above `level`, a share of full ink (ReaderParams.ink)."""
    return x > level * PIXEL_MAX


def kernel_size(sigma: float) -> int:
    """Taps of a Gaussian of `sigma` px reaching GAUSS_TRUNCATE sigmas either side."""
    return 2 * int(GAUSS_TRUNCATE * sigma + 0.5) + 1


def gaussian(x: np.ndarray, sigma: float, mode: str = "reflect") -> np.ndarray:
    """x smoothed by a Gaussian of `sigma` px (kernel to GAUSS_TRUNCATE sigmas)."""
    if sigma <= 0:
        return f32(x)
    k = kernel_size(sigma)
    return _cv2().GaussianBlur(f32(x), (k, k), sigma, borderType=border(mode))


@lru_cache(maxsize=64)
def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) float32: a Gaussian blur along one axis of n px as a matrix, the same kernel as `gaussian`'s and the
    taps that fall past either end landing on the end pixel (the edge repeated)."""
    k = kernel_size(sigma)
    r = k // 2
    w = _cv2().getGaussianKernel(k, sigma).ravel()  # (k,) float64, summing to 1
    c = np.concatenate([[0.0], np.cumsum(w)])  # c[m]: the weight of the first m taps
    padded = np.concatenate([np.zeros(n), w, np.zeros(n)])  # w[t] at padded[n + t]
    i = np.arange(n)
    # m[i, j] = w[j - i + r] = padded[n + r - i + j]: row i is the n-long window from n + r - i
    m = np.lib.stride_tricks.sliding_window_view(padded, n)[n + r - i]  # (n, n), a copy
    m[:, 0] = c[np.clip(r - i + 1, 0, k)]  # taps at offsets <= -i
    m[:, n - 1] = c[k] - c[np.clip(n - 1 - i + r, 0, k)]  # taps at offsets >= n - 1 - i
    if n == 1:
        m[0, 0] = 1.0
    return m.astype(np.float32)


def wide_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """gaussian(x, sigma, "nearest") for a sigma a sizeable share of the image (the lighting): as two small matrix
    products, where OpenCV's kernel, wider than the image, costs its width per pixel."""
    h, w = x.shape
    return blur_matrix(h, float(sigma)) @ f32(x) @ blur_matrix(w, float(sigma)).T


def opened(x: np.ndarray, size: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """A grey opening by a flat rectangle of size (rows, cols): every bright mark narrower than it removed."""
    cv2 = _cv2()
    kernel = np.ones((max(1, size[0]), max(1, size[1])), np.uint8)
    return cv2.morphologyEx(f32(x), cv2.MORPH_OPEN, kernel, borderType=border(mode))


def longest_runs(x: np.ndarray, length: int) -> np.ndarray:
    """(h,) for each row of x, the brightest level that a run of `length` px holds throughout: the row's maximum of
    a grey opening by a 1 x length segment (the row mirrored past its ends), by doubling minima, which costs
    log2(length) passes where the opening itself costs `length`."""
    left = length // 2  # levels rounded to whole grey levels: a quarter of the memory to pass over
    e = np.pad(np.rint(x).astype(np.uint8), ((0, 0), (left, length - 1 - left)), mode="symmetric")
    span = 1
    while span * 2 <= length:  # e[:, j] = min of the `span` px from j on
        e = np.minimum(e[:, :-span], e[:, span:])
        span *= 2
    if length > span:
        e = np.minimum(e[:, :-(length - span)], e[:, length - span:])
    return e.max(axis=1).astype(np.float32)


def box_mean(x: np.ndarray, k: int, mode: str = "nearest") -> np.ndarray:
    """The mean over a k x k box around each pixel."""
    return _cv2().blur(f32(x), (k, k), borderType=border(mode))


def disk(radius: float) -> np.ndarray:
    """(2r+1, 2r+1) uint8 footprint of a disk of `radius` px, r = ceil(radius)."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy ** 2 + xx ** 2 <= radius ** 2).astype(np.uint8)


def eroded(x: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return _cv2().erode(f32(x), footprint, borderType=border("constant"), borderValue=0)


def dilated(x: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return _cv2().dilate(f32(x), footprint, borderType=border("constant"), borderValue=0)


def grown(mask: np.ndarray, px: int, square: bool = False) -> np.ndarray:
    """A boolean mask grown by `px` steps of a 3x3 cross (or square)."""
    cv2 = _cv2()
    shape = cv2.MORPH_RECT if square else cv2.MORPH_CROSS
    kernel = cv2.getStructuringElement(shape, (3, 3))
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=px).astype(bool)


def edge(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (the frame counts as outside)."""
    cv2 = _cv2()
    inner = cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & ~inner.astype(bool)


def depth(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance in px from each pixel of a boolean mask to the nearest pixel outside it (0 outside)."""
    cv2 = _cv2()
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def bounds(mask: np.ndarray) -> tuple[slice, slice] | None:
    """(rows, columns) of a boolean mask's bounding box, or None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def typical_width(mask: np.ndarray, beyond: str = "constant") -> float:
    """Typical width in px of the strokes in a boolean mask: twice the 90th percentile of the distance to the
    nearest non-stroke pixel, as MNIST's widths were measured (constants.MNIST_STROKES). `beyond` is how the mask
    goes on past its edges ("edge": a stroke cut by the frame goes on; "constant": paper). 1 px for no strokes."""
    box = bounds(mask)
    if box is None:
        return 1.0
    if beyond == "constant":  # paper all round: the strokes' box alone gives the same distances
        mask = mask[box]
    else:  # the box and the ring of paper round it where the frame does not cut it: the same distances
        rows, cols = box
        mask = mask[max(rows.start - 1, 0):rows.stop + 1, max(cols.start - 1, 0):cols.stop + 1]
    d = depth(np.pad(mask, 1, mode=beyond))[1:-1, 1:-1]
    return 2.0 * percentile(d[mask], 90)


def components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """A boolean mask's connected components: (h, w) int32 labels (0: background) and (n + 1, 5) stats (x, y,
    width, height, area), row 0 the background's (its area counted within the marks' bounding box only).
    Labelled within that box, which on a page is a small part of it."""
    cv2 = _cv2()
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


def kept(labels: np.ndarray, stats: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The components (as `components` gives them) where keep (n + 1,) bool is set, numbered 1.. in the order
    they had: the marks and stats `components` gives of the mask of those alone, without labelling it again (row
    0 stays the background's)."""
    keep = keep.copy()
    keep[0] = False
    number = (np.cumsum(keep) * keep).astype(np.int32)  # (n + 1,): each kept label's new number, 0 for the rest
    return looked_up(labels, stats, number), np.concatenate([stats[:1], stats[keep]])


def looked_up(labels: np.ndarray, stats: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[labels] for a table that maps the background (label 0) to 0, looked up only inside the bounding box
    of the components it maps to something else (on a page, a small part of it)."""
    out = np.zeros(labels.shape, table.dtype)
    ids = np.flatnonzero(table[1:]) + 1
    if len(ids):
        x0, y0 = stats[ids, 0].min(), stats[ids, 1].min()
        x1, y1 = (stats[ids, 0] + stats[ids, 2]).max(), (stats[ids, 1] + stats[ids, 3]).max()
        out[y0:y1, x0:x1] = table[labels[y0:y1, x0:x1]]
    return out


def shrunk(x: np.ndarray, to: float | tuple[int, int]) -> np.ndarray:
    """x box-averaged to `to`: a factor of its size (at least 1 px a side; x itself for 1 or more) or a shape
    (h, w) no larger than its own."""
    if not isinstance(to, tuple):
        if to >= 1.0:
            return x
        to = (max(1, round(x.shape[0] * to)), max(1, round(x.shape[1] * to)))
    return _cv2().resize(f32(x), (to[1], to[0]), interpolation=_cv2().INTER_AREA)


def stretched(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A smooth field (lighting) resampled bilinearly to `shape` = (h, w)."""
    return _cv2().resize(f32(x), (shape[1], shape[0]), interpolation=_cv2().INTER_LINEAR)


def resized(x: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """x resampled to size = (width, height) by Pillow: the digit's own fitting, as MNIST-like digits were made
    in training (training.marker, training.strokes)."""
    return np.asarray(Image.fromarray(f32(x), mode="F").resize(size, method))


def cropped(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x cut to the bounding box of a non-empty mask."""
    return x[bounds(mask)]
