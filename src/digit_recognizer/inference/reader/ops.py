"""The image operations every step uses, on OpenCV (float32 images, (h, w)): blurs, morphology, resizing.

Border conventions follow what each use needs: "nearest" repeats the edge pixel (lighting goes on past the
frame), "reflect" mirrors (a smoothing), "constant" puts paper there.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext
from functools import lru_cache
from typing import ContextManager

import numpy as np
from PIL import Image

GAUSS_TRUNCATE = 4.0  # a Gaussian's kernel reaches this many sigmas (SciPy's default, so widths carry over)


def opencv():
    import cv2

    cv2.setNumThreads(1)  # the reader runs one image per thread; OpenCV's own pool would oversubscribe the cores
    return cv2


class OneBlasThread:
    """A context in which NumPy's and OpenCV's BLAS (each brings its own OpenBLAS) multiply on the calling thread.
    The reader's matrix products are about 100 x 100 (`wide_blur`); on 2 cores that a training run kept busy, one
    such product took 0.03-0.06 ms on one BLAS thread and 4-24 ms (whole ticks of the scheduler) when it woke
    OpenBLAS's pool, which made the reader 2.2x slower. Shared by threads: the first to enter sets one thread,
    the last to leave puts back what was there (threadpoolctl)."""

    def __init__(self, libraries) -> None:
        self.libraries, self.lock, self.inside, self.limiter = libraries, threading.Lock(), 0, None

    def __enter__(self) -> None:
        with self.lock:
            if self.inside == 0:
                self.limiter = self.libraries.limit(limits=1)
            self.inside += 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.inside -= 1
            if self.inside == 0:
                self.limiter.restore_original_limits()


@lru_cache(maxsize=1)
def one_blas_thread() -> ContextManager:
    """The process's OneBlasThread; a context that changes nothing where threadpoolctl is not installed (the
    reader then runs as fast on idle cores, slower on busy ones)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return nullcontext()
    opencv()  # loaded first, so that its OpenBLAS is among the libraries found
    return OneBlasThread(ThreadpoolController().select(user_api="blas"))


def border(mode: str) -> int:
    cv2 = opencv()
    return {"nearest": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT,
            "constant": cv2.BORDER_CONSTANT}[mode]


def f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def kernel_size(sigma: float) -> int:
    """Taps of a Gaussian of `sigma` px reaching GAUSS_TRUNCATE sigmas either side."""
    return 2 * int(GAUSS_TRUNCATE * sigma + 0.5) + 1


def gaussian(x: np.ndarray, sigma: float, mode: str = "reflect") -> np.ndarray:
    """x smoothed by a Gaussian of `sigma` px (kernel to GAUSS_TRUNCATE sigmas)."""
    if sigma <= 0:
        return f32(x)
    k = kernel_size(sigma)
    return opencv().GaussianBlur(f32(x), (k, k), sigma, borderType=border(mode))


@lru_cache(maxsize=64)
def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) float32: a Gaussian blur along one axis of n px as a matrix, the same kernel as `gaussian`'s and the
    taps that fall past either end landing on the end pixel (the edge repeated)."""
    k = kernel_size(sigma)
    r = k // 2
    w = opencv().getGaussianKernel(k, sigma).ravel()  # (k,) float64, summing to 1
    c = np.concatenate([[0.0], np.cumsum(w)])  # c[m]: the weight of the first m taps
    padded = np.zeros(2 * n + k)
    padded[n:n + k] = w  # w[t] at padded[n + t]
    # m[i, j] = w[j - i + r] = padded[n + r - i + j]: row i is the n-long window from n + r - i, a view read
    # backwards row by row, copied once (as float32)
    step = padded.strides[0]
    m = np.lib.stride_tricks.as_strided(padded[n + r:], (n, n), (-step, step), writeable=False).astype(np.float32)
    i = np.arange(n)
    m[:, 0] = c[np.clip(r - i + 1, 0, k)]  # taps at offsets <= -i
    m[:, n - 1] = c[k] - c[np.clip(n - 1 - i + r, 0, k)]  # taps at offsets >= n - 1 - i
    if n == 1:
        m[0, 0] = 1.0
    return m


def wide_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """gaussian(x, sigma, "nearest") for a sigma a sizeable share of the image (the lighting): as two small matrix
    products, where OpenCV's kernel, wider than the image, costs its width per pixel."""
    h, w = x.shape
    return blur_matrix(h, float(sigma)) @ f32(x) @ blur_matrix(w, float(sigma)).T


def opened(x: np.ndarray, size: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """A grey opening by a flat rectangle of size (rows, cols): every bright mark narrower than it removed."""
    cv2 = opencv()
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
    return opencv().blur(f32(x), (k, k), borderType=border(mode))


def disk(radius: float) -> np.ndarray:
    """(2r+1, 2r+1) uint8 footprint of a disk of `radius` px, r = ceil(radius)."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy ** 2 + xx ** 2 <= radius ** 2).astype(np.uint8)


def eroded(x: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return opencv().erode(f32(x), footprint, borderType=border("constant"), borderValue=0)


def dilated(x: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    return opencv().dilate(f32(x), footprint, borderType=border("constant"), borderValue=0)


def shrunk(x: np.ndarray, to: float | tuple[int, int]) -> np.ndarray:
    """x box-averaged to `to`: a factor of its size (at least 1 px a side; x itself for 1 or more) or a shape
    (h, w) no larger than its own."""
    if not isinstance(to, tuple):
        if to >= 1.0:
            return x
        to = (max(1, round(x.shape[0] * to)), max(1, round(x.shape[1] * to)))
    return opencv().resize(f32(x), (to[1], to[0]), interpolation=opencv().INTER_AREA)


def stretched(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A smooth field (lighting) resampled bilinearly to `shape` = (h, w)."""
    return opencv().resize(f32(x), (shape[1], shape[0]), interpolation=opencv().INTER_LINEAR)


def resized(x: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """x resampled to size = (width, height) by Pillow: the digit's own fitting, as MNIST-like digits were made
    in training (training.marker, training.strokes)."""
    return np.asarray(Image.fromarray(f32(x), mode="F").resize(size, method))


