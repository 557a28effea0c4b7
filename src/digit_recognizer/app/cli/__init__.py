"""The `digits` command line: data, train, evaluate, report, predict, read, trace, export, serve.

Each module registers its commands on `app` when imported; they are imported here in the order `digits --help`
lists them."""
from __future__ import annotations

import sys

from ...errors import DigitsError, UsageError, os_error_line
from . import training, reading, models  # noqa: F401,I001  (each registers its commands on app, in this order)
from .common import EXIT_ALL_FAILED, EXIT_USAGE, app, echo_err, printable
from .training import keep_freed_memory

__all__ = ["app", "main", "keep_freed_memory"]


def show_warnings_plainly() -> None:
    """The package's own warnings as 'warning: ...' lines, like its errors; others as Python shows them."""
    import warnings

    from ...errors import DigitsWarning

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
