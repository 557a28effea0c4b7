"""Other people's hands from handwriting fonts: digits and letters as type designers drew real hands.

The bank (assets/font_glyphs.npz, built by scripts/font_bank.py from Google's handwriting fonts, SIL Open Font
License) holds each family's digits and letters in two weights. Each family belongs to one split, by a hash of its
group: training draws only from "train" families; benchmarks/other_hands.py measures on the "val" and "test" ones.
A drawn glyph is slanted, turned, narrowed or widened, and re-penned (its strokes grown or thinned towards a random
pen, the same range of pens as training.strokes.Hand), then fitted as MNIST's digits were.

    font_digits(n, rng, split="train") -> (n, 28, 28) uint8, (n,) int64 labels
    font_letters(n, rng, split="train") -> (n, 28, 28) uint8   # marks that are not digits
"""
from __future__ import annotations

import zlib
from functools import lru_cache
from importlib import resources

import numpy as np

from ..constants import DIGIT_BOX, IMAGE_SIZE, MNIST_STROKE, NUM_CLASSES
from ..errors import DigitsError
from .glyphs import LETTERS
from .strokes import PEN, TURN, fitted

BANK = "font_glyphs.npz"
CHARACTERS = "0123456789" + "".join(k.removeprefix("small ") for k in LETTERS)  # digits first, then letters
GLYPH_BOX, GLYPH_HEIGHT = 48, 40  # px: each glyph's canvas, and its taller side in it (2x MNIST's 20-px box)
GROUPS = ("playwrite-", "edu-", "delius", "shadows-", "caveat")  # families of one design count as one
SPLIT_HASH = {"val": 20, "test": 40}  # crc32(group) % 100 below 20: validation; below 40: test; else training
MAX_PEN_STEP = 3  # px of the glyph canvas a stroke is grown or thinned by at most, per side
WIDTH = (0.8, 1.15)  # a glyph's width is scaled by this (uniform): the designer drew its shape already
SLANT = 0.35  # shear x += slant * -y, uniform in +/- this (19 degrees): script fonts lean already
ROOM = 0.8  # a warped glyph is shrunk to this much of its canvas, so that a slant keeps it inside
INK = 127  # a glyph's pixel above this (of 255) is inside a stroke
THIN_KEEPS = 0.4  # a thinned glyph is kept only if it keeps more than this share of its ink


def split_of(family: str) -> str:
    group = next((g for g in GROUPS if family.startswith(g)), family)
    h = zlib.crc32(group.encode()) % 100
    return next((s for s, below in SPLIT_HASH.items() if h < below), "train")


@lru_cache(maxsize=1)
def bank() -> tuple[np.ndarray, tuple[str, ...]]:
    """The glyphs (F, 2, len(CHARACTERS), GLYPH_BOX, GLYPH_BOX) uint8 and the family names, checked."""
    try:
        with resources.files("digit_recognizer.assets").joinpath(BANK).open("rb") as f:
            with np.load(f, allow_pickle=False) as z:
                glyphs, names, chars, checksum = z["glyphs"], tuple(z["names"].tolist()), z["characters"], z["checksum"]
    except (OSError, KeyError, ValueError) as e:
        raise DigitsError(f"the font glyph bank {BANK} is missing or damaged ({e}): rebuild it with "
                          "python scripts/font_bank.py") from None
    if "".join(chars.tolist()) != CHARACTERS or zlib.crc32(glyphs.tobytes()) != int(checksum):
        raise DigitsError(f"the font glyph bank {BANK} does not match this version: rebuild it with "
                          "python scripts/font_bank.py")
    return glyphs, names


def families(split: str) -> np.ndarray:
    names = bank()[1]
    return np.array([i for i, n in enumerate(names) if split_of(n) == split], np.int64)


def stroke_width(ink: np.ndarray) -> float:
    """A glyph's stroke width in px: twice its inked area over its outline's length."""
    import cv2

    mask = (ink > INK).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * mask.sum() / max(outline, 1.0)


def written(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(GLYPH_BOX, GLYPH_BOX) uint8 -> (28, 28) uint8: slanted, turned, narrowed or widened, re-penned, fitted."""
    import cv2

    x = glyph.astype(np.float32)
    t = np.radians(rng.uniform(-TURN, TURN))
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    shape = np.array([[rng.uniform(*WIDTH), -rng.uniform(-SLANT, SLANT)], [0.0, 1.0]])
    a = turn @ shape * ROOM
    c = np.array([GLYPH_BOX / 2, GLYPH_BOX / 2])
    x = cv2.warpAffine(x, np.hstack([a, (c - a @ c)[:, None]]).astype(np.float32), (GLYPH_BOX, GLYPH_BOX),
                       flags=cv2.INTER_LINEAR)
    pen = rng.uniform(*PEN) * MNIST_STROKE * GLYPH_HEIGHT * ROOM / DIGIT_BOX  # px in this canvas
    step = int(np.clip(round((pen - stroke_width(x)) / 2), -MAX_PEN_STEP, MAX_PEN_STEP))
    if step:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(step) + 1, 2 * abs(step) + 1))
        y = cv2.dilate(x, k) if step > 0 else cv2.erode(x, k)
        if step > 0 or (y > INK).sum() > THIN_KEEPS * (x > INK).sum():  # a thin stroke is not thinned away
            x = y
    out = fitted(x)
    return out if out is not None else fitted(glyph.astype(np.float32))


def drawn(chars: np.ndarray, rng: np.random.Generator, split: str) -> np.ndarray:
    """One written glyph per character index in `chars`, each from a random family of `split` and weight."""
    glyphs = bank()[0]
    fams = families(split)
    out = np.empty((len(chars), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for k, ch in enumerate(chars):
        out[k] = written(glyphs[fams[rng.integers(len(fams))], rng.integers(glyphs.shape[1]), ch], rng)
    return out


def font_digits(n: int, rng: np.random.Generator, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """n digits (each of the ten equally likely) from handwriting fonts: (n, 28, 28) uint8, (n,) int64."""
    labels = rng.integers(NUM_CLASSES, size=n).astype(np.int64)
    return drawn(labels, rng, split), labels


def font_letters(n: int, rng: np.random.Generator, split: str = "train") -> np.ndarray:
    """n letters from handwriting fonts (marks that are not digits): (n, 28, 28) uint8."""
    return drawn(rng.integers(NUM_CLASSES, len(CHARACTERS), size=n), rng, split)
