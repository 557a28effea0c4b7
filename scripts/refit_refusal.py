"""Fit a saved model's refusal again as training fits it now: for a model trained on marks that are not digits,
a digit score threshold (min_score) beside the confidence threshold (min_confidence).

    python scripts/refit_refusal.py MODEL.json [MODEL.json ...]

Each model file is measured on its own validation split (its recorded val_fraction, split_seed and limit) and on
the validation outliers training measures, through the Recognizer as `digits train` measures a model it saves
(training.finish.validation_metrics: one network in fp32, an ensemble as it predicts), and its JSON is rewritten
with the new thresholds and refusal metrics. The weights are not touched. For models saved before the digit
score existed; a model trained now has both thresholds already.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

REFUSAL_METRICS = ("val_refused", "val_accuracy_answered", "val_outliers_refused")


def refit(path: Path, train) -> dict:
    """The model at `path` measured again and its thresholds rewritten; returns what changed."""
    from digit_recognizer.data.dataset import Split, train_val_split
    from digit_recognizer.inference.recognizer import Recognizer
    from digit_recognizer.models.modelfile import read_json, write_json
    from digit_recognizer.training.finish import learned_outliers, refusal_thresholds, validation_metrics

    meta = read_json(path)
    training = meta.get("training", {})
    limit = training.get("limit", 0)
    data = Split(train.images[:limit], train.labels[:limit]) if limit else train
    va = train_val_split(data, training.get("val_fraction", 0.1), training.get("split_seed", 0))[1]
    members = meta.get("members")
    # An ensemble learned outliers where each member did (as training.ensemble judges it), a network where it did
    learned = learned_outliers([read_json(path.parent / m) for m in members] if members else [meta])
    rec = Recognizer.load(path, device="cpu", **({} if members else {"precision": "fp32"}))
    measured = validation_metrics(rec, va, learned)
    before = {k: meta.pop(k, None) for k in ("min_confidence", "min_score")}  # a threshold not fitted again goes
    meta.update(refusal_thresholds(measured))
    meta["metrics"] = {**meta.get("metrics", {}), **{k: measured[k] for k in REFUSAL_METRICS if k in measured}}
    write_json(path, meta)
    return {"before": before, "after": {k: meta.get(k) for k in before},
            "metrics": {k: measured.get(k) for k in REFUSAL_METRICS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    from digit_recognizer.data import load_mnist

    train = load_mnist(args.data_dir, progress=False).train
    for path in args.models:
        print(path, refit(path, train), flush=True)


if __name__ == "__main__":
    main()
