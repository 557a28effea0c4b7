"""Digits from writers MNIST never saw: the UCI optical-digits set (43 writers, 8x8 pixels of 17 grey levels,
each digit stretched to fill its frame) that scikit-learn ships, enlarged as people hand such images over.

    pip install scikit-learn                          # the data comes inside it: nothing is downloaded
    python benchmarks/other_source.py --split val     # choose on the even-numbered digits
    python benchmarks/other_source.py --split test    # measure once, on the odd-numbered ones

Sets: `smooth` (enlarged bilinear or bicubic to 24-300 px), `blocky` (enlarged nearest-neighbour, as an image
viewer's zoom or a screenshot shows it); each either dark on light or light on dark. Prints the share read
exactly and not refused, beside the model's clean MNIST accuracy on the same split (validation or test).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

GREY_LEVELS = 16  # optdigits' pixels count the ink in 4x4 blocks of a 32x32 bitmap: 0..16
LIGHT_ON_DARK = 0.3  # share of images with light ink on a dark ground
SIDES = (24, 301)  # enlarged to this many px (high end excluded)


def picture(digit: np.ndarray, rng: np.random.Generator, method) -> bytes:
    """An (8, 8) 0..16 digit, ink high -> PNG bytes, enlarged with `method` to a random size."""
    import io

    from PIL import Image

    ink = np.rint(digit * 255 / GREY_LEVELS).astype(np.uint8)
    img = Image.fromarray(ink if rng.random() < LIGHT_ON_DARK else 255 - ink, "L")
    side = int(rng.integers(*SIDES))
    buf = io.BytesIO()
    img.resize((side, side), method).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("error: this benchmark reads the optical-digits set that scikit-learn ships: "
                         "pip install scikit-learn")
    from PIL import Image

    from digit_recognizer.data import load_mnist, train_val_split
    from digit_recognizer.inference.evaluate import evaluate, evaluate_folder
    from digit_recognizer.inference.recognizer import Recognizer
    from paper_sets import write_set

    data = load_digits()
    half = slice(0, None, 2) if args.split == "val" else slice(1, None, 2)
    digits, labels = data.images[half], data.target[half]
    rng = np.random.default_rng({"val": 3, "test": 4}[args.split])
    out = args.out or Path(tempfile.mkdtemp(prefix=f"optdigits-{args.split}-"))
    methods = {"smooth": lambda: rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC]),
               "blocky": lambda: Image.Resampling.NEAREST}
    for name, method in methods.items():
        write_set(out / name, [(picture(d, rng, method()), str(y)) for d, y in zip(digits, labels)])

    rec = Recognizer.load(args.model)
    # Clean MNIST from the same side of the line: a choice made on --split val never sees a test digit.
    ds = load_mnist(progress=False)
    clean = evaluate(rec, ds.test if args.split == "test" else train_val_split(ds.train, 0.1, 0)[1])
    print(f"model {rec.loaded.path}; optical digits, {args.split} half ({len(digits)}); sets in {out}")
    print(f"clean MNIST ({args.split} split): {clean.accuracy * 100:.2f}%")
    rows = [[f"clean MNIST ({args.split} split)", len(clean.labels), round(clean.accuracy * 100, 2), 0.0]]
    for name in methods:
        res = evaluate_folder(rec, out / name)
        print(f"{name:<8} {res['n']} images: {res['accuracy'] * 100:.2f}% read exactly (refused {res['refused']})")
        rows.append([f"optical digits, {name}", res["n"], round(res["accuracy"] * 100, 2),
                     round(res["refused"] / res["n"] * 100, 2)])
    if args.split == "test":
        from results import save

        save("other_source", "Digits by other writers: UCI optical digits (8x8), enlarged",
             ["set", "images", "score %", "refused %"], rows,
             command="python benchmarks/other_source.py --split test",
             notes="The odd-numbered half of scikit-learn's copy of the UCI optical-digits test set. Score: read "
                   "exactly and not refused. Model: " + str(rec.loaded.path.name))


if __name__ == "__main__":
    main()
