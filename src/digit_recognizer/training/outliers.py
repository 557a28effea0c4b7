"""What people hand a digit reader that is not a digit, in MNIST's format, for outlier exposure.

Outlier exposure (Hendrycks, Mazeika & Dietterich, ICLR 2019) trains the model to spread its belief evenly over
the ten digits on such marks, so that its confidence, and the refusal built on it, learn what a digit is not.
The kinds, each a share of a bank:
- glyphs: letters, symbols and shapes drawn by a random hand (training.glyphs.NOT_DIGITS), or letters written in
  handwriting fonts (training.fonts);
- scribbles: a pen wandering through many turns;
- fragments: part of an MNIST digit, cut off by a random line (what is left of a 1 or a 7 is still one, so
  those are not cut);
- pairs: two MNIST digits squeezed side by side into one box;
- blots: ink splashed in an irregular blob.

    outlier_bank(n, rng, digits (N, 28, 28) uint8, labels (N,)) -> (n, 28, 28) uint8
"""
from __future__ import annotations

import numpy as np

from ..constants import IMAGE_SIZE
from .fonts import font_letters
from .glyphs import LETTERS, NOT_DIGITS
from .hands import enlarged
from .strokes import CANVAS, Hand, draw, fitted, render, spline

KINDS = ("glyph", "scribble", "fragment", "pair", "blot")
GLYPH_NAMES = tuple(NOT_DIGITS)  # the glyphs a bank draws from, in a fixed order for the random picks
FONTS_REPLACE = ("glyphs", "letters")  # what the font share of a bank replaces: any drawn glyph, or drawn letters
SHARES = (0.57, 0.15, 0.08, 0.12, 0.08)  # of a bank, in KINDS' order
SCRIBBLE_TURNS = (7, 16)  # control points of a scribble (uniform integers)
KEEP = (0.2, 0.5)  # the share of a digit's ink that a fragment keeps (uniform)
UNCUT = (1, 7)  # digits whose fragments still read as themselves
BLOT_POINTS = (6, 12)  # corners of a blot's outline (uniform integers)
BLOT_SPIKE = (0.3, 1.0)  # each corner's distance from the blot's centre, relative (uniform)


def glyph(rng: np.random.Generator, name: str | None = None) -> np.ndarray:
    """The glyph `name` (a random one if None) of NOT_DIGITS drawn by a random hand: (28, 28) uint8."""
    return draw(NOT_DIGITS[name or GLYPH_NAMES[rng.integers(len(GLYPH_NAMES))]], Hand.random(rng), rng)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A pen wandering through many turns: (28, 28) uint8."""
    points = rng.uniform(-0.5, 0.5, (rng.integers(*SCRIBBLE_TURNS, endpoint=True), 2))
    out = fitted(render([spline(points)], Hand.random(rng).pen))
    return out if out is not None else glyph(rng)


def fragment(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The part of a digit on one side of a random line, keeping a share KEEP of its ink: (28, 28) uint8."""
    big = enlarged(digit)
    ys, xs = np.mgrid[:big.shape[0], :big.shape[1]]
    a = rng.uniform(0, 2 * np.pi)
    along = xs * np.cos(a) + ys * np.sin(a)  # distance along a random direction
    weights = big.ravel() / max(big.sum(), 1.0)
    order = np.argsort(along.ravel())
    cut = along.ravel()[order][np.searchsorted(np.cumsum(weights[order]), rng.uniform(*KEEP))]
    out = fitted(np.where(along <= cut, big, 0.0))
    return out if out is not None else digit


def pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two digits side by side, touching or nearly, fitted into one box: (28, 28) uint8."""
    both = np.concatenate([trimmed(a), trimmed(b)], axis=1).astype(np.float32)
    out = fitted(both)
    return out if out is not None else a


def trimmed(d: np.ndarray) -> np.ndarray:
    cols = np.nonzero(d.max(0) > 0)[0]
    return d[:, cols[0]:cols[-1] + 1] if len(cols) else d


def blot(rng: np.random.Generator) -> np.ndarray:
    """A splash of ink: a filled, spiky outline around a centre: (28, 28) uint8."""
    import cv2

    k = rng.integers(*BLOT_POINTS, endpoint=True)
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    r = rng.uniform(*BLOT_SPIKE, k) * CANVAS / 3
    pts = np.stack([CANVAS / 2 + r * np.cos(angles), CANVAS / 2 + r * np.sin(angles)], 1)
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    cv2.fillPoly(canvas, [np.rint(pts).astype(np.int32)], 255, cv2.LINE_AA)
    return fitted(canvas.astype(np.float32))


def outlier_bank(n: int, rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray, fonts: float = 0.0,
                 replace: str = "glyphs") -> np.ndarray:
    """n marks that are not digits, in KINDS' SHARES, fragments and pairs cut from `digits` (N, 28, 28) uint8
    with `labels` (N,); a share `fonts` of the glyphs (replace="glyphs"), or of the glyphs that are letters
    (replace="letters": symbols and shapes keep their share), are letters from handwriting fonts instead:
    (n, 28, 28) uint8."""
    kinds = rng.choice(len(KINDS), size=n, p=np.array(SHARES) / sum(SHARES))
    typed, names = np.zeros(n, bool), [None] * n
    if fonts:  # drawn only when asked, so that a bank without fonts is the one it always was
        typed = kinds == KINDS.index("glyph")
        if replace == "letters":  # each glyph named first, so that only letters give way to the fonts
            names = [GLYPH_NAMES[i] for i in rng.integers(len(GLYPH_NAMES), size=n)]
            typed &= np.isin(names, LETTERS)
        typed &= rng.random(n) < fonts
    cuttable = np.nonzero(~np.isin(labels, UNCUT))[0]
    out = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    out[typed] = font_letters(int(typed.sum()), rng)
    for k, kind in enumerate(KINDS[i] for i in kinds):
        if typed[k]:
            continue
        if kind == "glyph":
            out[k] = glyph(rng, names[k])
        elif kind == "scribble":
            out[k] = scribble(rng)
        elif kind == "fragment":
            out[k] = fragment(digits[cuttable[rng.integers(len(cuttable))]], rng)
        elif kind == "pair":
            i, j = rng.integers(len(digits), size=2)
            out[k] = pair(digits[i], digits[j])
        else:
            out[k] = blot(rng)
    return out
