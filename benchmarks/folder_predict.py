"""Folder throughput: `digits predict DIR --json` against the Python API, one image at a time and in batches.

    python benchmarks/folder_predict.py [--n 1000] [--busy]

Writes N PNGs of MNIST test digits, as 28x28 files and on photographed pages (testing/synth), into a
temporary folder and times, for each: the CLI on the folder (a fresh process: start-up and model load included),
`Recognizer.predict` called once per file (what a naive loop does), and `Recognizer.predict_many` (decoding in a
thread pool, batches through the model). --busy repeats the CLI run while another process keeps every core busy.
Prints images/s and the ratios.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def write_folder(n: int, folder: Path, photos: bool) -> list[Path]:
    """n PNGs of MNIST test digits: as they are (28x28), or each on a photographed page."""
    import numpy as np
    from PIL import Image

    from digit_recognizer.data import load_mnist
    from digit_recognizer.testing.synth import compose

    test = load_mnist(progress=False).test
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i in range(n):
        p = folder / f"{i:05d}.png"
        digit = test.images[i % len(test)].numpy()
        if photos:
            p.write_bytes(compose([digit], rng, single=True))
        else:
            Image.fromarray(digit).save(p)
        paths.append(p)
    return paths


def cli_seconds(folder: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "digit_recognizer", "predict", "--json", str(folder)],
                         capture_output=True, text=True)
    if res.returncode not in (0, 3):
        raise SystemExit(res.stderr)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--busy", action="store_true", help="also time the CLI beside a process busy on every core")
    args = ap.parse_args()
    from digit_recognizer.errors import DigitsError
    from digit_recognizer.inference.recognizer import Recognizer

    rows = []
    rec = Recognizer.load()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, photos in (("28x28 MNIST PNGs", False), ("photo-like pages", True)):
            folder = Path(tmp) / kind.split()[0]
            paths = write_folder(args.n, folder, photos)
            rec.predict(paths[0])  # warm-up: first-call costs are not throughput
            t0 = time.perf_counter()
            for p in paths:
                try:
                    rec.predict(p)
                except DigitsError:
                    pass  # refused: counted like an answer, as predict_many and the CLI count it
            one = time.perf_counter() - t0
            t0 = time.perf_counter()
            rec.predict_many(paths)
            many = time.perf_counter() - t0
            cli = cli_seconds(folder)
            rows += [[kind, "Recognizer.predict, one file at a time", args.n, round(args.n / one), 1.0],
                     [kind, "Recognizer.predict_many", args.n, round(args.n / many), round(one / many, 2)],
                     [kind, "digits predict DIR --json (process start included)", args.n, round(args.n / cli),
                      round(one / cli, 2)]]
            if args.busy:
                stop = mp.Event()
                burners = [mp.Process(target=burn, args=(stop,)) for _ in range(mp.cpu_count())]
                for b in burners:
                    b.start()
                try:
                    busy = cli_seconds(folder)
                finally:
                    stop.set()
                    for b in burners:
                        b.join()
                rows.append([kind, f"digits predict DIR --json, {mp.cpu_count()} busy processes beside it",
                             args.n, round(args.n / busy), round(one / busy, 2)])
    for r in rows:
        print(f"{r[0]:18s} {r[1]:58s} {r[3]:6d} images/s  x{r[4]}")
    from results import save

    save("folder_predict", "Predicting a folder of photo-like PNGs, shipped model",
         ["images", "how", "count", "images/s", "vs one at a time"], rows,
         notes="Photo-like pages: an MNIST test digit on a synthetic photographed page (testing/synth.py), a "
               "few hundred px on a side, so decoding and preprocessing dominate.")


if __name__ == "__main__":
    main()
