"""Digits written with a fat marker, as the reader hands them to the model.

A marker's stroke is the pen's path widened by its nib: each stroke grows by the nib's size and the bays and
loops narrower than that fill with ink. The reader thins fat strokes back to MNIST's width (`inference.reader.fit`),
which cannot reopen what the ink filled: the model is shown the digit closed up, or a solid blob whose notches
say which digit it is, shapes that MNIST's pens never make. Training on such digits, put through the reader's
own fitting code (`fit_and_centre`: the first of the views it reads), teaches the model to read them.

    marker_bank(images (N, 28, 28) uint8, seed, pen=False) -> (N, 28, 28) uint8   # one rendition per digit

The marker's stroke is drawn either relative to the digit's own (`FATTER` times as wide: a bold version of each
writer's hand) or, with `pen`, as a pen of its own (`MARKER_PEN` times MNIST's median stroke, whatever the digit:
how a marker writes, and what the marker reader, `recipes.RECIPES["marker"]`, learns from).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..constants import IMAGE_SIZE, MNIST_STROKE, PIXEL_MAX
from ..inference.reader import PARAMS
from ..inference.reader.fit import fit_and_centre
from ..inference.reader.masks import cropped, is_ink, typical_width
from ..inference.reader.ops import resized

FINE = 3  # the nib is drawn on a grid this many times finer than MNIST's
FATTER = (1.8, 4.5)  # the marker's stroke, in widths of the digit's own stroke (uniform)
MARKER_PEN = (2.0, 4.5)  # or the marker's own stroke, in MNIST's median strokes (uniform)
CHISEL = 0.5  # share of chisel-tipped markers; the rest have a round nib
CHISEL_THINNESS = (0.25, 0.6)  # a chisel nib's short axis over its long axis (uniform)
BANK_SEED = 104_729  # the bank's draws come from (seed, BANK_SEED, image index): any chunk order gives one bank


def nib_grown(inside: np.ndarray, reach: float, thinness: float, angle: float) -> np.ndarray:
    """A boolean stroke mask widened by an elliptical nib: `reach` px along its long axis (each side),
    `thinness` times that across it, the long axis at `angle` degrees."""
    from scipy import ndimage

    if thinness >= 1.0:
        return ndimage.distance_transform_edt(~inside) <= reach
    turned = ndimage.rotate(inside.astype(np.float32), angle, reshape=True, order=1) > PARAMS.ink.inside
    # Distances measured with the short axis stretched 1/thinness times: the ball of radius `reach` in those
    # units is the nib's ellipse.
    grown = ndimage.distance_transform_edt(~turned, sampling=(1.0 / thinness, 1.0)) <= reach
    back = ndimage.rotate(grown.astype(np.float32), -angle, reshape=True, order=1) > PARAMS.ink.inside
    top, left = (np.array(back.shape) - inside.shape) // 2  # rotating out and back added a border
    return back[top:top + inside.shape[0], left:left + inside.shape[1]]


def marker_digit(digit: np.ndarray, fatter: float, thinness: float = 1.0, angle: float = 0.0,
                 pen: float | None = None) -> np.ndarray:
    """(28, 28) uint8 MNIST digit, ink bright -> the same digit drawn with a marker whose stroke is `fatter` times
    as wide, or given `pen`, that many times MNIST's median stroke (a nib of `thinness` and `angle`, as
    nib_grown), as the model is shown it: (28, 28) uint8."""
    pad = IMAGE_SIZE // 4  # MNIST px of room around the digit for the strokes to grow into
    a = np.pad(digit.astype(np.float32) / PIXEL_MAX, pad)
    side = a.shape[0] * FINE
    fine = resized(a, (side, side), Image.Resampling.BICUBIC)
    inside = fine > PARAMS.ink.inside
    if not inside.any():
        return digit
    own = typical_width(inside, "constant")  # fine px
    wide = own * fatter if pen is None else pen * MNIST_STROKE * FINE
    reach = max(0.0, wide - own) / 2  # fine px added to each side of a stroke
    fat = nib_grown(inside, reach, thinness, angle).astype(np.float32) * PIXEL_MAX
    # Back to twice MNIST's grid, anti-aliased, as a scan or photo of the digit would be.
    coverage = resized(fat, (side * 2 // FINE, side * 2 // FINE), Image.Resampling.BOX)
    return fit_and_centre(cropped(coverage, is_ink(coverage, PARAMS.ink.seen)))


def random_marker(digit: np.ndarray, rng: np.random.Generator, pen: bool = False) -> np.ndarray:
    """marker_digit with a marker drawn at random: FATTER (or with `pen`, MARKER_PEN), round or chisel-tipped,
    at any angle."""
    width = rng.uniform(*(MARKER_PEN if pen else FATTER))
    thinness = rng.uniform(*CHISEL_THINNESS) if rng.random() < CHISEL else 1.0
    return marker_digit(digit, width, thinness, rng.uniform(0.0, 180.0), pen=width if pen else None)


def marker_chunk(images: np.ndarray, seed: int, start: int, pen: bool = False) -> np.ndarray:
    out = np.empty_like(images)
    for k, digit in enumerate(images):
        out[k] = random_marker(digit, np.random.default_rng([seed, BANK_SEED, start + k]), pen)
    return out


def marker_bank(images: np.ndarray, seed: int, workers: int = 1, pen: bool = False, start: int = 0) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 28, 28) uint8: every digit once with a marker drawn from (seed, start + its
    index); `workers` processes share the work, with the same result."""
    if workers <= 1 or len(images) < 2 * workers:
        return marker_chunk(images, seed, start, pen)
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, len(images), workers + 1).astype(int)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(marker_chunk, [images[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                         [seed] * workers, (start + bounds[:-1]).tolist(), [pen] * workers)
        return np.concatenate(list(parts))
