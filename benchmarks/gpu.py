"""Training and inference on a GPU: time to accuracy, the tutorial's epochs, the best recipe, inference
latency, and how much of the GPU's bf16 peak the training step uses. Runs in about 4 minutes on an H100/H200.

    python benchmarks/gpu.py [--device cuda] [--data-dir DIR] [--seeds 5] [--skip-best]
    python benchmarks/gpu.py --device cpu --quick      # checks the script itself on any machine (tiny runs)

Prints one JSON object per measurement, then a table; writes docs/results/gpu.json (with the commit and the
machine) for a full run on a GPU. The data must already be in the data folder (the GPU machine has no network):
copy ~/.cache/digits.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, SXM parts, no sparsity.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12}
SINGLE_IMAGE_REPEATS = 200  # and a quarter as many passes over 10,000 images
TEST_IMAGES = 10_000
QUICK = {"limit": 2000, "epochs": 1}  # --quick: a check of the script, not a measurement
QUICK_IMAGES = 500  # --quick: the batch timed in one call (10,000 took 26 s on a CPU, warm-up included)


def seeds_record(runs: list[tuple]) -> dict:
    """timed_train's results over seeds -> their accuracies and training seconds, with the mean and median."""
    accs, secs = [r[0] for r in runs], [r[1] for r in runs]
    return {"seeds": len(runs), "test_accuracy_mean": statistics.mean(accs), "test_accuracies": accs,
            "train_seconds_median": statistics.median(secs), "train_seconds": secs}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_for(name: str) -> float | None:
    return next((v for k, v in BF16_PEAK.items() if k in name), None)


def emit(record: dict) -> dict:
    print(json.dumps(record), flush=True)
    return record


def timed_train(cfg, data, device, quiet=True):
    """Train in this process; returns (test accuracy, training-loop seconds, whole-call seconds, history)."""
    from digit_recognizer.inference.evaluate import evaluate
    from digit_recognizer.inference.recognizer import Recognizer
    from digit_recognizer.training.loop import train

    out = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    sync(device)
    started = time.perf_counter()
    result = train(cfg, data.train, out, progress=False, log=(lambda m: None) if quiet else print, device=device)
    whole = time.perf_counter() - started
    rec = Recognizer.load(out, device=device)
    acc = evaluate(rec, data.test).accuracy
    train_seconds = sum(h["train_seconds"] for h in result.history)
    return acc, train_seconds, whole, result.history


def whole_command(device: str, data_dir: str | None, extra: list[str]) -> tuple[float, list[str]]:
    """Wall seconds of `digits train --device cuda --no-report` in a fresh process (imports included), and its
    log's lines that time the fixed costs (the training steps' kind, each epoch, what follows the last)."""
    cmd = [sys.executable, "-m", "digit_recognizer", "train", "--device", device, "--no-report", "--no-progress",
           "--out", tempfile.mkdtemp(prefix="gpu-cmd-") + "/run", *extra]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    started = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    timed = ("training steps:", "epoch ", "sealed in", "trained in")
    return seconds, [line for line in (done.stderr + done.stdout).splitlines() if line.startswith(timed)]


def inference(device, repeats: int, batch: int = TEST_IMAGES) -> tuple[float, float]:
    """Median milliseconds for `batch` preprocessed images in one call, and for one image."""
    import torch

    from digit_recognizer.inference.recognizer import Recognizer

    rec = Recognizer.load(device=device)
    x = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8)

    def median_ms(images, n):
        rec.probabilities(images)  # warm-up: cuDNN picks its kernels
        times = []
        for _ in range(n):
            sync(device)
            t = time.perf_counter()
            rec.probabilities(images)
            sync(device)
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    return median_ms(x, max(1, repeats // 4)), median_ms(x[:1], repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--skip-best", action="store_true", help="leave out the best recipe (about a minute)")
    ap.add_argument("--quick", action="store_true", help="tiny runs that check the script, on any device")
    ap.add_argument("--no-verify", action="store_true", help="use a data folder that is not MNIST (checks only)")
    args = ap.parse_args()
    small = QUICK if args.quick else {}

    import torch

    from digit_recognizer.data import load_mnist
    from digit_recognizer.inference.device import resolve_device
    from digit_recognizer.models.net import build_model, forward_flops
    from digit_recognizer.training.recipes import make_config

    device = resolve_device(args.device)
    if device.type != "cuda" and not args.quick:
        sys.exit(f"benchmarks/gpu.py measures a CUDA GPU; '{args.device}' is {device} (--quick checks the script)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    kind = device.type
    data = load_mnist(args.data_dir, verify=not args.no_verify, progress=False)
    records = []

    # 1. The default recipe, as chosen for CUDA (each step replayed as one CUDA graph there): 5 seeds; the first
    # run in the process also pays cuDNN's autotuning and the capture, so a warm-up run comes first.
    timed_train(make_config("fast", kind, seed=100, **small), data, device)
    fast = [timed_train(make_config("fast", kind, seed=s, **small), data, device) for s in range(args.seeds)]
    records.append(emit({"what": f"fast recipe on {kind} (the default)", **seeds_record(fast),
                         "whole_call_seconds": [f[2] for f in fast]}))
    # 1b. The same seeds with eager steps (--no-cuda-graph): the graph must take the same steps, so the same
    # accuracy, in less time.
    if kind == "cuda":
        eager = [timed_train(make_config("fast", kind, seed=s, cuda_graph=False, **small), data, device)
                 for s in range(args.seeds)]
        records.append(emit({"what": "fast recipe, --no-cuda-graph (eager)", **seeds_record(eager)}))
    extra = [f"--{k}={v}" for k, v in small.items()] + (["--no-verify"] if args.no_verify else [])
    cmd_seconds, cmd_log = whole_command(args.device, args.data_dir, extra)
    records.append(emit({"what": f"digits train --device {args.device} (fresh process)", "seconds": cmd_seconds,
                         "log": cmd_log}))

    # 2. Utilisation of the training step: achieved FLOP/s against the bf16 peak.
    cfg = make_config("fast", kind)
    flops = forward_flops(build_model(cfg.model)) * 3  # forward + backward (about twice the forward)
    hist = fast[0][3]
    rate = sum(h["images"] for h in hist) / sum(h["train_seconds"] for h in hist)
    peak = peak_for(name)
    records.append(emit({"what": "training-step utilisation", "net": cfg.model, "tflops": flops * rate / 1e12,
                         "bf16_peak_tflops": peak / 1e12 if peak else None,
                         "share_of_peak": flops * rate / peak if peak else None}))

    # 3. The tutorial recipe: seconds per epoch and accuracy.
    acc, tsec, _, hist = timed_train(make_config("tutorial", kind, **small), data, device)
    records.append(emit({"what": f"tutorial recipe on {kind}", "test_accuracy": acc,
                         "seconds_per_epoch": statistics.median(h["train_seconds"] for h in hist)}))

    # 4. The best recipe: seconds per model and accuracy.
    if not args.skip_best:
        acc, tsec, whole, _ = timed_train(make_config("best", kind, tta=False, **small), data, device)
        records.append(emit({"what": f"best recipe on {kind} (the default; no shifted views)", "test_accuracy": acc,
                             "train_seconds": tsec, "whole_call_seconds": whole}))
        if kind == "cuda":
            acc, tsec, whole, _ = timed_train(make_config("best", kind, tta=False, cuda_graph=False, **small), data,
                                              device)
            records.append(emit({"what": "best recipe, --no-cuda-graph (eager; no shifted views)",
                                 "test_accuracy": acc, "train_seconds": tsec, "whole_call_seconds": whole}))

    # 5. Inference with the shipped model.
    batch = QUICK_IMAGES if args.quick else TEST_IMAGES
    batch_ms, one_ms = inference(device, 4 if args.quick else SINGLE_IMAGE_REPEATS, batch)
    records.append(emit({"what": "inference, shipped model", f"ms_{batch}_images": batch_ms, "ms_one_image": one_ms}))

    rows = [[r["what"], json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                                    if k != "what" and not isinstance(v, list)})] for r in records]
    print()
    for what, values in rows:
        print(f"{what:<45} {values}")
    if args.quick:
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from results import save

    save("gpu", f"Training and inference on {name}", ["measurement", "values"], rows, raw=records,
         notes="Seconds are wall time on the GPU machine; training seconds exclude validation, the whole call "
               "includes it, calibration, int8 ranges and saving.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
