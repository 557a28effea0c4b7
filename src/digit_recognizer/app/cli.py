"""The `digits` command line: data, train, evaluate, report, predict, export."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import DigitsError
from ..inference.device import check_precision, resolve_device

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Handwritten-digit recognition: verified MNIST, fast CPU training, prediction on images.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="Get and inspect MNIST (or another data set in its layout).")
app.add_typer(data_app, name="data")

DataDir = typer.Option(None, "--data-dir", help="Data folder (default $DIGITS_DATA_DIR or ~/.cache/digits).")
NoVerify = typer.Option(False, "--no-verify", help="Use files whose checksums are not MNIST's (another data set).")
ModelPath = typer.Option(None, "--model", metavar="PATH",
                         help="Run folder or model file, or 'latest' (runs/latest: the newest run); default: the "
                              "shipped model.")
# Exit codes: 0 done; 1 an error (or every file failed); 2 a usage error (Click's); 3 some files failed, the
# others were answered; 130 interrupted.
EXIT_ALL_FAILED, EXIT_SOME_FAILED = 1, 3
Device = typer.Option("auto", "--device", metavar="DEVICE",
                      help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
MinConfidence = typer.Option(None, "--min-confidence",
                             help="Refuse predictions below this calibrated probability (default: the model's, 0.5).")


def echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


def require_extra(extra: str, modules: tuple[str, ...]) -> None:
    """A one-line error naming the optional extra to install when one of its packages is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise DigitsError(f"this command needs the '{extra}' extra ({', '.join(missing)} not installed): "
                          f"pip install 'digit-recognizer[{extra}]'")


def model_in_use(model: Optional[str]) -> str:
    """The model a command uses ('latest' is runs/latest), named in one line on stderr."""
    from ..models.modelfile import resolve
    from ..training.rundir import LATEST, RUNS_ROOT

    if model == LATEST and not Path(LATEST).exists():
        if not (RUNS_ROOT / LATEST).exists():
            raise DigitsError(f"--model latest: no {RUNS_ROOT / LATEST} here (train a model first, or give a path)")
        model = str(RUNS_ROOT / LATEST)
    path = resolve(model)
    echo_err(f"model: {path if model is not None else 'the shipped model (' + str(path) + ')'}")
    return str(path)


def load_recognizer(model: Optional[str], device, **options):
    """The Recognizer a command uses, on an already resolved device, named on stderr (see model_in_use)."""
    from ..inference.recognizer import Recognizer

    return Recognizer.load(model_in_use(model), device=device, **options)


def invocation() -> str:
    """The command as the user typed it, for the model file's record."""
    return " ".join(["digits", *sys.argv[1:]])


def echo_use_it(model: Path) -> None:
    """After a command that makes a model: the commands that use *that* model."""
    typer.echo(f"use it: digits evaluate --model {model}   digits predict --model {model} IMAGE   "
               f"digits serve --model {model}")


def load_data(data_dir: Optional[Path], no_verify: bool, progress: bool = True):
    from ..data import load_mnist

    return load_mnist(data_dir, verify=not no_verify, progress=progress)


@data_app.command("fetch")
def data_fetch(data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify) -> None:
    """Make sure the four MNIST files are in the data folder, verified against MNIST's MD5s."""
    from ..data import MNIST_FILES, fetch_mnist

    report = fetch_mnist(data_dir, verify=not no_verify)
    typer.echo(f"data folder: {report.data_dir}")
    typer.echo(f"source: {report.source}")
    for name in MNIST_FILES:
        ok = "verified (MD5 matches MNIST)" if report.verified[name] else "NOT verified (--no-verify)"
        typer.echo(f"  {name}: {ok}")


@data_app.command("info")
def data_info(data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify) -> None:
    """Where the files are, their sizes, and class counts per split."""
    ds = load_data(data_dir, no_verify)
    typer.echo(f"data folder: {ds.source.data_dir}")
    for name, path in ds.source.paths.items():
        typer.echo(f"  {path}  {path.stat().st_size:,} bytes  {'verified' if ds.source.verified[name] else 'unverified'}")
    for split_name, split in (("train", ds.train), ("test", ds.test)):
        counts = " ".join(f"{d}:{c}" for d, c in enumerate(split.class_counts()))
        typer.echo(f"{split_name}: {len(split):,} images  {counts}")


@app.command()
def train(
    recipe: Optional[str] = typer.Option(None, help="fast (default), tutorial, best, or marker (the reader of fat markers' digits)."),
    model: Optional[str] = typer.Option(None, "--model", help="Architecture name (default: the recipe's)."),
    epochs: Optional[int] = typer.Option(None, help="Override the recipe's epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override the recipe's batch size."),
    lr: Optional[float] = typer.Option(None, help="Override the recipe's (peak) learning rate."),
    seed: Optional[int] = typer.Option(None, help="Seed for initialisation, shuffling and augmentation [default: 0]."),
    precision: Optional[str] = typer.Option(None, help="auto (bf16 where the CPU has native bf16), fp32 or bf16."),
    limit: Optional[int] = typer.Option(None, help="Smoke run: train on the first N training images only."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/<recipe>-seed<seed>)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out from its last checkpoint, with "
                                            "the settings it was started with."),
    ensemble: int = typer.Option(1, help="Train N members (seeds S..S+N-1), averaged with test-time shifts."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta",
                                       help="Save the model to average 5 shifted views per image (5x the "
                                            "compute; default: the recipe's, on for best and for ensembles)."),
    report: bool = typer.Option(True, help="Evaluate on the test set and write the report after training."),
    data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify,
    progress: bool = typer.Option(True, help="Show progress bars (on a terminal)."),
    device: str = Device,
    cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph",
                                              help="Replay each training step as one CUDA graph (CUDA, one "
                                                   "process, SGD recipes)."),
) -> None:
    """Train a model into a run folder: config, metrics, checkpoint, model, report."""
    keep_freed_memory()
    from ..training.recipes import DEFAULT_RECIPE, make_config, resume_config
    from ..training.rundir import RUNS_ROOT, RunDir, run_name

    if ensemble < 1:
        raise DigitsError("--ensemble must be at least 1")
    given = dict(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                 limit=limit, tta=tta if ensemble == 1 else None, cuda_graph=cuda_graph)
    dev = resolve_device(device)
    if resume:
        if out is None:
            raise DigitsError("--resume needs --out: the run folder to continue")
        cfg = resume_config(RunDir(out), recipe=recipe, **given)
    else:
        cfg = make_config(recipe or DEFAULT_RECIPE, dev.type, **given)
    run = RunDir(out or RUNS_ROOT / run_name(cfg.recipe, cfg.seed, ensemble))
    from ..training import distributed

    world = distributed.from_environment()  # torchrun's processes, or just this one
    dev = distributed.start(world, dev)
    from ..training.loop import check_cuda_graph

    check_cuda_graph(cfg, dev, world)
    ds = load_data(data_dir, no_verify, progress and world.is_main)  # after every option is checked
    command = invocation()
    try:
        if ensemble > 1:
            from ..training.ensemble import train_ensemble

            model_json, seconds = train_ensemble(cfg, ds.train, run.path, ensemble, resume=resume,
                                                 progress=progress, command=command, tta=tta is not False,
                                                 device=dev, world=world)
        else:
            from ..training.loop import train as run_training

            result = run_training(cfg, ds.train, run.path, resume=resume, progress=progress, command=command,
                                  device=dev, world=world)
            model_json, seconds = result.model_json, result.seconds
    except KeyboardInterrupt:
        again = f" --ensemble {ensemble}" if ensemble > 1 else ""
        if world.is_main:
            echo_err(f"interrupted; continue with: digits train --resume{again} --out {run.path}")
        raise typer.Exit(130)
    finally:
        distributed.stop(world)
    if not world.is_main:
        return
    run.mark_latest()
    typer.echo(f"trained in {seconds:.1f} s; model: {model_json}")
    if report:
        from .report import report_run

        page, _ = report_run(run.path, ds.train, ds.test,
                             on_result=lambda ev: typer.echo(f"test accuracy: {ev.accuracy * 100:.2f}%"))
        typer.echo(f"report: {page}")
    echo_use_it(run.path)


@app.command()
def evaluate(model: Optional[str] = ModelPath, as_json: bool = typer.Option(False, "--json"),
             images: Optional[Path] = typer.Option(None, help="Folder of your own images with labels.csv (file,label)."),
             min_confidence: Optional[float] = MinConfidence,
             precision: str = typer.Option("auto", help="auto (int8 or bf16 for large batches where the CPU runs "
                                           "them natively), fp32, bf16 or int8."),
             data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify, device: str = Device) -> None:
    """Test accuracy, per-class precision and recall, and the confusion matrix; or accuracy on --images."""
    from ..inference.evaluate import evaluate as run_eval
    from ..inference.evaluate import evaluate_folder

    dev, precision = resolve_device(device), check_precision(precision)
    recognizer = load_recognizer(model, dev, min_confidence=min_confidence, precision=precision)
    if images is not None:
        res = evaluate_folder(recognizer, images)
        if as_json:
            typer.echo(json.dumps(res))
            return
        typer.echo(f"{res['folder']}: {res['n']} images ({res['mode']}), accuracy {res['accuracy'] * 100:.2f}%, "
                   f"refused {res['refused']}, unreadable {res['unreadable']}")
        for m in res["mistakes"][:10]:
            said = m.get("error") or ("refused" if m["refused"] else f"read {m['answer'] or 'nothing'}")
            typer.echo(f"  {m['file']}: label {m['label'] or '(none: should be refused)'}, {said}")
        return
    ds = load_data(data_dir, no_verify, progress=not as_json)
    result = run_eval(recognizer, ds.test).to_dict()
    if as_json:
        typer.echo(json.dumps({"model": str(recognizer.loaded.path), **result}))
        return
    typer.echo(f"model: {recognizer.loaded.path}")
    typer.echo(f"test accuracy: {result['accuracy'] * 100:.2f}% ({result['errors']} errors in {result['n']:,})")
    typer.echo("digit  precision  recall  support")
    for c in result["per_class"]:
        typer.echo(f"{c['digit']:>5}  {c['precision']:>9.4f}  {c['recall']:>6.4f}  {c['support']:>7}")
    typer.echo("confusion matrix (rows: true, columns: predicted)")
    for d, row in enumerate(result["confusion_matrix"]):
        typer.echo(f"{d}: " + " ".join(f"{v:>5}" for v in row))


@app.command()
def report(run: Path = typer.Argument(..., help="Run folder."), data_dir: Optional[Path] = DataDir,
           no_verify: bool = NoVerify) -> None:
    """Rebuild a run's report (pictures and report.html)."""
    from .report import report_run

    ds = load_data(data_dir, no_verify)
    page, ev = report_run(run, ds.train, ds.test)
    typer.echo(f"test accuracy: {ev.accuracy * 100:.2f}%  report: {page}")


def image_files(paths: Optional[List[Path]]) -> list[Path]:
    from ..inference.recognizer import IMAGE_SUFFIXES, expand_paths

    files = expand_paths(paths or [])
    if not files and paths:
        raise DigitsError(f"no images in {', '.join(map(str, paths))} (looked for "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    if not files:
        raise DigitsError("no images given (pass files or folders)")
    return files


def printable(line: str) -> str:
    """A text line with control characters escaped: a file name with a newline in it stays on its line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


def print_outcomes(outcomes, as_json: bool) -> None:
    """Print (file, (json dict, text line) or the DigitsError it raised) pairs as they come; a bad file gets an
    error line, not a stop."""
    failed = total = 0
    for f, outcome in outcomes:
        total += 1
        if isinstance(outcome, DigitsError):
            failed += 1
            if as_json:
                typer.echo(json.dumps({"file": str(f), "error": str(outcome)}))
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
    min_confidence: Optional[float] = MinConfidence,
    kaggle: Optional[Path] = typer.Option(None, help="Kaggle test.csv to predict instead of images."),
    out: Optional[Path] = typer.Option(None, help="Submission CSV to write with --kaggle."),
    device: str = Device,
) -> None:
    """Read the single digit in each image (PNG, JPEG, BMP, TIFF, GIF), or a Kaggle test.csv."""
    dev = resolve_device(device)
    if kaggle is not None:
        from ..data import read_kaggle_csv, write_submission

        images, _ = read_kaggle_csv(kaggle)
        recognizer = load_recognizer(model, dev, min_confidence=min_confidence)
        preds = recognizer.predict_arrays(images)
        dest = out or Path("submission.csv")
        write_submission(dest, [p.digit for p in preds])
        typer.echo(f"wrote {len(preds):,} predictions to {dest}")
        return

    def shown(f: Path, p):
        if isinstance(p, DigitsError):
            return f, p
        top = "  ".join(f"{d}: {c * 100:.1f}%" for d, c in p.top)
        flag = f"   REFUSED: {p.reason}" if p.refused else ""
        return f, (p.to_dict(file=str(f)), f"{f}: {p.digit} ({p.confidence * 100:.1f}%)   top 3: {top}{flag}")

    files = image_files(paths)
    recognizer = load_recognizer(model, dev, min_confidence=min_confidence)
    # Files are decoded in a thread pool and predicted a batch at a time, printed in the order given.
    print_outcomes((shown(f, p) for f, p in recognizer.predict_stream(files)), as_json)


@app.command()
def read(paths: Optional[List[Path]] = typer.Argument(None, help="Image files or folders."),
         model: Optional[str] = ModelPath, as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
         min_confidence: Optional[float] = MinConfidence, device: str = Device) -> None:
    """Read whole numbers: every digit in each image, left to right."""
    recognizer = load_recognizer(model, resolve_device(device), min_confidence=min_confidence)

    def handle(f: Path):
        r = recognizer.read(f)
        confs = " ".join(f"{p.confidence:.2f}" for p in r.digits)
        return r.to_dict(file=str(f)), f"{f}: {r.number}   (confidences {confs})"

    for_each_file(paths, as_json, handle)


@app.command()
def export(onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write."), model: Optional[str] = ModelPath,
           device: str = Device,
           marker_reader: bool = typer.Option(False, "--marker-reader",
                                              help="Export the model's marker reader, which reads the digits "
                                                   "whose strokes preprocessing thinned as a fat marker's.")
           ) -> None:
    """Export a model to ONNX (dynamic batch; float pixels 0..255 in, logits out)."""
    require_extra("onnx", ("onnx",))
    from ..inference.export import export_onnx
    from ..models.modelfile import load_model

    dev = resolve_device(device)
    typer.echo(f"wrote {export_onnx(load_model(model_in_use(model)), onnx, dev, marker_reader)}")


@app.command("attach-marker")
def attach_marker(marker: str = typer.Argument(..., metavar="MARKER", help="The marker reader: a model trained "
                                                "with --recipe marker (run folder or model file)."),
                  model: str = typer.Option(..., "--model", metavar="PATH",
                                            help="The model to give it (run folder or model file; rewritten).")
                  ) -> None:
    """Give a model a marker reader: the digits whose strokes the reader thins as a fat marker's go to it."""
    from ..models.modelfile import attach_marker_reader

    typer.echo(f"{attach_marker_reader(model_in_use(model), marker)} now reads fat markers' digits with {marker}")


@app.command("import-keras")
def import_keras(h5: Path = typer.Argument(..., metavar="MODEL.h5", help="The tutorial's cnn_model.h5."),
                 out: Path = typer.Option(..., "--out", help="Model folder to write."),
                 data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify) -> None:
    """Import the tutorial's Keras model (weights only; no TensorFlow needed), calibrated on the last 6,000
    training images (those Keras' validation_split=0.1 holds out)."""
    require_extra("keras", ("h5py",))
    from ..models.keras import load_keras_tutorial
    from ..training.keras_import import import_keras as run_import

    net, source = load_keras_tutorial(h5)  # a bad file is reported before any data loads
    ds = load_data(data_dir, no_verify)
    model_json = run_import(net, source, out, ds.train, command=invocation())
    from ..models.modelfile import read_json

    acc = read_json(model_json)["metrics"]["val_accuracy"]
    typer.echo(f"imported {h5} -> {model_json} (accuracy on the last 6,000 training images: {acc * 100:.2f}%)")
    echo_use_it(out)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="TCP port."), model: Optional[str] = ModelPath,
          max_bytes: int = typer.Option(10 * 1024 * 1024, help="Largest request body accepted (bytes)."),
          device: str = Device,
          workers: int = typer.Option(1, help="Worker processes sharing the port, each with its own copy of the "
                                               "model (uvicorn's workers)."),
          allow_origin: List[str] = typer.Option(
              [], metavar="ORIGIN", help="A web page origin (https://example.org) whose scripts may call the API; "
                                         "repeat for more. Others are refused.")) -> None:
    """HTTP API (/api/predict, /docs) and a page at / where you draw a digit."""
    require_extra("serve", ("fastapi", "uvicorn", "multipart", "fastapi_offline"))
    from .serve import ServeSettings, serve as run_server

    resolve_device(device)
    if workers < 1:
        raise DigitsError("--workers must be at least 1")
    for origin in allow_origin:
        if origin != "null" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise DigitsError(f"--allow-origin {origin!r}: expected scheme://host[:port], like https://example.org")
    run_server(host, port, ServeSettings(model_in_use(model), max_bytes, device, tuple(allow_origin)), workers)


# glibc mallopt parameters (malloc.h) and the values the CLI sets: 64 MiB / 256 MiB.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES = 64 << 20, 256 << 20


def keep_freed_memory() -> None:
    """Let glibc reuse freed heap memory for the next step's tensors instead of fresh, zeroed mmap pages.

    A training step allocates and frees the same few-MB activations every time; with glibc's defaults they
    come back as new pages. Measured here (whole process, 1,700 steps): page faults per step fell from
    820-1,080 to 180 (fast net, batch 64) and from 186 to 36 (tutorial CNN, batch 32). `digits train` owns
    its process, so it sets this (not the server, whose threads would each keep freed memory); the Python
    API leaves the allocator to its caller.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass  # not glibc after all: nothing to tune


def show_warnings_plainly() -> None:
    """The package's own warnings as 'warning: ...' lines, like its errors; others as Python shows them."""
    import warnings

    from ..errors import DigitsWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DigitsWarning):
            echo_err(f"warning: {message}")
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main() -> None:
    show_warnings_plainly()
    try:
        app()
    except DigitsError as e:
        echo_err(f"error: {e}")
        sys.exit(1)
