"""Commands that read images: predict, read, trace."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ...errors import DigitsError, UsageError
from ...inference.device import resolve_device
from .common import (EXIT_ALL_FAILED, EXIT_SOME_FAILED, Device, MinConfidence, MinScore, ModelPath, app, echo_err,
                     load_recognizer, printable, shown_name)

def image_files(paths: Optional[List[Path]]) -> list[Path]:
    from ...inference.recognizer import IMAGE_SUFFIXES, expand_paths

    files = expand_paths(paths or [], lambda p, why: echo_err(f"warning: skipped {shown_name(p)}: {why}"))
    if not files and paths:
        raise DigitsError(f"no images in {', '.join(map(str, paths))} (looked for "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    if not files:
        raise UsageError("no images given (pass files or folders)")
    return files



def print_outcomes(outcomes, as_json: bool) -> None:
    """Print (file, (json dict, text line) or the DigitsError it raised) pairs as they come; a bad file gets an
    error line, not a stop."""
    failed = total = 0
    for f, outcome in outcomes:
        total += 1
        if isinstance(outcome, DigitsError):
            failed += 1
            if as_json:
                typer.echo(json.dumps({"file": shown_name(f), "error": shown_name(str(outcome))}))
            else:
                echo_err(f"error: {printable(str(outcome))}")
            continue
        obj, line = outcome
        typer.echo(json.dumps(obj) if as_json else printable(line))
    if failed:
        raise typer.Exit(EXIT_ALL_FAILED if failed == total else EXIT_SOME_FAILED)


def for_each_file(paths: Optional[List[Path]], as_json: bool, handle) -> None:
    """Run handle(file) -> (json dict, text line) on every image, printing as it goes."""
    def outcomes():
        for f in image_files(paths):
            try:
                yield f, handle(f)
            except DigitsError as e:
                yield f, e

    print_outcomes(outcomes(), as_json)


@app.command()
def predict(
    paths: Optional[List[Path]] = typer.Argument(None, help="Image files or folders."),
    model: Optional[str] = ModelPath, as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    min_confidence: Optional[float] = MinConfidence, min_score: Optional[float] = MinScore,
    kaggle: Optional[Path] = typer.Option(None, help="Kaggle test.csv to predict instead of images."),
    out: Optional[Path] = typer.Option(None, help="Submission CSV to write with --kaggle [default: "
                                                  "submission.csv]."),
    device: str = Device,
) -> None:
    """Read the single digit in each image (PNG, JPEG, BMP, TIFF, GIF), or a Kaggle test.csv."""
    dev = resolve_device(device)
    if kaggle is not None:
        from ...data import read_kaggle_csv, write_submission

        images, _ = read_kaggle_csv(kaggle)
        recognizer = load_recognizer(model, dev, min_confidence=min_confidence, min_score=min_score)
        preds = recognizer.predict_arrays(images)
        dest = out or Path("submission.csv")
        write_submission(dest, [p.digit for p in preds])
        typer.echo(f"wrote {len(preds):,} predictions to {dest}")
        return

    def shown(f: Path, p):
        if isinstance(p, DigitsError):
            return f, p
        if p.digit is None:  # refused before the model: a blank, several digits
            return f, (p.to_dict(file=shown_name(f)), f"{f}: REFUSED: {p.reason}")
        top = "  ".join(f"{d}: {c * 100:.1f}%" for d, c in p.top)
        flag = f"   REFUSED: {p.reason}" if p.refused else ""
        return f, (p.to_dict(file=shown_name(f)), f"{f}: {p.digit} ({p.confidence * 100:.1f}%)   top 3: {top}{flag}")

    files = image_files(paths)
    recognizer = load_recognizer(model, dev, min_confidence=min_confidence, min_score=min_score)
    # Files are decoded in a thread pool and predicted a batch at a time, printed in the order given.
    print_outcomes((shown(f, p) for f, p in recognizer.predict_stream(files)), as_json)


@app.command()
def read(paths: Optional[List[Path]] = typer.Argument(None, help="Image files or folders."),
         model: Optional[str] = ModelPath, as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
         min_confidence: Optional[float] = MinConfidence, min_score: Optional[float] = MinScore,
         device: str = Device) -> None:
    """Read whole numbers: every digit in each image, left to right."""
    recognizer = load_recognizer(model, resolve_device(device), min_confidence=min_confidence, min_score=min_score)

    def handle(f: Path):
        r = recognizer.read(f)
        confs = " ".join(f"{p.confidence:.2f}" for p in r.digits)
        flag = (f"   REFUSED: {r.reason}" if r.refused else "") + "".join(f"   {u}" for u in r.refusals)
        return r.to_dict(file=shown_name(f)), f"{f}: {r.number}   (confidences {confs}){flag}"

    for_each_file(paths, as_json, handle)


@app.command()
def trace(image: Path = typer.Argument(..., help="One image file."),
          out: Path = typer.Option(..., "--out", help="Folder for one PNG per step and index.html."),
          number: bool = typer.Option(False, "--number", help="Trace reading a whole number instead of one digit."),
          model: Optional[str] = ModelPath, device: str = Device) -> None:
    """Show what the reader does to an image, step by step: one PNG per step with its facts, and index.html."""
    from ..trace import write_trace

    recognizer = load_recognizer(model, resolve_device(device))
    steps, answer = recognizer.trace(image, number=number)
    page = write_trace(steps, answer.to_dict(file=shown_name(image)), out)
    typer.echo(f"{len(steps.stages)} steps: {' -> '.join(steps.steps)}"
               + (f" (refused at {steps.refused})" if steps.refused else ""))
    typer.echo(f"answer: {printable(json.dumps(answer.to_dict()))}")
    typer.echo(f"trace: {page}")
