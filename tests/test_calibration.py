"""Confidence calibration: temperature fitting, expected calibration error, the refusal rule."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from digit_recognizer.training.calibration import (REFUSE_BELOW, calibrate, expected_calibration_error, fit_temperature,
                                          refusal_stats)


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
