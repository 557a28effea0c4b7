"""Real-looking test sets from digits the model never trained on, and how well they are read.

    python benchmarks/paper_sets.py --split val    # tune on sets made from the validation split's digits
    python benchmarks/paper_sets.py --split test   # measure once, at the end, on the test split's digits

Writes DIR/<set>/ (images + labels.csv) for digits on paper (singles), whole numbers, things to refuse, and
every presentation in digit_recognizer.testing.presentations (tight crops, bold and thin pens, low resolution,
chalkboard, colours, transparency, 16-bit, palette, CMYK, EXIF rotation, tall and flat digits, lined and squared
paper, blocky enlargements, forms' boxes, a light pencil), numbers in a form's comb of boxes, numbers written
with a pen running dry and single digits in a light pencil on photographed pages. Prints the score of each,
with the clean MNIST accuracy and refusal rate of the same model for comparison.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np

JPEG_MAGIC = b"\xff\xd8"
SPLIT_SEEDS = {"val": 1, "test": 2}
PENCIL = (0.3, 0.5)  # a light pencil's ink on a photographed page: this share of a pen's darkness (uniform)


def set_rng(split: str, name: str) -> np.random.Generator:
    """Each set draws from its own generator, seeded by the split and the set's name: a set's images depend on
    --split, --n and its own definition alone, so a set added or changed leaves every other set's images as they
    were."""
    return np.random.default_rng([SPLIT_SEEDS[split], zlib.crc32(name.encode())])


def write_set(folder: Path, items: list[tuple[bytes, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label"]
    for i, (data, label) in enumerate(items):
        suffix = "jpg" if data[:2] == JPEG_MAGIC else "png"
        name = f"{i:05d}.{suffix}"
        (folder / name).write_bytes(data)
        lines.append(f"{name},{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--n", type=int, default=1000, help="images per set")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sets-from", type=Path, default=None,
                    help="read sets this script wrote before (same --split and --n: the same images) instead of "
                         "making them again")
    ap.add_argument("--sets", nargs="+", default=None, metavar="NAME",
                    help="make and read only these sets (each set's images are the same as in a full run)")
    args = ap.parse_args()

    from digit_recognizer.data import load_mnist, train_val_split
    from digit_recognizer.inference.evaluate import evaluate, evaluate_folder
    from digit_recognizer.inference.recognizer import Recognizer
    from digit_recognizer.testing.presentations import PRESENTATIONS, in_comb, make
    from digit_recognizer.testing.synth import compose, not_a_digit

    def singles(rng: np.random.Generator, strength: tuple[float, float] | None = None) -> list[tuple[bytes, str]]:
        items = []
        for _ in range(args.n):
            i = int(rng.integers(len(images)))
            ink = rng.uniform(*strength) if strength else 1.0
            items.append((compose([images[i]], rng, single=True, strength=ink), str(labels[i])))
        return items

    def numbers_drawn(draw, rng: np.random.Generator) -> list[tuple[bytes, str]]:  # draw(digits, rng) -> bytes
        items = []
        for _ in range(args.n):
            idx = rng.integers(len(images), size=int(rng.integers(3, 7)))
            items.append((draw([images[i] for i in idx], rng), "".join(str(labels[i]) for i in idx)))
        return items

    def presented(name: str, rng: np.random.Generator) -> list[tuple[bytes, str]]:
        picks = rng.integers(len(images), size=args.n)
        return [(make(name, images[i], rng), str(labels[i])) for i in picks]

    makers = {  # name -> make(rng) -> [(file bytes, label)]
        "singles": singles,
        "numbers": partial(numbers_drawn, lambda ds, r: compose(ds, r, single=False)),
        "numbers-tight": partial(numbers_drawn, lambda ds, r: compose(ds, r, single=False, tight=True)),
        "refuse": lambda rng: [(not_a_digit(rng), "") for _ in range(args.n)],
        **{name: partial(presented, name) for name in PRESENTATIONS},
        "numbers-comb": partial(numbers_drawn, in_comb),
        "numbers-dry": partial(numbers_drawn, lambda ds, r: compose(ds, r, single=False, dry=True)),
        "pencil-photo": partial(singles, strength=PENCIL),
    }
    unknown = sorted(set(args.sets or ()) - set(makers))
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}; the sets are {', '.join(makers)}")
    makers = {name: make_set for name, make_set in makers.items() if args.sets is None or name in args.sets}
    ds = load_mnist(progress=False)
    source = ds.test if args.split == "test" else train_val_split(ds.train, 0.1, 0)[1]
    images, labels = source.images.numpy(), source.labels.numpy()
    out = args.out or Path(tempfile.mkdtemp(prefix=f"paper-{args.split}-"))
    if args.sets_from:
        out = args.sets_from
        sets = {name: None for name in makers if (out / name / "labels.csv").is_file()}
    else:
        sets = {name: make_set(set_rng(args.split, name)) for name, make_set in makers.items()}
        for name, items in sets.items():
            write_set(out / name, items)

    rec = Recognizer.load(args.model)
    clean = evaluate(rec, source)
    refused_clean = sum(p.refused for p in rec.predict_arrays(source.images))
    print(f"model {rec.loaded.path}; digits from the {args.split} split; sets in {out}")
    print(f"clean MNIST ({args.split}): accuracy {clean.accuracy * 100:.2f}%, "
          f"refused {refused_clean / len(source) * 100:.2f}% at min_confidence {rec.min_confidence:.3f}")
    rows = [[f"clean MNIST ({args.split} split)", len(source), round(clean.accuracy * 100, 2),
             round(refused_clean / len(source) * 100, 2)]]
    for name in sets:
        res = evaluate_folder(rec, out / name)
        what = "refused" if name == "refuse" else "read exactly"
        print(f"{name:<12} {res['n']} images: {res['accuracy'] * 100:.2f}% {what} "
              f"(refused {res['refused']}, unreadable {res['unreadable']})")
        Path(out / f"{name}-result.json").write_text(json.dumps(res, indent=1))
        rows.append([f"{name} ({what})", res["n"], round(res["accuracy"] * 100, 2),
                     round(res["refused"] / res["n"] * 100, 2)])
    if "numbers" in sets:  # a number given to single-digit prediction must be refused, not read as one digit
        from digit_recognizer.inference.recognizer import Prediction

        files = sorted(f for f in (out / "numbers").iterdir() if f.suffix != ".csv")
        several = sum(isinstance(r, Prediction) and "side by side" in (r.why or "") for r in rec.predict_many(files))
        print(f"numbers given to predict: {several / len(files) * 100:.2f}% refused as several digits")
        rows.append(["numbers given to predict (refused as several digits)", len(files),
                     round(several / len(files) * 100, 2), round(several / len(files) * 100, 2)])
    if args.split == "test" and args.sets is None:  # the once-per-change measurement is what the docs show
        from results import save

        # The sets are a function of --split and --n alone, so the command that remakes them is this one.
        save("paper_sets", "Real-looking images made from test-split digits",
             ["set", "images", "score %", "refused %"], rows,
             command=f"python benchmarks/paper_sets.py --split {args.split} --n {args.n}",
             notes="Score: a digit or a whole number read exactly and not refused; for `refuse` (blank pages, "
                   "noise), refused. The presentations (tight ... wide) are described in "
                   "`src/digit_recognizer/testing/presentations.py`. Model: " + str(rec.loaded.path.name))


if __name__ == "__main__":
    main()
