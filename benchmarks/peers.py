"""digits beside the tools a user would otherwise pick, on the same images: other hands, letters, presentations.

    python benchmarks/peers.py --split val --n 100
    python benchmarks/peers.py --split test --n 300 --peer-venv /tmp/drp-venv   # writes docs/results/peers.json

Peers:
- Tesseract (Debian's `tesseract-ocr`), told to read digits only (`tessedit_char_whitelist=0123456789`): one
  character (`--psm 10`) for single digits, one line (`--psm 7`) for numbers. An empty answer is a refusal.
- `digit-recognizer-py` from PyPI, with its bundled CNN. It needs torchvision, which does not install beside this
  project's PyTorch, so it runs in a virtualenv of its own (`--peer-venv`, made with
  `pip install torch==2.14.1 torchvision==0.29.1 digit-recognizer-py`). It has no refusal and no number reader.
A peer that is not installed is left out, and the table says so.

Sets: those of benchmarks/other_hands.py, and single MNIST digits of the split in a few presentations (on a
photographed page, cut tight, bold and thin pens, low resolution).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from other_hands import hand_sets, split_digits
from paper_sets import set_rng, write_set

PRESENTED = ("tight", "bold-margin", "thin-margin", "lowres")
TESSERACT_DIGITS = ["-c", "tessedit_char_whitelist=0123456789"]
# Runs in the peer's own virtualenv: file names on stdin, one JSON answer per line on stdout.
PEER_SCRIPT = """
import json, sys
from digit_recognizer import DigitRecognizer
rec = DigitRecognizer(device="cpu")
for line in sys.stdin:
    path = line.rstrip("\\n")
    try:
        r = rec.predict_detailed(path) if hasattr(rec, "predict_detailed") else rec.predict(path)
        print(json.dumps({"digit": int(r)}), flush=True)
    except Exception as e:
        print(json.dumps({"error": str(e)[:200]}), flush=True)
"""


def presentation_sets(split: str, n: int) -> dict[str, list[tuple[bytes, str]]]:
    from digit_recognizer.testing.presentations import make
    from digit_recognizer.testing.synth import compose

    source = split_digits(split)
    images, labels = source.images.numpy(), source.labels.numpy()
    out = {}
    rng = set_rng(split, "peers/singles")
    picks = rng.integers(len(images), size=n)
    out["singles"] = [(compose([images[i]], rng, single=True), str(labels[i])) for i in picks]
    for name in PRESENTED:
        rng = set_rng(split, "peers/" + name)
        picks = rng.integers(len(images), size=n)
        out[name] = [(make(name, images[i], rng), str(labels[i])) for i in picks]
    return out


def files_of(folder: Path) -> list[tuple[Path, str]]:
    rows = (folder / "labels.csv").read_text().splitlines()[1:]
    return [(folder / name, label) for name, label in (r.split(",", 1) for r in rows)]


def score(answers: list[tuple[str, bool]], labels: list[str]) -> tuple[float, float]:
    """(share right, share refused): right is the label read and not refused, or refused for an empty label."""
    right = sum((refused if label == "" else (answer == label and not refused))
                for (answer, refused), label in zip(answers, labels))
    return right / len(labels), sum(r for _, r in answers) / len(labels)


def ours(model: str | None):
    from digit_recognizer.inference.recognizer import Recognizer

    rec = Recognizer.load(model)

    def read(files: list[Path], numbers: bool) -> list[tuple[str, bool]]:
        if numbers:
            return [(r.number, r.refused or "?" in r.number) for r in map(rec.read, files)]
        preds = rec.predict_many(files)
        return [("" if isinstance(p, Exception) or p.digit is None else str(p.digit),
                 isinstance(p, Exception) or p.refused) for p in preds]
    return read


def tesseract():
    if shutil.which("tesseract") is None:
        return None

    def read(files: list[Path], numbers: bool) -> list[tuple[str, bool]]:
        out = []
        for f in files:
            res = subprocess.run(["tesseract", str(f), "stdout", "--psm", "7" if numbers else "10",
                                  *TESSERACT_DIGITS], capture_output=True, text=True)
            text = "".join(c for c in res.stdout if c.isdigit())
            out.append((text, text == ""))
        return out
    return read


def digit_recognizer_py(venv: Path | None):
    if venv is None or not (venv / "bin" / "python").exists():
        return None

    def read(files: list[Path], numbers: bool) -> list[tuple[str, bool]] | None:
        if numbers:
            return None  # it reads one digit per image
        res = subprocess.run([str(venv / "bin" / "python"), "-c", PEER_SCRIPT], input="\n".join(map(str, files)),
                             capture_output=True, text=True, cwd=tempfile.gettempdir())
        answers = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        if len(answers) != len(files):
            raise SystemExit(f"digit-recognizer-py failed: {res.stderr.strip()[-300:]}")
        return [(str(a.get("digit", "")), "digit" not in a) for a in answers]
    return read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--n", type=int, default=100, help="images per set")
    ap.add_argument("--model", default=None)
    ap.add_argument("--peer-venv", type=Path, default=None, help="the virtualenv holding digit-recognizer-py")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix=f"peers-{args.split}-"))
    sets = {**hand_sets(args.split, args.n), **presentation_sets(args.split, args.n)}
    for name, items in sets.items():
        write_set(out / name, items)
    tools = {"digits": ours(args.model), "Tesseract (digits whitelist)": tesseract(),
             "digit-recognizer-py": digit_recognizer_py(args.peer_venv)}
    missing = [name for name, read in tools.items() if read is None]
    tools = {name: read for name, read in tools.items() if read is not None}
    rows = []
    for name in sets:
        files = files_of(out / name)
        paths, labels = [f for f, _ in files], [label for _, label in files]
        numbers = any(len(label) > 1 for label in labels)
        row = [name, len(files)]
        for read in tools.values():
            answers = read(paths, numbers)
            row.append("-" if answers is None else round(score(answers, labels)[0] * 100, 1))
        rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
    header = ["set", "images", *(f"{t} %" for t in tools)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    if missing:
        print("not installed here: " + ", ".join(missing))
    if args.split == "test":
        from results import save

        save("peers", "digits beside Tesseract and digit-recognizer-py, on the same images (test seed)", header, rows,
             command=f"python benchmarks/peers.py --split test --n {args.n} --peer-venv VENV",
             notes="Score: the digit or number read exactly and not refused; for letters and not-digits, refused. "
                   "`-`: the tool has no number reader. " + (f"Not installed: {', '.join(missing)}." if missing
                                                                else ""))


if __name__ == "__main__":
    main()
