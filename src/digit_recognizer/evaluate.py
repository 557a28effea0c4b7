"""Metrics on a labelled split: accuracy, per-class precision/recall, confusion matrix, worst mistakes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .constants import NUM_CLASSES
from .data.dataset import Split
from .predict import Recognizer


@dataclass
class Evaluation:
    probs: torch.Tensor  # (N, 10)
    labels: torch.Tensor  # (N,)

    @property
    def preds(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def accuracy(self) -> float:
        return (self.preds == self.labels).float().mean().item() if len(self.labels) else 0.0

    def confusion(self) -> torch.Tensor:
        """(10, 10): rows are true labels, columns predictions."""
        idx = self.labels * NUM_CLASSES + self.preds
        return torch.bincount(idx, minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)

    def per_class(self) -> list[dict[str, float]]:
        cm = self.confusion().double()
        tp = cm.diag()
        precision = tp / cm.sum(0).clamp(min=1)
        recall = tp / cm.sum(1).clamp(min=1)
        return [{"digit": d, "precision": precision[d].item(), "recall": recall[d].item(),
                 "support": int(cm[d].sum().item())} for d in range(NUM_CLASSES)]

    def worst(self, k: int) -> torch.Tensor:
        """Indices of the k mistakes with the lowest probability on the true class."""
        wrong = torch.nonzero(self.preds != self.labels).flatten()
        p_true = self.probs[wrong, self.labels[wrong]]
        return wrong[p_true.argsort()[:k]]

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n": len(self.labels),
                "errors": int((self.preds != self.labels).sum().item()),
                "per_class": self.per_class(), "confusion_matrix": self.confusion().tolist()}


def evaluate(recognizer: Recognizer, split: Split) -> Evaluation:
    return Evaluation(recognizer.probabilities(split.images), split.labels)
