"""The answers: a Prediction for one image, a Reading of a whole number, and postprocess, which turns the model's
probabilities into predictions (refused below a threshold, with a reason a person can read).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

TOP_K = 3
AMBIGUOUS_MASS = 0.9  # a refused answer whose top two digits hold this much belief is ambiguous between them


@dataclass(frozen=True)
class Prediction:
    """The answer for one image. A refused answer says why in `reason`: the model's digit score was below its
    threshold (not a digit), or its confidence was (ambiguous between two digits, or not a digit), or the image
    had no digit to give the model (blank, noise, several digits: `digit` None and no probabilities)."""
    digit: int | None
    confidence: float
    probabilities: tuple[float, ...]  # (10,), or () when the model was not asked
    refused: bool = False
    why: str | None = None  # the reason when the image never reached the model
    score: float | None = None  # the digit score (engine.scores): high for digits; None when not measured
    unlike: bool = False  # the score is below the model's threshold: unlike any digit it learned

    @classmethod
    def refusal(cls, why: str) -> "Prediction":
        return cls(None, 0.0, (), True, why)

    @property
    def top(self) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:TOP_K]
        return [(int(d), float(self.probabilities[d])) for d in order]

    @property
    def reason(self) -> str | None:
        """Why a refused answer was refused: the image's own reason, or the model's belief split between two
        digits (ambiguous) or spread over many, as a model trained on marks that are not digits spreads it."""
        if not self.refused:
            return None
        if self.why is not None:
            return self.why
        if self.unlike:
            return f"not a digit (unlike the digits it learned: score {self.score:.1f})"
        (a, pa), (b, pb) = self.top[:2]
        if pa + pb >= AMBIGUOUS_MASS:
            return f"ambiguous between {a} and {b} (low confidence, {pa:.2f})"
        return f"not a digit (low confidence, {pa:.2f})"

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        out = {**extra, "digit": self.digit, "confidence": round(self.confidence, 6),
               "probabilities": [round(p, 6) for p in self.probabilities], "refused": self.refused,
               **({"score": round(self.score, 4)} if self.score is not None else {})}
        return {**out, "reason": self.reason} if self.refused else out

    def at_threshold(self, min_confidence: float, min_score: float | None = None) -> "Prediction":
        """The same answer judged against another confidence threshold and, given `min_score`, another digit
        score threshold (else the model's judgement of the score stands). One refused before the model stays so."""
        if self.why is not None:
            return self
        unlike = self.unlike if min_score is None else self.score is not None and self.score < min_score
        return replace(self, refused=unlike or self.confidence < min_confidence, unlike=unlike)


def postprocess(probs: torch.Tensor, min_confidence: float = 0.0, score: torch.Tensor | None = None,
                min_score: float | None = None) -> list[Prediction]:
    """(N, 10) probabilities and (N,) digit scores (NaN: not measured) -> one Prediction per row, refused below
    min_confidence or, where the model has a score threshold, below min_score."""
    conf, digit = probs.max(dim=1)
    scores = [None] * len(probs) if score is None else [None if math.isnan(e) else e for e in score.tolist()]
    cut = -math.inf if min_score is None else min_score
    out = []
    for d, c, row, e in zip(digit.tolist(), conf.tolist(), probs.tolist(), scores):
        unlike = e is not None and e < cut
        out.append(Prediction(int(d), float(c), tuple(float(v) for v in row), c < min_confidence or unlike,
                              score=e, unlike=unlike))
    return out


@dataclass(frozen=True)
class Reading:
    """A whole number read from one image: digits left to right, with boxes (x, y, w, h). Refused when there was
    nothing to read (`why`: a blank page) or no mark was read as a digit (a line of letters)."""
    digits: tuple[Prediction, ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    why: str | None = None

    @property
    def number(self) -> str:
        # A refused digit is shown as "?" rather than guessed.
        return "".join("?" if p.refused else str(p.digit) for p in self.digits)

    @property
    def refused(self) -> bool:
        return self.why is not None or all(p.refused for p in self.digits)

    @property
    def reason(self) -> str | None:
        if not self.refused:
            return None
        return self.why or "not a number: no mark was read as a digit"

    @property
    def refusals(self) -> list[str]:
        """Why each "?" of the number is one, in order: "? 2: ambiguous between 1 and 7 (...)" (1-based)."""
        return [f"? {k}: {p.reason}" for k, p in enumerate(self.digits, 1) if p.refused]

    def at_threshold(self, min_confidence: float, min_score: float | None = None) -> "Reading":
        return replace(self, digits=tuple(p.at_threshold(min_confidence, min_score) for p in self.digits))

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        out = {**extra, "number": self.number,
               "digits": [{"digit": p.digit, "confidence": round(p.confidence, 6), "box": list(b),
                           "refused": p.refused, **({"reason": p.reason} if p.refused else {})}
                          for p, b in zip(self.digits, self.boxes)],
               "refused": self.refused}
        return {**out, "reason": self.reason} if self.refused else out
