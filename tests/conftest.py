"""Shared fixtures: the real MNIST (fetched once into the user's cache) and small helpers.

Tiers (markers): `slow` needs real MNIST (a test that asks for the `mnist` fixture is `slow` automatically),
`smoke` runs the `digits` command, a server or a training run (seconds each), `reader` scores every presentation
against tests/reader_baseline.json, `network` reaches the package index, `browser` drives Chromium. `pytest --fast` runs the rest: unit tests, in about a minute on 2 cores;
`pytest -m smoke` the smoke tier; plain `pytest` (what CI runs) everything.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_FIXTURES = {"mnist", "mnist_dir"}
OUTSIDE_FAST_TIER = ("slow", "smoke", "network", "browser", "reader")
READER_TABLE = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the fast tier: unit tests only (no real MNIST, subprocesses, browser or network)")
    parser.addoption("--update-reader-baseline", action="store_true",
                     help="record the reader tier's scores and the reader's fingerprint (tests/test_reader.py)")


def pytest_terminal_summary(terminalreporter, config):
    """The reader tier's table: each set's score beside its recorded baseline."""
    rows = config.stash.get(READER_TABLE, [])
    if rows:
        terminalreporter.section("reader tier: % read right (refused, for `refuse`)")
        terminalreporter.write_line(f"{'set':<16}{'score':>8}{'baseline':>10}")
        for name, got, base in rows:
            terminalreporter.write_line(f"{name:<16}{got:>8.1f}{base if base is None else f'{base:.1f}':>10}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MNIST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--fast"):
        kept = [i for i in items if not any(i.get_closest_marker(m) for m in OUTSIDE_FAST_TIER)]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def mnist():
    from digit_recognizer.data import load_mnist

    return load_mnist(progress=False)


@pytest.fixture(scope="session")
def mnist_dir(mnist) -> Path:
    return mnist.source.data_dir


def read_right(preds: list, labels: list[int]) -> int:
    """How many of `Recognizer.predict_many`'s answers give their label and are not refused (an unreadable
    file comes back as an error, and is not read either)."""
    return sum(not isinstance(p, Exception) and not p.refused and p.digit == label for p, label in zip(preds, labels))


def run_digits(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `digits` CLI as a user would, in a subprocess."""
    cmd = [sys.executable, "-c", "from digit_recognizer.app.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory) -> Path:
    """A small data set in MNIST's layout (random pixels): the CLI runs on it with --no-verify, offline."""
    import numpy as np

    from digit_recognizer.data.formats import encode_idx

    d = tmp_path_factory.mktemp("fake-mnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 100)):
        (d / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        (d / f"{prefix}-labels-idx1-ubyte").write_bytes(encode_idx((np.arange(n) % 10).astype(np.uint8)))
    return d


@pytest.fixture
def skip_step(monkeypatch):
    """skip_step(name): the reader runs without one of its page steps (polarity, background, lines), or with
    `fn` in its place, for the rest of the test."""
    from digit_recognizer.inference.reader import pipeline

    def skip(name: str, fn=lambda x, params, seen: (x, {})) -> None:
        assert name in dict(pipeline.PAGE_STEPS), name
        monkeypatch.setattr(pipeline, "PAGE_STEPS", tuple((n, fn if n == name else f) for n, f in pipeline.PAGE_STEPS))

    return skip


def with_params(group: str, **values):
    """The reader's parameters with some values of one group changed."""
    from dataclasses import replace

    from digit_recognizer.inference.reader import PARAMS

    return replace(PARAMS, **{group: replace(getattr(PARAMS, group), **values)})


def holes(x, min_px: int = 2) -> int:
    """Paper regions of at least `min_px` that the strokes of a (28, 28) digit (ink bright) enclose: 0 in a 1, 1 in
    a 6, 2 in an 8. A region counts only where some of it is clearly paper (a fat marker's pinhole, thinned,
    leaves a mid-grey patch whose noise around the stroke level is not a hole). A measuring tool for tests."""
    import numpy as np

    from digit_recognizer.inference.reader import PARAMS
    from digit_recognizer.inference.reader.masks import components, is_ink

    padded = np.pad(np.asarray(x, np.float32), 1)
    labels, stats = components(~is_ink(padded, PARAMS.ink.inside), 4)
    clear = np.zeros(len(stats), bool)
    clear[labels[~is_ink(padded, PARAMS.ink.seen)]] = True
    return sum(1 for i in range(1, len(stats)) if i != labels[0, 0] and stats[i, 4] >= min_px and clear[i])
