"""Readers for IDX, npz and Kaggle CSV on small files written here, good and broken."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from digit_recognizer.data.formats import (encode_idx, read_idx, read_kaggle_csv, read_npz, write_submission)
from digit_recognizer.errors import DigitsError


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_roundtrip(tmp_path, images, compress):
    data = encode_idx(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path), images)


def test_idx_labels_roundtrip(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "l").write_bytes(encode_idx(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "l"), labels)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-7], "truncated"),
    (lambda d: d + b"\0\0", "trailing bytes"),
    (lambda d: b"\x12\x34" + d[2:], "bad magic"),
    (lambda d: d[:2] + b"\x42" + d[3:], "bad magic"),  # unknown type code
    (lambda d: d[:6], "truncated IDX header"),
    (lambda d: b"", "too short"),
])
def test_idx_broken(tmp_path, images, mutate, message):
    path = tmp_path / "broken-idx"
    path.write_bytes(mutate(encode_idx(images)))
    with pytest.raises(DigitsError, match=message) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_idx_corrupt_gzip(tmp_path, images):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(encode_idx(images))[:-20])
    with pytest.raises(DigitsError, match="gzip"):
        read_idx(path)


def test_idx_missing(tmp_path):
    with pytest.raises(DigitsError, match="not found"):
        read_idx(tmp_path / "nope")


def test_npz(tmp_path, images):
    path = tmp_path / "mnist.npz"
    labels = np.arange(5, dtype=np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images[:2], y_test=labels[:2])
    arrays = read_npz(path)
    np.testing.assert_array_equal(arrays["x_train"], images)


def test_npz_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    obj = np.array([{"a": 1}], dtype=object)
    np.savez(path, x_train=obj, y_train=obj, x_test=obj, y_test=obj)
    with pytest.raises(DigitsError, match="not a valid npz"):
        read_npz(path)


def test_npz_missing_key_and_garbage(tmp_path, images):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=images)
    with pytest.raises(DigitsError, match="missing array"):
        read_npz(path)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DigitsError, match="garbage.npz"):
        read_npz(tmp_path / "garbage.npz")


def test_npz_mislabelled(tmp_path, images):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=images, y_train=np.array([0, 1, 2, 3, 12]), x_test=images, y_test=np.zeros(5))
    with pytest.raises(DigitsError, match="labels outside"):
        read_npz(path)


def kaggle_text(images, labels=None) -> str:
    header = (["label"] if labels is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(header)]
    for k, im in enumerate(images):
        vals = ([str(labels[k])] if labels is not None else []) + [str(v) for v in im.flatten()]
        rows.append(",".join(vals))
    return "\n".join(rows) + "\n"


def test_kaggle_train_and_test(tmp_path, images):
    labels = np.array([3, 1, 4, 1, 5])
    (tmp_path / "train.csv").write_text(kaggle_text(images, labels))
    (tmp_path / "test.csv").write_text(kaggle_text(images))
    x, y = read_kaggle_csv(tmp_path / "train.csv")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    x, y = read_kaggle_csv(tmp_path / "test.csv")
    assert y is None and x.shape == (5, 28, 28)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("pixel5,", "pixelX,", 1), "header"),
    (lambda t: t.rsplit(",", 1)[0] + "\n", "fields"),
    (lambda t: t.replace("\n3,", "\n11,", 1), "label outside"),
    (lambda t: t.replace("\n3,", "\n3.5,", 1), "non-integer"),
    (lambda t: "", "empty"),
])
def test_kaggle_broken(tmp_path, images, edit, message):
    path = tmp_path / "train.csv"
    path.write_text(edit(kaggle_text(images, np.array([3, 1, 4, 1, 5]))))
    with pytest.raises(DigitsError, match=message):
        read_kaggle_csv(path)


def test_kaggle_pixel_range(tmp_path, images):
    text = kaggle_text(images).replace("\n", "\n300,", 1)
    text = text.split("\n")
    text[1] = ",".join(text[1].split(",")[:784])
    (tmp_path / "test.csv").write_text("\n".join(text))
    with pytest.raises(DigitsError, match="outside 0..255"):
        read_kaggle_csv(tmp_path / "test.csv")


def test_submission_format(tmp_path):
    write_submission(tmp_path / "s.csv", np.array([7, 2, 1]))
    assert (tmp_path / "s.csv").read_text() == "ImageId,Label\n1,7\n2,2\n3,1\n"
