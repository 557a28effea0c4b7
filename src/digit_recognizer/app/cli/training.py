"""Commands that make and measure models: data, train, evaluate, report."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from ...errors import UsageError
from ...inference.device import check_precision, resolve_device
from .common import (EXIT_INTERRUPTED, EXIT_TERMINATED, DataDir, Device, MinConfidence, MinScore, ModelPath, NoVerify,
                     app, as_usage_error, data_app, echo_err, echo_use_it, invocation, load_data, load_recognizer)

@data_app.command("fetch")
def data_fetch(data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify) -> None:
    """Make sure the four MNIST files are in the data folder, verified against MNIST's MD5s."""
    from ...data import MNIST_FILES, fetch_mnist

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
    cascade: Optional[float] = typer.Option(None, help="The first member (of an --ensemble, or the model with "
                                                       "--tta) answers alone, from one view, where its "
                                                       "calibrated confidence reaches this, 0 to 1; every "
                                                       "member and view only below it."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta",
                                       help="Save the model to average 5 shifted views per image (5x the "
                                            "compute; default: the recipe's, on for best and for ensembles)."),
    report: bool = typer.Option(True, help="Evaluate on the test set and write the report after training."),
    data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify,
    progress: bool = typer.Option(True, help="Show progress bars (on a terminal)."),
    device: str = Device,
    redraw_every: Optional[int] = typer.Option(None, help="Epochs between fresh draws of the other hands' digits "
                                                          "and the outliers a recipe learns from (0: one draw "
                                                          "per run; default: the recipe's, 6 for best)."),
    cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph",
                                              help="Replay each training step as one CUDA graph (default: "
                                                   "wherever one can run: one process on CUDA, SGD)."),
) -> None:
    """Train a model into a run folder: config, metrics, checkpoint, model, report."""
    keep_freed_memory()
    from ...training.recipes import DEFAULT_RECIPE, make_config, resume_config
    from ...training.rundir import RUNS_ROOT, RunDir, run_name

    if ensemble < 1:
        raise UsageError("--ensemble must be at least 1")
    if resume and overwrite:
        raise UsageError("--resume continues a run and --overwrite starts it again: choose one")
    given = dict(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                 limit=limit, tta=tta if ensemble == 1 else None, cuda_graph=cuda_graph, redraw_every=redraw_every,
                 cascade=cascade if ensemble == 1 else None)
    if ensemble > 1 and cascade is not None and not 0 < cascade <= 1:
        raise UsageError("--cascade needs a confidence above 0 and at most 1")
    dev = resolve_device(device)
    if resume:
        if out is None:
            raise UsageError("--resume needs --out: the run folder to continue")
        cfg = resume_config(RunDir(out), recipe=recipe, **given)
    else:
        with as_usage_error():
            cfg = make_config(recipe or DEFAULT_RECIPE, dev.type, **given)
    run = RunDir(out or RUNS_ROOT / run_name(cfg.recipe, cfg.seed, ensemble))
    from ...training import distributed

    world = distributed.from_environment()  # torchrun's processes, or just this one
    dev = distributed.start(world, dev)
    from ...training.loop import cuda_graph_for

    cuda_graph_for(cfg, dev, world)  # --cuda-graph where no graph can run: refused before the data loads
    if world.is_main and not (resume or overwrite):
        run.make_room(overwrite=False)  # a folder that holds a run is refused before the data loads
    ds = load_data(data_dir, no_verify, progress and world.is_main)  # after every option is checked
    command = invocation()
    try:
        with terminate_as_interrupt():
            if ensemble > 1:
                from ...training.ensemble import train_ensemble

                model_json, seconds = train_ensemble(cfg, ds.train, run.path, ensemble, resume=resume,
                                                     progress=progress, command=command, tta=tta is not False,
                                                     device=dev, world=world, overwrite=overwrite,
                                                     cascade=cascade)
            else:
                from ...training.loop import train as run_training

                result = run_training(cfg, ds.train, run.path, resume=resume, progress=progress,
                                      command=command, device=dev, world=world, overwrite=overwrite)
                model_json, seconds = result.model_json, result.seconds
    except (KeyboardInterrupt, Terminated) as stop:
        again = (f" --ensemble {ensemble}" if ensemble > 1 else "") + (f" --cascade {cascade}" if cascade else "")
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
        from ..report import report_run

        started = time.perf_counter()
        page, _ = report_run(run.path, ds.train, ds.test,
                             on_result=lambda ev: typer.echo(f"test accuracy: {ev.accuracy * 100:.2f}%"))
        typer.echo(f"report: {page} ({time.perf_counter() - started:.1f} s)")
    echo_use_it(run.path)


@app.command()
def evaluate(model: Optional[str] = ModelPath,
             as_json: bool = typer.Option(False, "--json", help="One JSON object: accuracy, errors, per-class "
                                                                 "precision and recall, confusion matrix."),
             images: Optional[Path] = typer.Option(None, help="Folder of your own images with labels.csv (file,label)."),
             min_confidence: Optional[float] = MinConfidence, min_score: Optional[float] = MinScore,
             precision: str = typer.Option("auto", help="auto (int8 or bf16 for large batches where the CPU runs "
                                           "them natively), fp32, bf16 or int8."),
             data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify, device: str = Device) -> None:
    """Test accuracy, per-class precision and recall, and the confusion matrix; or accuracy on --images."""
    from ...inference.evaluate import evaluate as run_eval
    from ...inference.evaluate import evaluate_folder

    with as_usage_error():
        precision = check_precision(precision)
    dev = resolve_device(device)
    recognizer = load_recognizer(model, dev, min_confidence=min_confidence, min_score=min_score, precision=precision)
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
    from ..report import report_run

    ds = load_data(data_dir, no_verify)
    page, ev = report_run(run, ds.train, ds.test)
    typer.echo(f"test accuracy: {ev.accuracy * 100:.2f}%  report: {page}")

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
