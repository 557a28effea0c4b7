"""Other people's hands: digits as writers outside MNIST's population write them, for training and measuring.

Two sources, both labelled with the digit they show:
- MNIST's own strokes with the strokes other writers add: a flag (short or long) and a foot on a 1, a bar
  across a 7's stem. The writer's hand stays MNIST's; only the convention changes.
- Glyphs drawn by a random hand (training.glyphs.DIGIT_STYLES through training.strokes): every style of every
  digit, slanted up to about 30 degrees either way, with pens from fine to felt-tip.

    flagged_one(digit (28, 28) uint8, rng) -> (28, 28) uint8
    crossed_seven(digit, rng) -> (28, 28) uint8
    styled_digits(n, rng) -> images (n, 28, 28) uint8, labels (n,) int64
"""
from __future__ import annotations

import numpy as np

from ..constants import IMAGE_SIZE, PIXEL_MAX
from .glyphs import DIGIT_STYLES
from .strokes import Hand, draw, fitted

UP = 4  # MNIST digits are edited at 4x their size, so that added strokes are anti-aliased like the rest
INK = 0.5 * PIXEL_MAX  # an edited digit's pixel above this is inside a stroke
FLAG_ANGLE = (15.0, 50.0)  # degrees between a 1's stem (downwards) and its flag (uniform)
FLAG_LENGTH = (0.15, 0.5)  # the flag's length in stem lengths (uniform)
FOOT = 0.3  # share of edited 1s that also get a foot
FOOT_HALF = (0.12, 0.3)  # half the foot's width, in stem lengths (uniform)
BAR_HEIGHT = (0.42, 0.62)  # where a 7's bar crosses the stem, as a fraction of the digit's height (uniform)
BAR_REACH = (0.12, 0.32)  # how far the bar reaches either side of the stem, in digit widths (uniform)
BAR_TILT = 6.0  # degrees, uniform in +/- this


def enlarged(digit: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 -> (112, 112) float32, bicubic."""
    import cv2

    big = cv2.resize(digit.astype(np.float32), (IMAGE_SIZE * UP, IMAGE_SIZE * UP), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, PIXEL_MAX)


def stroke_px(ink: np.ndarray, length: float) -> int:
    """The width of a digit's strokes, in px: the ink's area over the stroke's length."""
    return int(np.clip(round(ink.sum() / max(length, 1.0)), 2, 4 * UP))


def line(img: np.ndarray, a: np.ndarray, b: np.ndarray, width: int) -> None:
    import cv2

    cv2.line(img, tuple(int(v) for v in np.rint(a)), tuple(int(v) for v in np.rint(b)), PIXEL_MAX, width,
             cv2.LINE_AA)


def flagged_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 1 written the continental way: a flag from the top of its stem, down and to the left, and
    sometimes a foot; refitted as MNIST was (28, 28) uint8."""
    big = enlarged(digit)
    ink = big > INK
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return digit
    top_row, bottom_row = ys.min(), ys.max()
    band = max(1, (bottom_row - top_row) // 8)
    top = np.array([xs[ys <= top_row + band].mean(), top_row + band / 2])
    bottom = np.array([xs[ys >= bottom_row - band].mean(), bottom_row - band / 2])
    stem = bottom - top
    length = float(np.hypot(*stem))
    down = stem / max(length, 1.0)
    a = np.radians(rng.uniform(*FLAG_ANGLE))
    flag = np.array([down[0] * np.cos(a) - down[1] * np.sin(a), down[0] * np.sin(a) + down[1] * np.cos(a)])
    width = stroke_px(ink, length)
    line(big, top, top + flag * length * rng.uniform(*FLAG_LENGTH), width)
    if rng.random() < FOOT:
        half = np.array([length * rng.uniform(*FOOT_HALF), 0.0])
        line(big, bottom - half, bottom + half, width)
    return refitted(big, digit)


def crossed_seven(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 7 with a bar across its stem, as most of Europe writes it; refitted (28, 28) uint8."""
    big = enlarged(digit)
    ink = big > INK
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return digit
    row = int(ys.min() + rng.uniform(*BAR_HEIGHT) * (ys.max() - ys.min()))
    cols = np.nonzero(ink[row])[0]
    if len(cols) == 0:
        return digit
    centre, wide = cols.mean(), xs.max() - xs.min()
    tilt = np.tan(np.radians(rng.uniform(-BAR_TILT, BAR_TILT)))
    left, right = wide * rng.uniform(*BAR_REACH), wide * rng.uniform(*BAR_REACH)
    a, b = np.array([centre - left, row + tilt * left]), np.array([centre + right, row - tilt * right])
    line(big, a, b, stroke_px(ink, float(ys.max() - ys.min()) * 1.6))  # a 7's path is ~1.6 of its height
    return refitted(big, digit)


def refitted(big: np.ndarray, digit: np.ndarray) -> np.ndarray:
    out = fitted(big)
    return digit if out is None else out


def styled_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n digits (each of the ten equally likely), each in one of its styles drawn by a random hand:
    (n, 28, 28) uint8 and (n,) int64 labels."""
    labels = rng.integers(len(DIGIT_STYLES), size=n).astype(np.int64)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for k, d in enumerate(labels):
        styles = DIGIT_STYLES[int(d)]
        images[k] = draw(styles[rng.integers(len(styles))], Hand.random(rng), rng)
    return images, labels


def edited_mnist(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every 1 with a flag and every 7 with a bar, from MNIST images (N, 28, 28) uint8 and labels (N,):
    (M, 28, 28) uint8 and (M,) int64, the 1s first."""
    ones, sevens = images[labels == 1], images[labels == 7]
    out = [flagged_one(d, rng) for d in ones] + [crossed_seven(d, rng) for d in sevens]
    if not out:
        return np.empty((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8), np.empty(0, np.int64)
    return np.stack(out), np.array([1] * len(ones) + [7] * len(sevens), np.int64)
