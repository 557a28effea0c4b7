"""What the `digits` commands share: the Typer app, the options several commands take, exit codes, and how a
model, the data and a file name are named to the user."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from ...errors import DigitsError, UsageError

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings=HELP_OPTIONS,
                  help="Handwritten-digit recognition: verified MNIST, fast CPU training, prediction on images.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, context_settings=HELP_OPTIONS,
                       help="Get and inspect MNIST (or another data set in its layout).")
app.add_typer(data_app, name="data")


def show_version(value: bool) -> None:
    if value:
        from ... import __version__

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
MinScore = typer.Option(None, "--min-score",
                        help="Refuse marks whose digit score is below this as not a digit (default: the model's, "
                             "fitted on validation; lower answers more faint and broken digits, and more letters).")


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
    from ...models.modelfile import resolve
    from ...training.rundir import LATEST, RUNS_ROOT

    if model == LATEST and not Path(LATEST).exists():
        if not (RUNS_ROOT / LATEST).exists():
            raise DigitsError(f"--model latest: no {RUNS_ROOT / LATEST} here (train a model first, or give a path)")
        model = str(RUNS_ROOT / LATEST)
    path = resolve(model)
    echo_err(f"model: {path if model is not None else 'the shipped model (' + str(path) + ')'}")
    return str(path)


def load_recognizer(model: Optional[str], device, **options):
    """The Recognizer a command uses, on an already resolved device, named on stderr (see model_in_use)."""
    from ...inference.recognizer import Recognizer

    return Recognizer.load(model_in_use(model), device=device, **options)


def invocation() -> str:
    """The command as the user typed it, for the model file's record."""
    return " ".join(["digits", *sys.argv[1:]])


def echo_use_it(model: Path) -> None:
    """After a command that makes a model: the commands that use *that* model (`latest` where runs/latest now
    points to it; without --model, commands use the shipped model)."""
    from ...training.rundir import LATEST, RUNS_ROOT

    if model.parent.resolve() == RUNS_ROOT.resolve() and (RUNS_ROOT / LATEST).resolve() == model.resolve():
        model = Path(LATEST)
    typer.echo(f"use it: digits evaluate --model {model}   digits predict --model {model} IMAGE   "
               f"digits serve --model {model}")


def load_data(data_dir: Optional[Path], no_verify: bool, progress: bool = True):
    from ...data import load_mnist

    return load_mnist(data_dir, verify=not no_verify, progress=progress)

@contextmanager
def as_usage_error() -> Iterator[None]:
    """A DigitsError from checking the options given (a recipe, a precision) is a usage error (exit 2)."""
    try:
        yield
    except DigitsError as e:
        raise UsageError(str(e)) from None


def shown_name(path: Path | str) -> str:
    """A file name as `ls -b` shows it: bytes that are not UTF-8 (Python holds them as surrogate escapes) as
    octal escapes, \\303\\274, instead of \\udcc3\\udcbc."""
    return "".join(f"\\{ord(c) - SURROGATE_BASE:03o}" if SURROGATE_BASE <= ord(c) <= SURROGATE_BASE + 0xFF
                   else c for c in str(path))


def printable(line: str) -> str:
    """A text line with control characters escaped (a file name with a newline in it stays on its line) and
    undecodable bytes of file names as `ls -b` shows them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown_name(line))
