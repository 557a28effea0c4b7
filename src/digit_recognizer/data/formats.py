"""Readers and writers for the formats MNIST-like data comes in: IDX (raw or gzip), Keras npz, Kaggle CSV.

Every reader validates what it reads and raises DigitsError naming the file and the problem.
"""
from __future__ import annotations

import csv
import glob
import io
import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..constants import IMAGE_SIZE, NUM_CLASSES
from ..errors import DigitsError, TooLarge

# IDX type codes (third byte of the magic number) -> numpy big-endian dtype.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
KAGGLE_PIXELS = IMAGE_SIZE * IMAGE_SIZE
# Data files (IDX, npz, CSV), compressed or not: MNIST's largest is 47 MB unpacked; EMNIST-sized sets fit too.
MAX_DATA_FILE_BYTES = 2 << 30
WEB_ADDRESS = re.compile(r"^(https?|ftp):/", re.IGNORECASE)  # a URL, as a path (Path keeps one of its two slashes)


def read_regular_file(path: str | Path, limit: int, name: str | None = None) -> bytes:
    """A regular file's bytes, at most `limit` of them. A pipe, a device (/dev/zero) or a socket is refused
    before it is opened: its size reads as 0, so only its type tells that reading it may never end."""
    name = name or str(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise DigitsError(f"{name}: is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise DigitsError(f"{name}: not a regular file (a pipe, device or socket)")
        if st.st_size > limit:
            raise TooLarge(f"{name}: file of {st.st_size:,} bytes exceeds the {limit:,}-byte limit")
        with open(path, "rb") as f:
            data = f.read(limit + 1)  # the file may have grown since the stat
    except FileNotFoundError:
        if Path(path).is_symlink():
            raise DigitsError(f"{name}: a link to {os.readlink(path)}, which does not exist") from None
        if WEB_ADDRESS.match(str(path)):
            raise DigitsError(f"{name}: a web address, not a file: download the image, then give its file") from None
        raise DigitsError(f"{name}: file not found") from None
    except OSError as e:
        raise DigitsError(f"{name}: cannot read ({e.strerror})") from None
    if len(data) > limit:
        raise TooLarge(f"{name}: file exceeds the {limit:,}-byte limit")
    return data


def read_bytes(path: str | Path, limit: int = MAX_DATA_FILE_BYTES) -> bytes:
    """The file's bytes, gunzipped when it is gzip-compressed (detected by content, not name); at most `limit`
    bytes either way, so a gzip bomb is refused before it fills the memory."""
    path = Path(path)
    raw = read_regular_file(path, limit)
    if raw[:2] == GZIP_MAGIC:
        return gunzip_capped(raw, limit, str(path))
    return raw


def gunzip_capped(raw: bytes, limit: int, name: str) -> bytes:
    """gzip data decompressed, refusing (TooLarge) output beyond `limit` bytes without producing it."""
    out, d, rest = [], zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), raw
    size = 0
    try:
        while rest:
            chunk = d.decompress(rest, limit + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > limit:
                raise TooLarge(f"{name}: decompresses to more than {limit:,} bytes")
            rest = d.unconsumed_tail
            if d.eof:
                if d.unused_data.strip(b"\0"):  # a second gzip member: rare, read it the same way
                    rest, d = d.unused_data, zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    continue
                break
        if not d.eof:
            raise DigitsError(f"{name}: corrupt or truncated gzip data (ends early)")
    except zlib.error as e:
        raise DigitsError(f"{name}: corrupt or truncated gzip data ({e})") from None
    return b"".join(out)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking magic, type code, dimensions and byte count."""
    if len(data) < 4:
        raise DigitsError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DigitsError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()})")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DigitsError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[type_code]
    expected = header_len + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DigitsError(f"{name}: {what}: header says {shape} -> {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape).astype(dtype.newbyteorder("="))


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for an array (uint8 is what MNIST uses)."""
    codes = {v.newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX has no type code for {array.dtype}")
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, raw or gzip."""
    return parse_idx(read_bytes(path), str(path))


def check_images_labels(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    """Reject image/label arrays that do not look like an MNIST-style classification set."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DigitsError(f"{name}: images have shape {images.shape}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})")
    if images.dtype != np.uint8:
        raise DigitsError(f"{name}: images have dtype {images.dtype}, expected uint8")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DigitsError(f"{name}: {labels.shape} labels for {len(images)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DigitsError(f"{name}: labels outside 0..{NUM_CLASSES - 1} (found {labels.min()}..{labels.max()})")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Keras' mnist.npz: x_train, y_train, x_test, y_test. Never unpickles."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        raise DigitsError(f"{path}: file not found") from None
    except KeyError as e:
        raise DigitsError(f"{path}: missing array {e} (expected x_train, y_train, x_test, y_test)") from None
    except ValueError as e:  # pickled object arrays, or not an npz at all
        raise DigitsError(f"{path}: not a valid npz file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DigitsError(f"{path}: corrupt npz file ({e})") from None
    for split in ("train", "test"):
        check_images_labels(arrays[f"x_{split}"], arrays[f"y_{split}"].astype(np.int64), f"{path} ({split})")
    return arrays


def read_kaggle_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Kaggle Digit Recognizer CSV -> (images uint8 (N, 28, 28), labels int64 (N,) or None for test.csv)."""
    path = Path(path)
    text = read_bytes(path)
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DigitsError(f"{path}: not a CSV text file ({e})") from None
    if not rows:
        raise DigitsError(f"{path}: empty CSV file")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    has_label = header[:1] == ["label"]
    pixels = header[1:] if has_label else header
    if pixels != [f"pixel{i}" for i in range(KAGGLE_PIXELS)]:
        raise DigitsError(f"{path}: header is not [label,]pixel0..pixel{KAGGLE_PIXELS - 1}")
    width = len(header)
    for i, row in enumerate(body, start=2):
        if len(row) != width:
            raise DigitsError(f"{path}: line {i} has {len(row)} fields, expected {width}")
    try:
        values = np.array(body, dtype=np.int64).reshape(len(body), width)
    except ValueError:
        raise DigitsError(f"{path}: non-integer value in the data") from None
    if has_label and len(values) and not ((values[:, 0] >= 0) & (values[:, 0] < NUM_CLASSES)).all():
        raise DigitsError(f"{path}: label outside 0..{NUM_CLASSES - 1}")
    px = values[:, 1:] if has_label else values
    if len(px) and (px.min() < 0 or px.max() > 255):
        raise DigitsError(f"{path}: pixel value outside 0..255")
    images = px.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return images, (values[:, 0].copy() if has_label else None)


def temp_path(path: Path) -> Path:
    """Where an atomic write stages `path`: hidden, in the same folder (so the rename is atomic), per process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def writer_gone(stale: Path) -> bool:
    """Whether the process that staged `stale` (.NAME.<pid>.tmp) has ended, so the file can never be finished."""
    pid = stale.name.rsplit(".", 2)[-2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OverflowError, OSError):  # PermissionError included
        return False  # alive under another user, or not a pid this system could have: leave it alone
    return False


def remove_stale_temporaries(folder: Path, name: str = "*") -> None:
    """Delete the staging files that killed atomic writers left in `folder` (those of `name` only, if given);
    they are never valid data. Files of writers still running are theirs."""
    for stale in folder.glob(f".{name}.*.tmp"):
        if writer_gone(stale):
            stale.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see a partial file. What a
    killed earlier writer of the same file left behind is removed first."""
    atomic_write_files([(Path(path), data)])


def atomic_write_files(files: list[tuple[Path, bytes]]) -> None:
    """Stage every file (temp file, fsync), then rename them in the order given: a full disk or any failure
    while staging leaves none of them changed, and the last (a description naming the others) appears last.
    An OSError names the file it was writing."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temporaries(path.parent, glob.escape(path.name))
                tmp = temp_path(path)
                staged.append((tmp, path))
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise named(e, path) from None
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise named(e, path) from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def named(e: OSError, path: Path) -> OSError:
    """The same error, naming `path` where it named no file (a write that found the disk full names none)."""
    if e.filename is not None:
        return e
    return type(e)(e.errno, e.strerror or str(e), str(path))


def write_submission(path: str | Path, labels: np.ndarray) -> None:
    """Kaggle submission: ImageId (from 1), Label."""
    lines = ["ImageId,Label"] + [f"{i},{int(y)}" for i, y in enumerate(labels, start=1)]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
