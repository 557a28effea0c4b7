"""The image reader's speed, this commit against another, on one thread: median ms per image of the whole
`Recognizer.predict` (decode, reader, model), each image's time the best of the rounds, CPU seconds for the set,
and the share read right.

    python benchmarks/reader_speed.py --against 263e391            # this commit's reader vs 263e391's
    python benchmarks/reader_speed.py --against 263e391 --n 1000 --save
    python benchmarks/reader_speed.py --steps                       # and how long each step takes

Two sets of validation-split digits: `photo-like` (cut out of photos with a margin, 50-320 px: tight, bold,
thin, low resolution, chalkboard, coloured, pencil) and `paper` (one digit anywhere on a photographed page of
any size, the paper set of benchmarks/paper_sets.py). Each commit runs in its own process with one thread
(OMP, MKL, torch and OpenCV), the two alternating `--rounds` times. These CPUs are shared and noisy: an
image's time is the best of its rounds (as `timeit` takes the best of its repeats), and the medians of those are
compared; the CPU time is the median over the rounds. The other commit's `src/` is taken with `git archive`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO_LIKE = ("tight", "bold-margin", "thin-margin", "lowres", "chalkboard", "coloured", "faint")
SEED = 3  # the sets' generator: neither paper_sets.py's validation (1) nor its test seed (2)

WORKER = r"""
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
if hasattr(os, "sched_setaffinity"):  # one core throughout: a thread moved between cores starts with cold caches
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from digit_recognizer.inference.recognizer import Recognizer
folder = Path(sys.argv[1])
rec = Recognizer.load()
out = {}
for name in json.loads(sys.argv[2]):
    items = [line.split(",") for line in (folder / name / "labels.csv").read_text().split()[1:]]
    datas = [(folder / name / f).read_bytes() for f, _ in items]
    rec.predict(datas[0])  # warm: the model, int8 weights, imports
    times, right, steps = [], 0, []
    start = time.process_time()
    for data, (_, label) in zip(datas, items):
        t = time.perf_counter()
        if sys.argv[3] == "steps":  # each step's time, from the reader's trace
            trace, p = rec.trace(data)
            steps.append({s.step: 0.0 for s in trace.stages})
            for s in trace.stages:
                steps[-1][s.step] += s.ms
        else:
            p = rec.predict(data)
        times.append(time.perf_counter() - t)
        right += (not p.refused) and str(p.digit) == label
    out[name] = {"ms": [x * 1000 for x in times], "cpu_s": time.process_time() - start, "right": right,
                 "n": len(items), "steps": steps}
print(json.dumps(out))
"""


def make_sets(folder: Path, n: int) -> None:
    from digit_recognizer.data import load_mnist, train_val_split
    from digit_recognizer.testing.presentations import make
    from digit_recognizer.testing.synth import compose

    val = train_val_split(load_mnist(progress=False).train, 0.1, 0)[1]
    images, labels = val.images.numpy(), val.labels.numpy()
    rng = np.random.default_rng(SEED)
    sets = {"photo-like": [], "paper": []}
    for k in range(n):
        i = int(rng.integers(len(images)))
        sets["photo-like"].append((make(PHOTO_LIKE[k % len(PHOTO_LIKE)], images[i], rng), labels[i]))
        j = int(rng.integers(len(images)))
        sets["paper"].append((compose([images[j]], rng, single=True), labels[j]))
    for name, items in sets.items():
        (folder / name).mkdir(parents=True)
        rows = ["file,label"]
        for k, (data, label) in enumerate(items):
            (folder / name / f"{k:05d}.img").write_bytes(data)
            rows.append(f"{k:05d}.img,{label}")
        (folder / name / "labels.csv").write_text("\n".join(rows) + "\n")


def source_of(commit: str, into: Path) -> Path:
    """The commit's src/ unpacked into `into`."""
    archive = subprocess.run(["git", "archive", commit, "src"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run(src: Path, folder: Path, sets: list[str], mode: str = "predict") -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", WORKER, str(folder), json.dumps(sets), mode], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_steps(name: str, runs: list[dict]) -> None:
    """Each step's median over images of its best round, and the rest of `predict` (the model and the answer)."""
    steps = list(dict.fromkeys(k for r in runs for image in r["steps"] for k in image))
    best = lambda key: np.min([[image.get(key, 0.0) for image in r["steps"]] for r in runs], axis=0)
    rest = np.min([np.array(r["ms"]) - [sum(image.values()) for image in r["steps"]] for r in runs], axis=0)
    cells = [f"{step} {np.median(best(step)):.2f}" for step in steps] + [f"the rest {np.median(rest):.2f}"]
    print(f"{name:<10} steps, median ms of each image's best run: " + ", ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", default=None, help="a commit to compare with (default: this one alone)")
    ap.add_argument("--n", type=int, default=300, help="images per set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--save", action="store_true", help="write docs/results/reader_speed.json")
    ap.add_argument("--steps", action="store_true",
                    help="also time this commit's steps (from the reader's trace), in runs of their own")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="reader-speed-") as tmp:
        folder = Path(tmp) / "sets"
        make_sets(folder, args.n)
        sets = ["photo-like", "paper"]
        sources = {"this commit": REPO / "src"}
        if args.against:
            (Path(tmp) / "other").mkdir()
            sources[args.against] = source_of(args.against, Path(tmp) / "other")
        results: dict[str, list[dict]] = {name: [] for name in sources}
        for _ in range(args.rounds):
            for name, src in sources.items():
                results[name].append(run(src, folder, sets))
        traced = [run(REPO / "src", folder, sets, "steps") for _ in range(args.rounds)] if args.steps else []
    rows = []
    for s in sets:
        for name, runs in results.items():
            median = float(np.median(np.min([r[s]["ms"] for r in runs], axis=0)))  # each image's best round
            cpu = float(np.median([r[s]["cpu_s"] for r in runs]))
            acc = runs[0][s]["right"] / runs[0][s]["n"] * 100
            rows.append([s, name, round(median, 2), round(cpu, 2), round(acc, 2)])
            print(f"{s:<10} {name:<12} median {median:6.2f} ms/image, {cpu:6.2f} CPU s for {runs[0][s]['n']}, "
                  f"{acc:.2f}% read right")
        if args.against:
            ours, theirs = rows[-2], rows[-1]
            print(f"{s:<10} ratio {theirs[2] / ours[2]:.2f}x faster (median), {theirs[3] / ours[3]:.2f}x (CPU time)")
    for s in sets if traced else []:
        print_steps(s, [r[s] for r in traced])
    if args.save:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from results import save

        save("reader_speed", "The image reader's speed on one thread",
             ["set", "reader", "median ms / image", "CPU s for the set", "read right %"], rows,
             command=(f"python benchmarks/reader_speed.py --against {args.against} --n {args.n} "
                      f"--rounds {args.rounds} --save"),
             notes="Whole `Recognizer.predict` per image (decode, reader, model), one thread; the median over "
                   f"images of each image's best of {args.rounds} alternating runs. Validation-split digits.")


if __name__ == "__main__":
    main()
