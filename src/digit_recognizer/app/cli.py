"""The `digits` command line: data, train, evaluate, report, predict, export."""
from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from ..errors import DigitsError, UsageError, os_error_line
from ..inference.device import check_precision, resolve_device

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings=HELP_OPTIONS,
                  help="Handwritten-digit recognition: verified MNIST, fast CPU training, prediction on images.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, context_settings=HELP_OPTIONS,
                       help="Get and inspect MNIST (or another data set in its layout).")
app.add_typer(data_app, name="data")


def show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"digits {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                              help="Print the version and exit.")) -> None:
    """Handwritten-digit recognition: verified MNIST, fast CPU training, prediction on images."""


DataDir = typer.Option(None, "--data-dir", help="Data folder (default $DIGITS_DATA_DIR, else "
                                                "$XDG_CACHE_HOME/digits, else ~/.cache/digits).")
NoVerify = typer.Option(False, "--no-verify", help="Use files whose checksums are not MNIST's (another data set).")
ModelPath = typer.Option(None, "--model", metavar="PATH",
                         help="Run folder or model file, or 'latest' (runs/latest: the newest run); default: the "
                              "shipped model.")
SURROGATE_BASE = 0xDC00  # Python's surrogateescape maps an undecodable byte b to chr(0xDC00 + b)
# Exit codes: 0 done (a refused image is an answer); 1 an error (or every file failed); 2 a usage error (Click's,
# and UsageError); 3 some files could not be read, the others were answered; 130 interrupted; 143 terminated.
EXIT_ALL_FAILED, EXIT_USAGE, EXIT_SOME_FAILED = 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
Device = typer.Option("auto", "--device", metavar="DEVICE",
                      help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
MinConfidence = typer.Option(None, "--min-confidence", min=0.0, max=1.0,
                             help="Refuse predictions below this calibrated probability, 0 to 1 (default: the "
                                  "model's, fitted on validation).")


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
    """After a command that makes a model: the commands that use *that* model (`latest` where runs/latest now
    points to it; without --model, commands use the shipped model)."""
    from ..training.rundir import LATEST, RUNS_ROOT

    if model.parent.resolve() == RUNS_ROOT.resolve() and (RUNS_ROOT / LATEST).resolve() == model.resolve():
        model = Path(LATEST)
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


@contextmanager
def as_usage_error() -> Iterator[None]:
    """A DigitsError from checking the options given (a recipe, a precision) is a usage error (exit 2)."""
    try:
        yield
    except DigitsError as e:
        raise UsageError(str(e)) from None


class Terminated(Exception):
    """SIGTERM, raised where the program was, so that training stops as it does on Ctrl-C."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a scheduler, `kill`) raises Terminated instead of killing the process
    outright: the last checkpoint stays, the folder's lock is released and the resume hint is printed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    overwrite: bool = typer.Option(False, help="Start again in a run folder that holds an earlier run (its files "
                                               "are removed first)."),
    ensemble: int = typer.Option(1, help="Train N members (seeds S..S+N-1), averaged with test-time shifts."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta",
                                       help="Save the model to average 5 shifted views per image (5x the "
                                            "compute; default: the recipe's, on for best and for ensembles)."),
    report: bool = typer.Option(True, help="Evaluate on the test set and write the report after training."),
    data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify,
    progress: bool = typer.Option(True, help="Show progress bars (on a terminal)."),
    device: str = Device,
    redraw_every: Optional[int] = typer.Option(None, help="Epochs between fresh draws of the other hands' digits "
                                                          "and the outliers a recipe learns from (0: one draw "
                                                          "per run, the default)."),
    cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph",
                                              help="Replay each training step as one CUDA graph (CUDA, one "
                                                   "process, SGD recipes)."),
) -> None:
    """Train a model into a run folder: config, metrics, checkpoint, model, report."""
    keep_freed_memory()
    from ..training.recipes import DEFAULT_RECIPE, make_config, resume_config
    from ..training.rundir import RUNS_ROOT, RunDir, run_name

    if ensemble < 1:
        raise UsageError("--ensemble must be at least 1")
    if resume and overwrite:
        raise UsageError("--resume continues a run and --overwrite starts it again: choose one")
    given = dict(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                 limit=limit, tta=tta if ensemble == 1 else None, cuda_graph=cuda_graph, redraw_every=redraw_every)
    dev = resolve_device(device)
    if resume:
        if out is None:
            raise UsageError("--resume needs --out: the run folder to continue")
        cfg = resume_config(RunDir(out), recipe=recipe, **given)
    else:
        with as_usage_error():
            cfg = make_config(recipe or DEFAULT_RECIPE, dev.type, **given)
    run = RunDir(out or RUNS_ROOT / run_name(cfg.recipe, cfg.seed, ensemble))
    from ..training import distributed

    world = distributed.from_environment()  # torchrun's processes, or just this one
    dev = distributed.start(world, dev)
    from ..training.loop import check_cuda_graph

    check_cuda_graph(cfg, dev, world)
    if world.is_main and not (resume or overwrite):
        run.make_room(overwrite=False)  # a folder that holds a run is refused before the data loads
    ds = load_data(data_dir, no_verify, progress and world.is_main)  # after every option is checked
    command = invocation()
    try:
        with terminate_as_interrupt():
            if ensemble > 1:
                from ..training.ensemble import train_ensemble

                model_json, seconds = train_ensemble(cfg, ds.train, run.path, ensemble, resume=resume,
                                                     progress=progress, command=command, tta=tta is not False,
                                                     device=dev, world=world, overwrite=overwrite)
            else:
                from ..training.loop import train as run_training

                result = run_training(cfg, ds.train, run.path, resume=resume, progress=progress,
                                      command=command, device=dev, world=world, overwrite=overwrite)
                model_json, seconds = result.model_json, result.seconds
    except (KeyboardInterrupt, Terminated) as stop:
        again = f" --ensemble {ensemble}" if ensemble > 1 else ""
        if world.is_main:
            what = "terminated" if isinstance(stop, Terminated) else "interrupted"
            echo_err(f"{what}; continue with: digits train --resume{again} --out {run.path}")
        raise typer.Exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
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
def evaluate(model: Optional[str] = ModelPath,
             as_json: bool = typer.Option(False, "--json", help="One JSON object: accuracy, errors, per-class "
                                                                 "precision and recall, confusion matrix."),
             images: Optional[Path] = typer.Option(None, help="Folder of your own images with labels.csv (file,label)."),
             min_confidence: Optional[float] = MinConfidence,
             precision: str = typer.Option("auto", help="auto (int8 or bf16 for large batches where the CPU runs "
                                           "them natively), fp32, bf16 or int8."),
             data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify, device: str = Device) -> None:
    """Test accuracy, per-class precision and recall, and the confusion matrix; or accuracy on --images."""
    from ..inference.evaluate import evaluate as run_eval
    from ..inference.evaluate import evaluate_folder

    with as_usage_error():
        precision = check_precision(precision)
    dev = resolve_device(device)
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

    files = expand_paths(paths or [], lambda p, why: echo_err(f"warning: skipped {shown_name(p)}: {why}"))
    if not files and paths:
        raise DigitsError(f"no images in {', '.join(map(str, paths))} (looked for "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    if not files:
        raise UsageError("no images given (pass files or folders)")
    return files


def shown_name(path: Path | str) -> str:
    """A file name as `ls -b` shows it: bytes that are not UTF-8 (Python holds them as surrogate escapes) as
    octal escapes, \\303\\274, instead of \\udcc3\\udcbc."""
    return "".join(f"\\{ord(c) - SURROGATE_BASE:03o}" if SURROGATE_BASE <= ord(c) <= SURROGATE_BASE + 0xFF
                   else c for c in str(path))


def printable(line: str) -> str:
    """A text line with control characters escaped (a file name with a newline in it stays on its line) and
    undecodable bytes of file names as `ls -b` shows them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown_name(line))


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
    min_confidence: Optional[float] = MinConfidence,
    kaggle: Optional[Path] = typer.Option(None, help="Kaggle test.csv to predict instead of images."),
    out: Optional[Path] = typer.Option(None, help="Submission CSV to write with --kaggle [default: "
                                                  "submission.csv]."),
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
        if p.digit is None:  # refused before the model: a blank, several digits
            return f, (p.to_dict(file=shown_name(f)), f"{f}: REFUSED: {p.reason}")
        top = "  ".join(f"{d}: {c * 100:.1f}%" for d, c in p.top)
        flag = f"   REFUSED: {p.reason}" if p.refused else ""
        return f, (p.to_dict(file=shown_name(f)), f"{f}: {p.digit} ({p.confidence * 100:.1f}%)   top 3: {top}{flag}")

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
        flag = f"   REFUSED: {r.reason}" if r.refused else ""
        return r.to_dict(file=shown_name(f)), f"{f}: {r.number}   (confidences {confs}){flag}"

    for_each_file(paths, as_json, handle)


@app.command()
def trace(image: Path = typer.Argument(..., help="One image file."),
          out: Path = typer.Option(..., "--out", help="Folder for one PNG per step and index.html."),
          number: bool = typer.Option(False, "--number", help="Trace reading a whole number instead of one digit."),
          model: Optional[str] = ModelPath, device: str = Device) -> None:
    """Show what the reader does to an image, step by step: one PNG per step with its facts, and index.html."""
    from .trace import write_trace

    recognizer = load_recognizer(model, resolve_device(device))
    steps, answer = recognizer.trace(image, number=number)
    page = write_trace(steps, answer.to_dict(file=shown_name(image)), out)
    typer.echo(f"{len(steps.stages)} steps: {' -> '.join(steps.steps)}"
               + (f" (refused at {steps.refused})" if steps.refused else ""))
    typer.echo(f"answer: {printable(json.dumps(answer.to_dict()))}")
    typer.echo(f"trace: {page}")


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
          port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port)."),
          model: Optional[str] = ModelPath,
          max_bytes: int = typer.Option(10 * 1024 * 1024, min=1, help="Largest request body accepted (bytes)."),
          device: str = Device,
          workers: int = typer.Option(1, help="Worker processes sharing the port, each with its own copy of the "
                                               "model (uvicorn's workers)."),
          allow_origin: List[str] = typer.Option(
              [], metavar="ORIGIN", help="A web page origin (https://example.org) whose scripts may call the API; "
                                         "repeat for more. Others are refused.")) -> None:
    """HTTP API and a page at / where you draw a digit: POST /api/predict (one digit per image or pixel array),
    POST /api/read (whole numbers), GET /api/health, GET /api/model; the API's documentation at /docs."""
    require_extra("serve", ("fastapi", "uvicorn", "multipart", "fastapi_offline"))
    from .serve import ServeSettings, serve as run_server

    resolve_device(device)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    for origin in allow_origin:
        if origin != "null" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise UsageError(f"--allow-origin {origin!r}: expected scheme://host[:port], like https://example.org")
    check_listen(host, port)
    run_server(host, port, ServeSettings(model_in_use(model), max_bytes, device, tuple(allow_origin)), workers)


def check_listen(host: str, port: int) -> None:
    """That this machine can listen on host:port, before the model loads: a bad address is a usage error, a
    port in use one line (uvicorn would log it and exit 3, which here means "some files failed")."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"--host {host}: not an address to listen on ({getattr(e, 'strerror', None) or e})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as e:
            raise DigitsError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


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
    except UsageError as e:
        echo_err(f"error: {e}")
        sys.exit(EXIT_USAGE)
    except DigitsError as e:
        echo_err(f"error: {e}")
        sys.exit(EXIT_ALL_FAILED)
    except OSError as e:  # a full disk, a read-only folder, a permission: one line naming the path
        echo_err(f"error: {printable(os_error_line(e))}")
        sys.exit(EXIT_ALL_FAILED)
