"""What the whole `digits train` command costs beyond its training loop: start-up, importing PyTorch, loading
MNIST, calibration and int8 ranges, saving, and the report.

    python benchmarks/train_overhead.py                      # this checkout, 3 runs with and without the report
    python benchmarks/train_overhead.py --against 34d888a    # ... side by side with another commit

Each run is `python -m digit_recognizer train --no-progress [--no-report]` (the default `fast` recipe) in a fresh
process; the loop's own seconds (training and per-epoch validation) come from the run's metrics.jsonl. Runs of
the two checkouts take turns, and medians are printed, since these CPUs are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import REPO, save

VARIANTS = {"with the report": [], "--no-report": ["--no-report"]}


def one_run(src: Path, extra: list[str], work: Path) -> dict[str, float]:
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src / "src")}  # ahead of the installed package
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digit_recognizer", "train", "--out", str(out), "--no-progress", *extra],
                   cwd=work, env=env, check=True, capture_output=True)
    whole = time.perf_counter() - started
    loop = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["seconds"]
    return {"whole": whole, "loop": loop, "beyond": whole - loop}


def import_torch_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--against", default=None, help="another commit, measured the same way in turns")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        work = Path(tmp)
        checkouts = {"this checkout": REPO}
        if args.against:
            ref = work / "ref"
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(ref), args.against], cwd=REPO, check=True)
            checkouts[args.against] = ref
        try:
            times: dict[tuple[str, str], list[dict[str, float]]] = {}
            for _ in range(args.runs):
                for variant, extra in VARIANTS.items():
                    for name, src in checkouts.items():
                        times.setdefault((name, variant), []).append(one_run(src, extra, work))
            torch_import = statistics.median(import_torch_seconds() for _ in range(args.runs))
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(work / "ref")], cwd=REPO)
    rows = []
    for (name, variant), runs in times.items():
        med = {k: round(statistics.median(r[k] for r in runs), 2) for k in ("whole", "loop", "beyond")}
        rows.append([name, variant, med["whole"], med["loop"], med["beyond"]])
        print(f"{name:<16} {variant:<16} whole {med['whole']:6.2f} s  loop {med['loop']:6.2f} s  "
              f"beyond the loop {med['beyond']:5.2f} s")
    print(f"importing torch alone: {torch_import:.2f} s")
    save("train_overhead", "The whole `digits train` command against its training loop (fast recipe, CPU)",
         ["checkout", "command", "whole command (s)", "training loop (s)", "beyond the loop (s)"], rows,
         notes=f"Medians of {args.runs} runs each, taking turns. Importing torch alone: {torch_import:.2f} s.")


if __name__ == "__main__":
    main()
