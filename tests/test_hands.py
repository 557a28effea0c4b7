"""Other people's hands and marks that are not digits: the synthesizers, the outlier-exposure loss, the refusal."""
import math

import numpy as np
import pytest
import torch

from digit_recognizer.constants import IMAGE_SIZE, NOT_DIGIT
from digit_recognizer.data.dataset import Split
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.answers import postprocess
from digit_recognizer.inference.recognizer import Prediction
from digit_recognizer.training.augment import random_slant
from digit_recognizer.training.calibration import DIGITS_REFUSED, REFUSE_BELOW, refusal_stats, refusal_threshold
from digit_recognizer.training.exposure import draw_of, drawn_ahead, validation_outliers, widened
from digit_recognizer.training.glyphs import DIGIT_STYLES, LETTERS, NOT_DIGITS
from digit_recognizer.training.hands import crossed_seven, flagged_one, styled_digits
from digit_recognizer.training.outliers import KINDS, outlier_bank
from digit_recognizer.training.recipes import make_config
from digit_recognizer.training.step import OutlierLoss, loss_of
from digit_recognizer.training.strokes import Hand, draw, spline


def bar(x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    d = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    d[y0:y1, x0:x1] = 255
    return d


def test_a_flag_grows_down_and_left_from_the_top_of_a_one():
    one = bar(13, 16, 4, 24)  # an upright 1
    out = flagged_one(one, np.random.default_rng(0))
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 128)
    top = ys.min() + (ys.max() - ys.min()) // 3
    stem = np.median(xs)
    # ink in the upper third reaches well left of the stem; the lower third stays on it (no foot this draw
    # or a foot on both sides)
    assert xs[ys <= top].min() < stem - 3
    assert np.nonzero(one > 128)[1].min() >= stem - 2  # the plain 1 had no such ink


def test_a_bar_crosses_a_seven_on_both_sides_of_its_stem():
    seven = np.maximum(bar(6, 22, 4, 7), bar(12, 15, 4, 24))  # a 7 drawn as a T-ish top and a stem
    out = crossed_seven(seven, np.random.default_rng(1))
    middle = out[10:20] > 128
    rows = [np.nonzero(r)[0] for r in middle if r.any()]
    widest = max(r.max() - r.min() for r in rows)
    assert widest >= 6  # the stem alone is 3 px wide at any height below the top


def test_every_style_and_outlier_is_drawn_as_an_mnist_digit():
    rng = np.random.default_rng(2)
    for styles in DIGIT_STYLES.values():
        for g in styles:
            x = draw(g, Hand.random(rng), rng)
            ys, xs = np.nonzero(x)
            assert x.shape == (IMAGE_SIZE, IMAGE_SIZE) and max(np.ptp(ys), np.ptp(xs)) in range(17, 22)
    assert set(LETTERS) < set(NOT_DIGITS)
    digits = np.stack([bar(10, 18, 4, 24)] * 20)
    bank = outlier_bank(200, rng, digits, np.arange(20) % 10)
    assert bank.shape == (200, IMAGE_SIZE, IMAGE_SIZE) and (bank.reshape(200, -1).max(1) > 128).all()
    assert len(KINDS) == 5


def test_draws_repeat_from_their_seed():
    a, la = styled_digits(30, np.random.default_rng(3))
    b, lb = styled_digits(30, np.random.default_rng(3))
    assert (a == b).all() and (la == lb).all() and set(la.tolist()) <= set(range(10))
    assert len(set(la.tolist())) > 5


def test_a_stroke_keeps_its_corners_and_smooths_its_curves():
    pts = np.array([[0.0, 1.0], [0.5, 0.0], [1.0, 1.0]])  # an A's apex: a corner
    line = spline(pts)
    assert np.isclose(line[:, 1].min(), 0.0)  # the apex is not rounded away below it
    arc = np.array([[math.cos(t), math.sin(t)] for t in np.linspace(0, math.pi, 7)])
    assert len(spline(arc)) > len(arc)


def test_the_outlier_loss_pushes_towards_uniform_and_leaves_digits_alone():
    out = torch.tensor([[0.0] * 10, [5.0] + [0.0] * 9])
    y_digit = torch.tensor([0, 0])
    y_outlier = torch.tensor([NOT_DIGIT, NOT_DIGIT])
    half, whole = OutlierLoss(weight=0.5), OutlierLoss(weight=1.0)
    assert loss_of(out, y_outlier, 0.0, half)[()].item() == pytest.approx(
        0.5 * (math.log(10) + (-torch.log_softmax(out[1], 0).mean()).item()) / 2)
    assert loss_of(out, y_digit, 0.0, half).item() == pytest.approx(
        torch.nn.functional.cross_entropy(out, y_digit).item())
    even = torch.zeros(1, 10)
    sure = torch.tensor([[9.0] + [0.0] * 9])
    assert loss_of(even, torch.tensor([NOT_DIGIT]), 0.0, whole) < loss_of(sure, torch.tensor([NOT_DIGIT]), 0.0, whole)


def test_the_energy_loss_lowers_an_outliers_logits_and_raises_a_digits():
    energy = OutlierLoss(energy=0.1, energy_in=5.0, energy_out=1.0)
    flat = torch.zeros(1, 10, requires_grad=True)  # logsumexp log(10) = 2.3: above the outliers' ceiling
    loss_of(flat, torch.tensor([NOT_DIGIT]), 0.0, energy).backward()
    assert (flat.grad > 0).all()  # descending the gradient lowers every logit
    assert loss_of(flat.detach(), torch.tensor([NOT_DIGIT]), 0.0, energy).item() == pytest.approx(
        0.1 * (math.log(10) - 1.0) ** 2)
    assert loss_of(torch.full((1, 10), -5.0), torch.tensor([NOT_DIGIT]), 0.0, energy).item() == 0.0
    digit = torch.tensor([[3.0] + [0.0] * 9], requires_grad=True)  # logsumexp 3.6: below the digits' floor
    ce = torch.nn.functional.cross_entropy(digit.detach(), torch.tensor([0])).item()
    lse = torch.logsumexp(digit.detach(), 1).item()
    assert loss_of(digit, torch.tensor([0]), 0.0, energy).item() == pytest.approx(ce + 0.1 * (5.0 - lse) ** 2)
    loss_of(digit, torch.tensor([0]), 0.0, energy).backward()
    assert digit.grad[0, 0] < 0  # the true digit's logit goes up
    assert loss_of(torch.tensor([[20.0] + [0.0] * 9]), torch.tensor([0]), 0.0, energy).item() == pytest.approx(
        torch.nn.functional.cross_entropy(torch.tensor([[20.0] + [0.0] * 9]), torch.tensor([0])).item())


def test_the_widened_split_adds_other_hands_and_outliers():
    digits = torch.from_numpy(np.stack([bar(10, 18, 4, 24)] * 100))
    tr = Split(digits, torch.arange(100) % 10)
    cfg = make_config("fast", other_hands=0.2, outliers=0.3)
    wide = widened(cfg, tr)
    assert len(wide) == 100 + 20 + 30
    assert (wide.labels[:100] == tr.labels).all() and (wide.labels[-30:] == NOT_DIGIT).all()
    assert (wide.labels[100:120] < 10).all()
    assert widened(make_config("fast"), tr) is tr


def test_validation_outliers_drawn_ahead_are_the_ones_drawn_in_line():
    digits = torch.from_numpy(np.stack([bar(10, 18, 4, 24)] * 50))
    va = Split(digits, torch.arange(50) % 10)
    ahead = drawn_ahead(validation_outliers, va, 40)
    assert np.array_equal(ahead(), validation_outliers(va, 40)) and ahead().shape == (40, IMAGE_SIZE, IMAGE_SIZE)

    def broken(_):
        raise DigitsError("the font glyph bank is damaged")
    failed = drawn_ahead(broken, va)
    with pytest.raises(DigitsError, match="glyph bank is damaged"):  # met by the caller, as drawing in line would
        failed()


def test_a_fresh_draw_of_other_hands_and_outliers_every_few_epochs():
    digits = torch.from_numpy(np.stack([bar(10, 18, 4, 24)] * 100))
    tr = Split(digits, torch.arange(100) % 10)
    once, every = make_config("fast", other_hands=0.2, outliers=0.3), make_config("fast", other_hands=0.2,
                                                                                  outliers=0.3, redraw_every=2)
    assert [draw_of(once, e) for e in range(5)] == [0] * 5
    assert [draw_of(every, e) for e in range(5)] == [0, 0, 1, 1, 2]
    first, again, second = widened(every, tr, 0), widened(every, tr, 0), widened(every, tr, 1)
    assert torch.equal(first.images, again.images) and torch.equal(first.images, widened(once, tr).images)
    assert torch.equal(first.images[:100], second.images[:100])  # MNIST's own digits stay
    assert not torch.equal(first.images[100:], second.images[100:])  # the extra ones are drawn again


def test_the_refusal_threshold_refuses_few_digits_and_what_is_spread():
    conf = torch.linspace(0.6, 1.0, 1000)
    probs = torch.stack([conf] + [(1 - conf) / 9] * 9, 1)  # (1000, 10)
    t = refusal_threshold(probs, learned=True)
    assert (conf < t).float().mean().item() == pytest.approx(DIGITS_REFUSED, abs=2e-3)
    assert refusal_threshold(probs, learned=False) == REFUSE_BELOW
    spread = torch.full((5, 10), 0.1)
    stats = refusal_stats(probs, torch.zeros(1000, dtype=torch.long), spread, learned=True)
    assert stats["val_outliers_refused"] == 1.0 and stats["min_confidence"] == t


def test_a_refusal_says_whether_it_was_ambiguous_or_not_a_digit():
    split = Prediction(4, 0.48, (0.0,) * 4 + (0.48,) + (0.0,) * 4 + (0.46,), refused=True)
    spread = Prediction(3, 0.3, (0.1, 0.1, 0.1, 0.3, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05), refused=True)
    assert split.reason.startswith("ambiguous between 4 and 9")
    assert spread.reason.startswith("not a digit")
    assert Prediction(3, 0.9, (0.0,) * 10).reason is None


def test_a_digit_score_below_the_models_threshold_is_not_a_digit_however_sure_the_softmax():
    probs = torch.tensor([[0.9] + [0.1 / 9] * 9, [0.9] + [0.1 / 9] * 9, [0.47, 0.46] + [0.07 / 8] * 8])
    score = torch.tensor([8.0, 2.0, 8.0])  # (N,): a digit, a letter the softmax still calls a 0, an ambiguous one
    sure, letter, torn = postprocess(probs, 0.5, score, min_score=3.0)
    assert not sure.refused and sure.score == 8.0 and sure.to_dict()["score"] == 8.0
    assert letter.refused and letter.unlike and letter.reason.startswith("not a digit (unlike the digits it learned")
    assert torn.refused and not torn.unlike and torn.reason.startswith("ambiguous between 0 and 1")
    assert letter.at_threshold(0.0).refused and not torn.at_threshold(0.0).refused  # a caller's threshold
    assert not letter.at_threshold(0.0, min_score=1.0).refused  # ... and a caller's score threshold
    assert sure.at_threshold(0.5, min_score=9.0).unlike
    assert not any(p.refused for p in postprocess(probs, 0.0, score))  # a model without a score threshold
    assert "score" not in postprocess(probs)[0].to_dict()  # not measured: not shown


def test_a_slant_shears_half_the_digits_and_keeps_them_whole():
    x = torch.from_numpy(np.stack([bar(12, 16, 4, 24)] * 64)).float().unsqueeze(1)  # (64, 1, 28, 28)
    out = random_slant(x, torch.Generator().manual_seed(0), 30.0)
    moved = (out - x).abs().flatten(1).sum(1) > 1.0
    assert 16 < moved.sum().item() < 48  # about half
    top_x = [(r[4:8].sum(0) * torch.arange(28)).sum() / r[4:8].sum() for r in out[:, 0]]
    bottom_x = [(r[20:24].sum(0) * torch.arange(28)).sum() / r[20:24].sum() for r in out[:, 0]]
    assert any(abs(float(t - b)) > 3 for t, b in zip(top_x, bottom_x))
    assert out.sum(dim=(1, 2, 3)).min() > 0.6 * x[0].sum()  # nothing slid off the canvas


def test_outliers_without_a_loss_and_crossed_energy_margins_are_config_errors():
    with pytest.raises(DigitsError, match="outliers need a loss"):
        make_config("fast", outliers=0.3, outlier_weight=0.0)
    with pytest.raises(DigitsError, match="outlier_energy needs outliers"):
        make_config("fast", outlier_energy=0.1)
    with pytest.raises(DigitsError, match="energy_out"):
        make_config("fast", outliers=0.3, outlier_energy=0.1, energy_in=1.0, energy_out=2.0)
    assert make_config("fast", outliers=0.3, outlier_weight=0.0, outlier_energy=0.1).outlier_energy == 0.1
