"""Batch augmentation: digits widened as the reader fits a flat digit, and old random streams unchanged."""
from __future__ import annotations

import torch

from digit_recognizer.inference.reader import PARAMS
from digit_recognizer.training.augment import extent, random_affine


def bars(n: int) -> torch.Tensor:
    """(n, 1, 28, 28): a 1 as MNIST draws it, a bar 4 px wide and 20 px tall."""
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 4:24, 12:16] = 255.0
    return x


def test_widened_digits_keep_their_longer_side_and_the_readers_flattest_shape():
    x = bars(400)
    out = random_affine(x, torch.Generator().manual_seed(0), 0, 0, 0, widen=2.0)
    w, h = extent((out > 127.5) * 255.0)  # at half ink: bilinear edges smear a 7x stretch by ~2 px a side
    ratio = w / h
    wider = ratio > 1.5 * 4 / 20
    assert 0.15 < wider.float().mean() < 0.35  # a quarter are widened
    assert ratio.max() > 1.0  # up to e^2 = 7.4 times as wide: flat, the height raised as the reader does
    assert (ratio <= PARAMS.fit.max_aspect * 1.1).all()
    assert (torch.maximum(w, h) <= 20 + 1).all()  # the longer side stays in the 20-px box (bilinear edges)


def test_widening_off_leaves_the_old_draws_alone():
    x = bars(64)
    a = random_affine(x, torch.Generator().manual_seed(1), 10, 0.1, 0.1, 0.5)
    b = random_affine(x, torch.Generator().manual_seed(1), 10, 0.1, 0.1, 0.5, 0.0)
    assert torch.equal(a, b)
