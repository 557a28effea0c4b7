"""Confidence calibration on the validation split: temperature scaling and expected calibration error."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ECE_BINS = 15
# Refuse an answer when, calibrated, it is more likely wrong than right...
REFUSE_BELOW = 0.5
# ... or, for a model that learned what is not a digit (outlier exposure), when its confidence (without a digit
# score) is below what all but this share of the validation digits reach. Chosen on validation sets
# (docs/experiments.md, "Other hands"): 0.3% refused more of the photographed digits (bold with margin 98.2 ->
# 96.8%) for 3 more points of letters ...
DIGITS_REFUSED = 0.001
# ... or when its digit score is below what all but this share reach ("A learned score for not a digit"; "The
# paper around a digit cleared": with the crop's paper cleared, 0.15% refuses the letters 0.1% did before, and
# the presentation sets keep most of what the clearing gave them).
SCORE_REFUSED = 0.0015
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


def refusal_threshold(probs: torch.Tensor, learned: bool) -> float:
    """REFUSE_BELOW, or for a model that learned outliers (`learned`), the confidence that all but
    DIGITS_REFUSED of these validation digits reach, if higher. probs: (N, 10) calibrated."""
    if not learned or len(probs) == 0:
        return REFUSE_BELOW
    return max(REFUSE_BELOW, float(torch.quantile(probs.max(1).values.double(), DIGITS_REFUSED)))


def refusal_stats(probs: torch.Tensor, labels: torch.Tensor, outlier_probs: torch.Tensor | None = None,
                  learned: bool = False, scores: torch.Tensor | None = None,
                  outlier_scores: torch.Tensor | None = None) -> dict[str, float]:
    """The thresholds, the share of these validation digits they refuse, the accuracy of the rest and, given
    `outlier_probs` (M, 10) of marks that are not digits, the share of those they refuse. probs: (N, 10)
    calibrated probabilities.

    A model that learned outliers (`learned`) and gives digit scores (`scores` (N,), engine.scores) refuses
    below REFUSE_BELOW confidence (ambiguous) or below `min_score`, the score all but SCORE_REFUSED of these
    digits reach (not a digit); without scores, below refusal_threshold's confidence."""
    by_score = learned and scores is not None and len(scores) > 0
    threshold = REFUSE_BELOW if by_score else refusal_threshold(probs, learned)
    min_score = float(torch.quantile(scores.double(), SCORE_REFUSED)) if by_score else -math.inf
    conf, pred = probs.max(1)
    kept = conf >= threshold
    if by_score:
        kept &= scores >= min_score
    stats = {"min_confidence": threshold, **({"min_score": min_score} if by_score else {}),
             "val_refused": 1 - kept.float().mean().item(),
             "val_accuracy_answered": (pred[kept] == labels[kept]).float().mean().item() if kept.any() else 0.0}
    if outlier_probs is not None and len(outlier_probs):
        refused = outlier_probs.max(1).values < threshold
        if by_score and outlier_scores is not None:
            refused |= outlier_scores < min_score
        stats["val_outliers_refused"] = refused.float().mean().item()
    return stats


def calibrate(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Temperature and the expected calibration error before and after it."""
    t = fit_temperature(logits, labels)
    return {"temperature": t,
            "val_ece_before": expected_calibration_error(F.softmax(logits, 1), labels),
            "val_ece_after": expected_calibration_error(F.softmax(logits / t, 1), labels)}
