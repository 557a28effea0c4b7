"""Other people's hands and marks that are not digits, as photos and scans, and how well they are read.

    python benchmarks/other_hands.py --split val    # choose on sets drawn with the validation seed
    python benchmarks/other_hands.py --split test   # measure once per change, with the test seed

Sets (each image a random presentation: a photo of a page, a tight crop, a thin or bold pen, low resolution,
coloured ink, lined paper, a light pencil):
- hands: single digits in other writers' styles, half MNIST's own digits of the split with a continental 1's flag
  or a 7's bar (training.hands), half drawn by a random hand in every style of training.glyphs (new draws);
- hands-numbers: numbers of 3-6 such digits;
- letters: capital and small letters (refused is right);
- not-digits: symbols, shapes, scribbles and blots (refused is right);
- font-hands, font-numbers, font-letters: the same from handwriting fonts (training.fonts) of the split's families,
  which training never draws from;
- clean MNIST of the split, for the accuracy and refusals on plain digits.
Writes docs/results/other_hands.json for the test split.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from paper_sets import set_rng, write_set

HAND_PRESENTATIONS = ("tight", "thin-margin", "bold-margin", "lowres", "coloured", "ruled", "faint", "chalkboard")
PAPER = 0.4  # share of single marks written on a photographed page (synth.compose); the rest are presentations


def hand_sets(split: str, n: int, sets: tuple[str, ...] | None = None) -> dict[str, list[tuple[bytes, str]]]:
    """The sets of this benchmark for `split` (each seeded by the split and its name): name -> [(file bytes,
    label)], an empty label where refusing is right."""
    from digit_recognizer.testing.presentations import make
    from digit_recognizer.testing.synth import compose
    from digit_recognizer.training.fonts import font_digits, font_letters
    from digit_recognizer.training.glyphs import LETTERS, NOT_DIGITS
    from digit_recognizer.training.hands import crossed_seven, flagged_one, styled_digits
    from digit_recognizer.training.outliers import blot, scribble
    from digit_recognizer.training.strokes import Hand, draw

    source = split_digits(split)
    images, labels = source.images.numpy(), source.labels.numpy()
    ones, sevens = images[labels == 1], images[labels == 7]

    def hand_digit(rng: np.random.Generator) -> tuple[np.ndarray, int]:
        if rng.random() < 0.5:
            if rng.random() < 0.6:
                return flagged_one(ones[rng.integers(len(ones))], rng), 1
            return crossed_seven(sevens[rng.integers(len(sevens))], rng), 7
        x, y = styled_digits(1, rng)
        return x[0], int(y[0])

    def presented(mark: np.ndarray, rng: np.random.Generator) -> bytes:
        if rng.random() < PAPER:
            return compose([mark], rng, single=True)
        return make(HAND_PRESENTATIONS[rng.integers(len(HAND_PRESENTATIONS))], mark, rng)

    def font_digit(rng: np.random.Generator) -> tuple[np.ndarray, int]:
        x, y = font_digits(1, rng, split)
        return x[0], int(y[0])

    def singles(digit_of, rng: np.random.Generator) -> list[tuple[bytes, str]]:
        return [(presented(m, rng), str(d)) for m, d in (digit_of(rng) for _ in range(n))]

    def numbers(digit_of, rng: np.random.Generator) -> list[tuple[bytes, str]]:
        out = []
        for _ in range(n):
            marks = [digit_of(rng) for _ in range(int(rng.integers(3, 7)))]
            out.append((compose([m for m, _ in marks], rng, single=False), "".join(str(d) for _, d in marks)))
        return out

    def refused(kinds, rng: np.random.Generator) -> list[tuple[bytes, str]]:
        return [(presented(kinds[rng.integers(len(kinds))](rng), rng), "") for _ in range(n)]

    def glyph_of(name: str):
        return lambda rng: draw(NOT_DIGITS[name], Hand.random(rng), rng)

    others = [glyph_of(k) for k in NOT_DIGITS if k not in LETTERS] + [scribble, blot]
    makers = {"hands": partial(singles, hand_digit), "hands-numbers": partial(numbers, hand_digit),
              "letters": partial(refused, [glyph_of(k) for k in LETTERS]),
              "not-digits": partial(refused, others), "font-hands": partial(singles, font_digit),
              "font-numbers": partial(numbers, font_digit),
              "font-letters": partial(refused, [lambda rng: font_letters(1, rng, split)[0]])}
    return {name: make_set(set_rng(split, "hands/" + name)) for name, make_set in makers.items()
            if sets is None or name in sets}


def split_digits(split: str):
    """The MNIST digits the sets are drawn from: the test split, or the validation split of training."""
    from digit_recognizer.data import load_mnist, train_val_split

    ds = load_mnist(progress=False)
    return ds.test if split == "test" else train_val_split(ds.train, 0.1, 0)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--n", type=int, default=500, help="images per set")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sets", nargs="+", default=None, help="only these sets (default: all)")
    args = ap.parse_args()

    from digit_recognizer.inference.evaluate import evaluate, evaluate_folder
    from digit_recognizer.inference.recognizer import Recognizer

    sets = hand_sets(args.split, args.n, tuple(args.sets) if args.sets else None)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"hands-{args.split}-"))
    for name, items in sets.items():
        write_set(out / name, items)
    source = split_digits(args.split)
    rec = Recognizer.load(args.model)
    clean = evaluate(rec, source)
    refused_clean = sum(p.refused for p in rec.predict_arrays(source.images)) / len(source)
    print(f"model {rec.loaded.path}; {args.split} split; sets in {out}")
    print(f"clean MNIST: accuracy {clean.accuracy * 100:.2f}%, refused {refused_clean * 100:.2f}% "
          f"at min_confidence {rec.min_confidence:.3f}")
    rows = [[f"clean MNIST ({args.split} split)", len(source), round(clean.accuracy * 100, 2),
             round(refused_clean * 100, 2)]]
    for name in sets:
        res = evaluate_folder(rec, out / name)
        what = "refused" if name in ("letters", "not-digits", "font-letters") else "read exactly"
        print(f"{name:<14} {res['n']} images: {res['accuracy'] * 100:.2f}% {what} (refused {res['refused']})")
        Path(out / f"{name}-result.json").write_text(json.dumps(res, indent=1))
        rows.append([f"{name} ({what})", res["n"], round(res["accuracy"] * 100, 2),
                     round(res["refused"] / res["n"] * 100, 2)])
    if args.split == "test" and not args.sets:
        from results import save

        save("other_hands", "Other people's hands and marks that are not digits (test seed)",
             ["set", "images", "score %", "refused %"], rows,
             command=f"python benchmarks/other_hands.py --split test --n {args.n}",
             notes="Score: a digit or number read exactly and not refused; for letters and not-digits, refused. "
                   "Sets are described in benchmarks/other_hands.py. Model: " + str(rec.loaded.path.name))


if __name__ == "__main__":
    main()
