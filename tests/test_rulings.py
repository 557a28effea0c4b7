"""Lined and squared paper and forms' boxes: the printed lines are taken out, the digit's own strokes are not."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digit_recognizer import Recognizer
from digit_recognizer.inference.reader import PARAMS, preprocess, read_digit
from digit_recognizer.inference.reader.decode import open_image, to_gray
from digit_recognizer.inference.reader.lines import lines
from digit_recognizer.inference.reader.polarity import polarity
from digit_recognizer.testing.presentations import make

from conftest import with_params


def remove_rulings(x: np.ndarray, params=PARAMS) -> np.ndarray:
    return lines(np.asarray(x, np.float32), params)[0]


def page_with_ring(grid: int | None, box: int = 0) -> bytes:
    """A dark ring (a 0) on white paper, with light blue lines every `grid` px across and down it, or a form's
    dark box, `box` px wide, along the edges."""
    img = Image.new("RGB", (200, 240), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    if grid:
        for at in range(7, 240, grid):
            draw.line([(0, at), (199, at)], fill=(140, 175, 225), width=1)
        for at in range(7, 200, grid):
            draw.line([(at, 0), (at, 239)], fill=(140, 175, 225), width=1)
    if box:
        draw.rectangle([0, 0, 199, 239], outline=(30, 30, 40), width=box)
    draw.ellipse([60, 50, 140, 190], outline=(20, 20, 30), width=9)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_squared_paper_reads_like_plain_paper(skip_step):
    ink = 40  # grey level of a view's pixel counted as ink
    plain = preprocess(page_with_ring(None))
    squared = preprocess(page_with_ring(23))
    assert abs(int((squared > ink).sum()) - int((plain > ink).sum())) <= 0.1 * (plain > ink).sum()
    skip_step("lines")  # the lines left in cross the ring (the paper around it not cleared): at the working
    # size, where the ring stands 96 px tall, they add about a sixth of its ink
    kept = preprocess(page_with_ring(23), with_params("background", pen_sharpness=float("inf")))
    assert (kept > ink).sum() > 1.1 * (plain > ink).sum()


def test_a_digit_in_a_forms_box_reads_like_one_on_plain_paper(skip_step):
    ink = 40
    plain = preprocess(page_with_ring(None))
    boxed = preprocess(page_with_ring(None, box=3))
    assert abs(int((boxed > ink).sum()) - int((plain > ink).sum())) <= 0.1 * (plain > ink).sum()
    skip_step("lines")  # the box left in: it is cropped with the ring
    assert (preprocess(page_with_ring(None, box=3)) > ink).sum() > 1.3 * (plain > ink).sum()


def test_a_box_along_the_border_is_not_taken_for_the_paper():
    """The border of a boxed image is all ink; the paper is found just inside it, so the ink comes out bright."""
    gray = to_gray(open_image(page_with_ring(None, box=3), "boxed"))
    paper = (slice(100, 140), slice(90, 110))  # inside the ring
    assert polarity(gray, PARAMS)[0][paper].mean() < 50
    outermost = with_params("polarity", frame_depth=0.0)  # judged on the outermost pixels alone: the box is paper
    assert polarity(gray, outermost)[0][paper].mean() > 200


def test_a_stroke_crossing_a_line_goes_on():
    x = np.zeros((100, 100))
    x[[20, 50, 80], :] = 120.0  # three ruled lines
    x[10:90, 45:52] = 255.0  # a 1 crossing them
    out = remove_rulings(x)
    assert out[[20, 80], :40].max() == 0  # the lines are gone ...
    assert out[10:90, 45:52].min() > 100  # ... the stroke is whole


def test_a_forms_box_goes_when_its_lines_are_as_thick_as_the_strokes():
    """A thin pen's digit cut out with three sides of a form's box, the lines as thick as the pen's strokes: no
    one line is far thinner than the strokes, but together they make a box, and all three go."""
    x = np.zeros((200, 160))
    x[:6], x[-6:], x[:, :6] = 255.0, 255.0, 255.0  # top, bottom and left of the box, 6 px
    x[30:170, 80:86] = 255.0  # a 1, strokes 6 px
    out = remove_rulings(x)
    assert out[:6, 20:].max() == 0 and out[-6:, 20:].max() == 0 and out[20:180, :6].max() == 0
    assert out[30:170, 80:86].min() == 255.0
    four = with_params("lines", box_sides=4)  # three lines no longer a box: the lone left side stays
    assert remove_rulings(x, four)[20:180, :6].min() == 255.0


@pytest.mark.parametrize("bars", [1, 2])
def test_a_digits_own_bars_stay(bars):
    """A 7's bar across a tight crop, or a marker's two thick bars (a Z-shaped 2), are not rulings."""
    x = np.zeros((100, 80))
    x[0:4 if bars == 1 else 25] = 255.0
    if bars == 2:
        x[75:] = 255.0
    x[:, 35:45] = 255.0
    np.testing.assert_array_equal(remove_rulings(x), x)


def test_digits_on_lined_and_squared_paper(mnist):
    recognizer = Recognizer.load()
    rng = np.random.default_rng(0)
    for name in ("ruled", "squared", "boxed"):
        picks = rng.integers(len(mnist.test.images), size=40)
        views = [read_digit(make(name, mnist.test.images[i].numpy(), rng)) for i in picks]
        got = [p.digit for p in recognizer.predict_views(views)]
        right = sum(g == int(mnist.test.labels[i]) for g, i in zip(got, picks))
        assert right >= 38, (name, right)


def test_numbers_in_a_forms_comb_of_boxes(mnist, skip_step):
    """The comb's lines between the digits are taken out before the digits are found, not read as 1s."""
    from digit_recognizer.testing.presentations import in_comb

    recognizer = Recognizer.load()
    rng = np.random.default_rng(0)
    numbers = []
    for _ in range(20):
        idx = rng.integers(len(mnist.test.images), size=4)
        label = "".join(str(int(mnist.test.labels[i])) for i in idx)
        numbers.append((in_comb([mnist.test.images[i].numpy() for i in idx], rng), label))

    def right() -> int:
        return sum(recognizer.read(image).number == label for image, label in numbers)

    assert right() >= 14
    skip_step("lines")  # the step both readers share
    assert right() <= 10


def test_a_combs_lines_are_found_where_the_paper_is_left_faint():
    """A small comb cut out of a faint form: once its contrast is stretched to full, the paper between the lines is
    left at 8% of full ink (above the fixed paper level). The lines are still found, against the level most rows
    stay at, and taken out; the digits' strokes, which cross no whole image, stay."""
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(20, 4, (34, 181)), 0, None)  # (h, w) ink-bright, paper at 8% of full ink
    x[[0, -1]] = 250  # the comb's top and bottom lines, 1 px
    x[:, ::30] = 250  # its separators, 1 px, every 30 px
    x[8:26, 12:16] = 255  # a digit's stroke inside a box
    out = remove_rulings(x)
    assert out[:, ::30].max() < 128 and out[0].max() < 128  # the lines are gone
    assert out[8:26, 12:16].min() > 200  # the stroke is not
    fixed = with_params("lines", paper_margin=0.0)  # the fixed level alone
    assert remove_rulings(x, fixed)[:, 30].max() > 200
