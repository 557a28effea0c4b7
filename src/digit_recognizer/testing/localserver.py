"""`digits serve` in a child process on a free 127.0.0.1 port, for benchmarks and tests that need a real server."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Iterator

from ..errors import DigitsError

START_TIMEOUT = 30.0  # seconds for the child to import torch, load the model and answer /api/health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(*args: str, timeout: float = START_TIMEOUT) -> Iterator[str]:
    """Yield the server's URL once /api/health answers; stop the server on exit. args go to `digits serve`."""
    with local_server_process(*args, timeout=timeout) as (url, _):
        yield url


@contextlib.contextmanager
def local_server_process(*args: str, timeout: float = START_TIMEOUT) -> Iterator[tuple[str, subprocess.Popen]]:
    """As local_server, with the server's process (for its memory, say)."""
    port = free_port()
    # stderr to a file, not a pipe: a pipe nobody reads would block a long-running server once it fills.
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-c", "from digit_recognizer.app.cli import main; main()", "serve",
                             "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url + "/api/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    errors.seek(0)
                    raise DigitsError("digits serve exited: " + errors.read().decode(errors="replace"))
                if time.monotonic() > deadline:
                    raise DigitsError(f"digits serve did not answer within {timeout:.0f} s")
                time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        errors.close()
