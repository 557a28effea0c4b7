"""Metrics on a labelled split: accuracy, per-class precision/recall, confusion matrix, worst mistakes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..constants import NUM_CLASSES
from ..data.dataset import Split
from ..errors import DigitsError
from .recognizer import Recognizer


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


def read_labels(folder: Path) -> list[tuple[str, str]]:
    """labels.csv rows (file, label); an empty label means the image should be refused (not a digit)."""
    import csv

    path = folder / "labels.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DigitsError(f"{path}: not found (expected a labels.csv with columns file,label)") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DigitsError(f"{path}: not a readable CSV ({e})") from None
    if not rows or [c.strip() for c in rows[0]] != ["file", "label"]:
        raise DigitsError(f"{path}: first line must be the header 'file,label'")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not (row[1].strip().isdigit() or row[1].strip() == ""):
            raise DigitsError(f"{path}: line {i} must be 'file,label' with a label of digits (or empty)")
        out.append((row[0].strip(), row[1].strip()))
    if not out:
        raise DigitsError(f"{path}: no labelled images")
    return out


def evaluate_folder(recognizer: Recognizer, folder: str | Path) -> dict[str, Any]:
    """Accuracy on a user's labelled images: single digits, or whole numbers when labels have several digits.

    A prediction counts as correct when it equals the label and is not refused; for an empty label it is
    correct when the image is refused (blank, noise, not a digit, or below the confidence threshold).
    """
    from .recognizer import read_number

    folder = Path(folder)
    rows = read_labels(folder)
    numbers = any(len(label) > 1 for _, label in rows)
    counts = {"correct": 0, "refused": 0, "unreadable": 0}
    mistakes = []
    for name, label in rows:
        path = folder / name
        try:
            if numbers:
                r = read_number(recognizer, path, str(path))
                answer, refused = r.number, r.refused or "?" in r.number
            else:
                p = recognizer.predict(path)
                answer, refused = ("" if p.digit is None else str(p.digit)), p.refused
        except DigitsError as e:
            counts["unreadable"] += 1
            mistakes.append({"file": name, "label": label, "error": str(e)})
            continue
        counts["refused"] += refused
        ok = refused if label == "" else (answer == label and not refused)
        counts["correct"] += ok
        if not ok and len(mistakes) < 50:
            mistakes.append({"file": name, "label": label, "answer": answer, "refused": refused})
    n = len(rows)
    return {"folder": str(folder), "mode": "numbers" if numbers else "digits", "n": n,
            "accuracy": counts["correct"] / n, "refused": counts["refused"], "unreadable": counts["unreadable"],
            "mistakes": mistakes}
