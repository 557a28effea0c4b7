"""Confidence calibration: temperature fitting, expected calibration error, the refusal rule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from digit_recognizer.training.calibration import (REFUSE_BELOW, SCORE_REFUSED, calibrate,
                                                  expected_calibration_error, fit_temperature, refusal_stats)


def sampled(true_t: float, n: int = 20000) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels drawn from softmax(logits / true_t): a model whose right temperature is true_t."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, 10, generator=gen) * 4
    labels = torch.multinomial(F.softmax(logits / true_t, 1), 1, generator=gen).squeeze(1)
    return logits, labels


def test_temperature_is_recovered_and_ece_drops():
    for true_t in (0.5, 2.0):
        logits, labels = sampled(true_t)
        t = fit_temperature(logits, labels)
        assert abs(t / true_t - 1) < 0.08, (t, true_t)
        cal = calibrate(logits, labels)
        assert cal["val_ece_after"] < 0.02 < cal["val_ece_before"]


def test_ece_of_a_perfectly_calibrated_model_is_small():
    logits, labels = sampled(1.0)
    assert expected_calibration_error(F.softmax(logits, 1), labels) < 0.02


def test_refusal_rule_refuses_what_is_more_likely_wrong():
    probs = torch.tensor([[0.9] + [0.1 / 9] * 9, [0.49, 0.41] + [0.0125] * 8, [0.6, 0.4] + [0.0] * 8])
    labels = torch.tensor([0, 1, 1])
    stats = refusal_stats(probs, labels)
    assert stats["min_confidence"] == REFUSE_BELOW == 0.5
    assert abs(stats["val_refused"] - 1 / 3) < 1e-6  # the 0.49 row
    assert abs(stats["val_accuracy_answered"] - 0.5) < 1e-6  # of the two answered, one is right


def test_a_model_that_learned_outliers_refuses_by_its_digit_score():
    gen = torch.Generator().manual_seed(0)
    probs = F.softmax(torch.randn(1000, 10, generator=gen) * 3, 1)
    labels = probs.argmax(1)
    scores = torch.linspace(2.0, 12.0, 1000)  # (N,): one digit in a thousand below the fitted score
    outliers = F.softmax(torch.zeros(4, 10), 1)
    outlier_scores = torch.tensor([1.0, 1.5, 11.0, 12.0])  # two score below every digit, two like digits
    stats = refusal_stats(probs, labels, outliers, learned=True, scores=scores, outlier_scores=outlier_scores)
    assert stats["min_confidence"] == REFUSE_BELOW  # confidence now says only "ambiguous"
    assert (scores < stats["min_score"]).float().mean().item() == pytest.approx(SCORE_REFUSED, abs=1e-3)
    refused = (probs.amax(1) < REFUSE_BELOW) | (scores < stats["min_score"])
    assert stats["val_refused"] == pytest.approx(refused.float().mean().item())
    assert stats["val_outliers_refused"] == 1.0  # all four: flat probabilities, whatever the score
    assert "min_score" not in refusal_stats(probs, labels, learned=False, scores=scores)  # no outliers learned
    confident = F.one_hot(torch.arange(4) % 10, 10).float()  # outliers the softmax is sure of
    stats = refusal_stats(probs, labels, confident, learned=True, scores=scores, outlier_scores=outlier_scores)
    assert stats["val_outliers_refused"] == 0.5  # the two that score below the digits
