"""Fat-marker digits for training: loops fill as a marker fills them, the reader's own fitting thins them, the
bank is one function of its seed, and the loop swaps in the share it is told to."""
from __future__ import annotations

import re
import numpy as np
import pytest

from conftest import holes
import torch
from PIL import Image, ImageDraw

from digit_recognizer.constants import DIGIT_BOX, IMAGE_SIZE
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.reader import PARAMS
from digit_recognizer.inference.reader.masks import typical_width

MAX_STROKE = PARAMS.strokes.mnist[2]
from digit_recognizer.training import epoch, loop
from digit_recognizer.training.marker import marker_bank, marker_digit, nib_grown
from digit_recognizer.training.recipes import make_config


def ring(stroke: int = 3) -> np.ndarray:
    """An MNIST-sized 0: a ring 20 px tall, 14 wide, `stroke` px thick, centred on 28x28."""
    img = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    ImageDraw.Draw(img).ellipse([7, 4, 20, 23], outline=255, width=stroke)
    return np.asarray(img)


def test_a_fat_marker_fills_the_loop_that_a_pen_leaves_open():
    zero = ring()
    assert holes(zero) == 1
    assert holes(marker_digit(zero, 1.2)) == 1  # a pen a little wider: still a 0 with its hole
    fat = marker_digit(zero, 4.5)
    assert holes(fat) == 0  # the hole is gone, as under a marker whose stroke is 4.5x as wide
    assert fat.shape == (IMAGE_SIZE, IMAGE_SIZE) and fat.dtype == np.uint8


def test_the_reader_thins_the_marker_back_to_mnist_strokes():
    """The rendition is what the reader makes of such a digit: strokes no wider than MNIST's widest."""
    seven = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    seven[5:8, 7:21] = 255
    for i in range(8, 24):  # the 7's stem, 3 px wide, leaning left
        seven[i, 19 - (i - 8) // 2:22 - (i - 8) // 2] = 255
    fat = marker_digit(seven, 2.5)
    rows = np.nonzero((fat > 127).any(1))[0]
    scale = DIGIT_BOX / (rows[-1] - rows[0] + 1)
    assert typical_width(fat > 127, "constant") * scale <= MAX_STROKE + 1


def test_a_chisel_nib_widens_across_its_edge_less_than_along_it():
    dot = np.zeros((41, 41), bool)
    dot[20, 20] = True
    round_nib, chisel = nib_grown(dot, 10, 1.0, 0.0), nib_grown(dot, 10, 0.3, 0.0)
    assert round_nib.sum() > 2.5 * chisel.sum()
    rows, cols = np.nonzero(chisel)
    assert np.ptp(cols) > 2.5 * np.ptp(rows)  # the long axis lies along x at angle 0
    turned = nib_grown(dot, 10, 0.3, 90.0)
    rows, cols = np.nonzero(turned)
    assert np.ptp(rows) > 2.5 * np.ptp(cols)


def test_the_bank_is_one_function_of_its_seed(mnist):
    digits = mnist.train.images[:24].numpy()
    one = marker_bank(digits, seed=3)
    assert np.array_equal(one, marker_bank(digits, seed=3, workers=2))
    assert not np.array_equal(one, marker_bank(digits, seed=4))
    assert (one.reshape(len(one), -1).max(1) > 127).all()  # every rendition keeps its ink


def test_the_loop_swaps_in_the_share_it_is_told_to():
    cfg = make_config("fast", augment_marker=0.5)
    x = torch.zeros(400, 1, IMAGE_SIZE, IMAGE_SIZE)
    fat = torch.full_like(x, 255.0)
    out = epoch.augmented(cfg, x, torch.Generator().manual_seed(0), fat)
    swapped = (out.flatten(1).amax(1) == 255).float().mean().item()
    assert 0.4 < swapped < 0.6
    assert torch.equal(epoch.augmented(make_config("fast"), x, torch.Generator(), fat), x)  # off: untouched


def test_a_training_run_draws_its_marker_digits_once(mnist, tmp_path):
    lines = []
    cfg = make_config("fast", epochs=2, limit=300, augment_marker=0.5)
    loop.train(cfg, mnist.train, tmp_path / "run", progress=False, log=lines.append)
    drawn = [line for line in lines if "marker digits" in line]
    trained_on = len(loop.splits(cfg, mnist.train)[0])
    assert len(drawn) == 1 and drawn[0].startswith(f"drew {trained_on} marker digits")


def test_a_run_that_redraws_its_extra_images_draws_their_markers_again(mnist, tmp_path):
    lines = []
    cfg = make_config("fast", epochs=3, limit=300, augment_marker=0.5, other_hands=0.2, outliers=0.2,
                      redraw_every=2)
    loop.train(cfg, mnist.train, tmp_path / "run", progress=False, log=lines.append)
    own = len(loop.splits(cfg, mnist.train)[0])
    extra = 2 * round(0.2 * own)
    drawn = [re.sub(r" in \d+ s.*", "", line) for line in lines if line.startswith("drew")]
    assert drawn == [f"drew {own} marker digits",
                     f"drew {extra} other hands' digits and outliers (draw 1)", f"drew {extra} marker digits",
                     f"drew {extra} other hands' digits and outliers (draw 2)", f"drew {extra} marker digits"]


def test_a_share_outside_0_to_1_is_refused_before_any_data_loads():
    with pytest.raises(DigitsError, match="augment_marker is a share"):
        make_config("best", augment_marker=1.5)
    with pytest.raises(DigitsError, match="augment_widen"):
        make_config("best", augment_widen=-1.0)

