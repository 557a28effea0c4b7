"""Questions about accuracy that need many seeds, answered on the validation split, for a GPU's few minutes.

    python benchmarks/gpu_accuracy.py --question model --seeds 3 --budget 540 --out results.jsonl
    python benchmarks/gpu_accuracy.py --question epochs --seeds 10 --budget 540 --out results.jsonl
    python benchmarks/gpu_accuracy.py --question ensemble --seeds 20 --budget 540
    python benchmarks/gpu_accuracy.py --test epochs=60 --seeds 5       # the chosen recipe, test split, once
    python benchmarks/gpu_accuracy.py --question augment --quick --device cpu   # checks the script anywhere

Each question is a few variants of the best recipe. Seeds run round-robin over the variants, so whatever the
time budget allows is balanced, and every model's line is appended to --out as soon as it is trained: a run
cut short keeps what it measured. A line holds the variant, the seed, validation accuracy with and without the
five shifted views, and training seconds; the summary gives each variant's mean and standard deviation. For
`ensemble`, members are trained once and the averaged validation accuracy is reported for growing sizes.
Only `--test` reads the test split: use it once, for the variant the validation split chose.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS: dict[str, dict[str, dict]] = {
    "epochs": {"18": {}, "36": {"epochs": 36}, "72": {"epochs": 72}},
    "augment": {"shipped": {}, "no-stroke": {"augment_bold": 0.0, "augment_stroke": 0.0},
                "no-marker": {"augment_marker": 0.0}, "marker-0.3": {"augment_marker": 0.3},
                "widen-1": {"augment_widen": 1.0}, "narrow-0.8": {"augment_squeeze": 0.8},
                "rotate-15": {"augment_degrees": 15.0}},
    "batch": {"128": {}, "256": {"batch_size": 256, "lr": 0.2}, "64": {"batch_size": 64, "lr": 0.05}},
    "ensemble": {"member": {}},
    # best's deep net (An et al. 2020's M3) against the wide net it replaced (48 epochs, as it was trained), and
    # for as many epochs.
    "model": {"deep": {}, "wide-48": {"model": "wide", "epochs": 48}, "deep-48": {"epochs": 48}},
}
QUICK = {"limit": 2000, "epochs": 1}  # --quick: a check of the script, not a measurement
ENSEMBLE_SIZES = (1, 3, 5, 10, 20, 30)


def parse_overrides(text: str) -> dict:
    """'epochs=60,augment_squeeze=0.8' -> {'epochs': 60, 'augment_squeeze': 0.8}."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = json.loads(value)
    return out


def train_one(overrides: dict, seed: int, data, device, work: Path):
    """Train the best recipe with `overrides` and `seed` -> (its Recognizer, the validation split, seconds)."""
    import dataclasses

    from digit_recognizer.data.dataset import Split, train_val_split
    from digit_recognizer.inference.recognizer import Recognizer
    from digit_recognizer.training.loop import train
    from digit_recognizer.training.recipes import make_config

    cfg = dataclasses.replace(make_config("best", device.type, seed=seed, tta=False), **overrides)
    run = work / f"run-{time.monotonic_ns()}"
    result = train(cfg, data, run, progress=False, log=lambda _: None, device=device)
    used = Split(data.images[:cfg.limit], data.labels[:cfg.limit]) if cfg.limit else data
    _, va = train_val_split(used, cfg.val_fraction, cfg.split_seed)
    return Recognizer.load(run, precision="fp32", device=device), va, result.seconds


def views_and_not(rec, images):
    """(N, 10) probabilities without and with the five shifted views."""
    rec.tta = False
    plain = rec.probabilities(images).cpu()
    rec.tta = True
    return plain, rec.probabilities(images).cpu()


def accuracy(probs, labels) -> float:
    return float((probs.argmax(1) == labels).float().mean())


def emit(record: dict, out: Path | None) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out:
        with out.open("a") as f:
            f.write(line + "\n")


def summarise(records: list[dict]) -> None:
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["variant"], []).append(r)
    print()
    for variant, rs in by.items():
        for key in ("val_accuracy", "val_accuracy_tta"):
            vals = [r[key] * 100 for r in rs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            print(f"{variant:<14} {key:<17} {statistics.mean(vals):.3f}% +- {sd:.3f} over {len(vals)} seeds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--question", choices=sorted(QUESTIONS), default="epochs")
    ap.add_argument("--test", default=None, help="overrides of the chosen variant ('' for the recipe as it is): "
                                                 "train --seeds models and report test accuracy")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=float, default=540, help="seconds; no new model starts after this")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=None, help="append every model's line to this JSON-lines file")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    from digit_recognizer.data import load_mnist
    from digit_recognizer.inference.device import resolve_device

    device = resolve_device(args.device)
    data = load_mnist(args.data_dir, progress=False)
    started = time.monotonic()
    small = QUICK if args.quick else {}
    with tempfile.TemporaryDirectory(prefix="gpu-accuracy-") as tmp:
        work = Path(tmp)
        if args.test is not None:
            overrides = {**parse_overrides(args.test), **small}
            for seed in range(args.seeds):
                rec, _, seconds = train_one(overrides, seed, data.train, device, work)
                plain, shifted = views_and_not(rec, data.test.images)
                emit({"test": args.test, "seed": seed, "test_accuracy": accuracy(plain, data.test.labels),
                      "test_accuracy_tta": accuracy(shifted, data.test.labels), "train_seconds": seconds}, args.out)
            return
        variants = QUESTIONS[args.question]
        records, members = [], []
        for seed in range(args.seeds):
            for name, overrides in variants.items():
                if time.monotonic() - started > args.budget:
                    break
                rec, va, seconds = train_one({**overrides, **small}, seed, data.train, device, work)
                plain, shifted = views_and_not(rec, va.images)
                labels = va.labels
                record = {"question": args.question, "variant": name, "seed": seed,
                          "val_accuracy": accuracy(plain, labels), "val_accuracy_tta": accuracy(shifted, labels),
                          "train_seconds": seconds}
                records.append(record)
                emit(record, args.out)
                if args.question == "ensemble":
                    members.append(shifted)
                    if len(members) in ENSEMBLE_SIZES:
                        emit({"question": "ensemble", "members": len(members),
                              "val_accuracy_tta": accuracy(sum(members) / len(members), labels)}, args.out)
        summarise(records)


if __name__ == "__main__":
    main()
