"""Shared fixtures: the real MNIST (fetched once into the user's cache) and small helpers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist():
    from digit_recognizer.data import load_mnist

    return load_mnist(progress=False)


@pytest.fixture(scope="session")
def mnist_dir(mnist) -> Path:
    return mnist.source.data_dir


def run_digits(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `digits` CLI as a user would, in a subprocess."""
    cmd = [sys.executable, "-c", "from digit_recognizer.app.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
