"""A small digit enlarged without smoothing (nearest neighbour) is taken back to its real pixels."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digit_recognizer.inference.reader import PARAMS, read_digit
from digit_recognizer.inference.reader import blocks


def unblocked(x: np.ndarray) -> np.ndarray:
    return blocks.unblocked(x, PARAMS.decode)

SMALL = 9  # px: a digit from a low-resolution scan


def small_digit() -> np.ndarray:
    """(SMALL, SMALL) grey levels: a dark 0 on white, anti-aliased by drawing it 8x larger and shrinking."""
    img = Image.new("L", (SMALL * 8, SMALL * 8), 255)
    ImageDraw.Draw(img).ellipse([14, 6, 58, 66], outline=0, width=10)
    return np.asarray(img.resize((SMALL, SMALL), Image.Resampling.BOX)).astype(np.float32)


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.rint(a).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("side", [SMALL * 2, 25, 64, 100, 157, 300])
def test_nearest_enlargements_by_pillow_and_numpy_are_undone_exactly(side):
    a = small_digit()
    by_pillow = np.asarray(Image.fromarray(a, "F").resize((side, side), Image.Resampling.NEAREST))
    at = np.arange(side) * SMALL // side
    by_numpy = a[np.ix_(at, at)]
    for big in (by_pillow, by_numpy):
        assert np.array_equal(unblocked(big), a)


def test_smooth_images_and_drawings_are_left_alone():
    a = small_digit()
    smooth = np.asarray(Image.fromarray(a, "F").resize((120, 120), Image.Resampling.BICUBIC))
    photo = np.random.default_rng(0).normal(128, 20, (90, 70)).astype(np.float32)
    drawing = Image.new("L", (150, 150), 255)  # hard-edged strokes at no regular spacing
    ImageDraw.Draw(drawing).line([(20, 13), (131, 120), (37, 141)], fill=0, width=11)
    for x in (smooth, photo, np.asarray(drawing, np.float32), np.full((50, 50), 200.0, np.float32)):
        assert unblocked(x) is x


def test_a_blocky_digit_is_read_like_the_small_one(monkeypatch):
    a = small_digit()
    blocky = np.asarray(Image.fromarray(a, "F").resize((180, 180), Image.Resampling.NEAREST))
    from digit_recognizer.inference.reader import decode

    expected = read_digit(png(a)).images
    assert np.array_equal(read_digit(png(blocky)).images, expected)
    monkeypatch.setattr(decode, "unblocked", lambda x, p: x)  # read as it is: square steps instead of curves
    assert not np.array_equal(read_digit(png(blocky)).images, expected)
