"""After the last epoch: calibration, refusal statistics through the one inference path, int8 ranges, save.

Shared by single runs and ensembles, so that both are measured exactly as they will predict.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..config import to_dict
from ..data.dataset import Split
from ..inference.engine import logits
from ..inference.int8 import activation_ranges
from ..inference.reader.params import reader_stamp
from ..inference.recognizer import Recognizer
from ..models.modelfile import LoadedModel, model_meta, save_model
from ..models.net import Net
from .exposure import validation_outliers
from .calibration import calibrate, expected_calibration_error, refusal_stats
from .recipes import TrainConfig
from .rundir import RunDir


def finish(run: RunDir, final: Net, cfg: TrainConfig, tr: Split, va: Split, history: list[dict[str, Any]], *,
           training_info: dict[str, Any], log: Callable[[str], None],
           outliers: Callable[[], np.ndarray] | None = None) -> Path:
    """Calibrate `final` on the validation split, measure it as saved, record int8 ranges, write the model.
    `outliers`: the validation outliers, drawn ahead (exposure.drawn_ahead), else drawn here."""
    last = history[-1]
    training = {**to_dict(cfg), "train_seconds": last["seconds"], "train_size": len(tr), "val_size": len(va),
                **training_info}
    return seal(run, final, tr.images, va, training=training, tta=cfg.tta,
                metrics={"val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"]}, log=log,
                learned_outliers=cfg.outliers > 0, outliers=outliers,
                extra=None if cfg.cascade is None else {"cascade": cfg.cascade})


def seal(run: RunDir, net: Net, train_images: torch.Tensor, va: Split, *, training: dict[str, Any], tta: bool,
         metrics: dict[str, Any], log: Callable[[str], None], extra: dict[str, Any] | None = None,
         learned_outliers: bool = False, outliers: Callable[[], np.ndarray] | None = None) -> Path:
    """Everything a trained (or imported) net needs to become a model file: the temperature and the refusal
    threshold fitted on `va` (for a net trained on outliers, `learned_outliers`, the threshold that refuses
    few validation digits: calibration.refusal_threshold), int8 ranges from `train_images`, and the
    description. Returns the JSON path."""
    laps = Laps()  # each fixed cost after the last epoch, in the log (benchmarks/gpu.py reads it)
    # Calibrated in fp32, the reference precision (bf16 batch predictions differ by < 0.03 in a logit).
    cal = calibrate(logits(net, va.images), va.labels)  # logits (N, 10)
    laps("calibration")
    # Activation ranges for int8 inference, from training images only (the validation split stays unseen).
    ranges = activation_ranges(net, train_images)
    laps("int8 ranges")
    if ranges is None:
        log("int8 ranges not recorded: this PyTorch has no x86 quantized engine (the model runs in fp32/bf16)")
    meta = model_meta(net, training=training,
                      extra={"temperature": cal["temperature"], "tta": tta, "reader": reader_stamp(),
                             **(extra or {}),
                             **({"int8_ranges": ranges} if ranges is not None else {})})
    # Refusals measured as the saved model will predict: through the Recognizer, with shifted views when it
    # uses them, in fp32.
    recognizer = Recognizer(LoadedModel([net], meta, run.model_json, [meta]), precision="fp32", device="cpu")
    drawn = outliers() if outliers else None
    if outliers:
        laps("waiting for the validation outliers drawn ahead")
    measured = validation_metrics(recognizer, va, learned_outliers, drawn)
    laps("refusals measured" + (" (outliers drawn)" if drawn is None else ""))
    meta["metrics"] = {"val_accuracy": measured["val_accuracy"], **metrics,
                       "val_ece_before": cal["val_ece_before"], "val_ece_after": cal["val_ece_after"],
                       **({"val_accuracy_tta": measured["val_accuracy"]} if tta else {}),
                       **{k: v for k, v in measured.items()
                          if k in ("val_refused", "val_accuracy_answered", "val_outliers_refused")}}
    meta.update(refusal_thresholds(measured))
    path = save_model(run.model_stem, net, meta)
    laps("saving")
    log(f"sealed in {laps}")
    return path


def refusal_thresholds(measured: dict[str, Any]) -> dict[str, float]:
    """The thresholds among validation_metrics' results, as a model's JSON records them: min_confidence, and
    min_score for a model that learned outliers."""
    return {k: measured[k] for k in ("min_confidence", "min_score") if k in measured}


def learned_outliers(metas: list[dict[str, Any]]) -> bool:
    """Whether a model (its own description, or each of an ensemble's members') was trained on marks that are
    not digits, and so refuses them by the thresholds refusal_stats fits for such a model."""
    return all(m.get("training", {}).get("outliers", 0) > 0 for m in metas)


class Laps:
    """Seconds between calls, by name: laps("what just ran"); str() -> "1.2 s: what 0.8, next 0.4"."""

    def __init__(self) -> None:
        self.last, self.laps = time.perf_counter(), []

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        return f"{sum(s for _, s in self.laps):.2f} s: " + ", ".join(f"{n} {s:.2f}" for n, s in self.laps)


def validation_metrics(recognizer: Recognizer, va: Split, learned_outliers: bool = False,
                       outliers: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy, calibration error and refusals on the validation split, and the share of validation outliers
    (marks that are not digits, training.exposure; drawn here unless given) refused, as `recognizer` predicts."""
    probs, scores = recognizer.scores(va.images)  # (N, 10), (N,)
    outlier_probs, outlier_scores = recognizer.scores(validation_outliers(va) if outliers is None else outliers)
    refusals = refusal_stats(probs, va.labels, outlier_probs, learned_outliers, scores, outlier_scores)
    return {"val_accuracy": (probs.argmax(1) == va.labels).float().mean().item(),
            "val_ece": expected_calibration_error(probs, va.labels), **refusals}
