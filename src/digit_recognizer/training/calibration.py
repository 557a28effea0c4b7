"""Confidence calibration on the validation split: temperature scaling and expected calibration error."""
from __future__ import annotations

import torch
import torch.nn.functional as F

ECE_BINS = 15
# Refuse an answer when, calibrated, it is more likely wrong than right. (A threshold refusing 0.5% of the
# validation split, 0.74 for the shipped model, left 31 of 1,000 numbers on paper unread, half of them right.)
REFUSE_BELOW = 0.5
TEMPERATURE_GRID = torch.logspace(-1.5, 1.5, 301)  # 0.03 .. 31.6, about 1% apart


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.float().mean() * (correct[m].mean() - conf[m].mean()).abs()
    return float(ece)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T minimising validation NLL of softmax(logits / T); a 1-D grid search is exact enough and robust."""
    nll = torch.stack([F.cross_entropy(logits / t, labels) for t in TEMPERATURE_GRID])
    return float(TEMPERATURE_GRID[nll.argmin()])


def refusal_stats(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The default threshold, the share of these (validation) predictions it refuses and the accuracy of the
    rest. probs: (N, 10) calibrated probabilities."""
    conf, pred = probs.max(1)
    kept = conf >= REFUSE_BELOW
    return {"min_confidence": REFUSE_BELOW, "val_refused": 1 - kept.float().mean().item(),
            "val_accuracy_answered": (pred[kept] == labels[kept]).float().mean().item() if kept.any() else 0.0}


def calibrate(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Temperature and the expected calibration error before and after it."""
    t = fit_temperature(logits, labels)
    return {"temperature": t,
            "val_ece_before": expected_calibration_error(F.softmax(logits, 1), labels),
            "val_ece_after": expected_calibration_error(F.softmax(logits / t, 1), labels)}
