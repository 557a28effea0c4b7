"""`digits import-keras`: h5 files written here with h5py (no TensorFlow), in both Keras layouts, checked
against a NumPy reference of Keras' forward pass; every kind of bad file is a one-line error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import h5py  # the 'keras' extra, installed by scripts/setup.sh

from conftest import run_digits
from digit_recognizer.errors import DigitsError
from digit_recognizer.models.keras import TUTORIAL_LAYERS, load_keras_tutorial

# (layer name, class, kernel shape HWIO / (in, out)) of the tutorial's model as Keras names them.
LAYERS = [("conv2d", "Conv2D", (3, 3, 1, 32)), ("max_pooling2d", "MaxPooling2D", None),
          ("conv2d_1", "Conv2D", (3, 3, 32, 64)), ("conv2d_2", "Conv2D", (3, 3, 64, 64)),
          ("max_pooling2d_1", "MaxPooling2D", None), ("flatten", "Flatten", None),
          ("dense", "Dense", (1024, 100)), ("dense_1", "Dense", (100, 10))]


def random_weights(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: (rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape).astype(np.float32),
                   rng.normal(0, 0.05, shape[-1]).astype(np.float32))
            for name, _, shape in LAYERS if shape is not None}


def model_config(changes: dict | None = None) -> str:
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 28, 28, 1]}}]
    for (cls, settings), (name, _, _) in zip(TUTORIAL_LAYERS, LAYERS):
        layers.append({"class_name": cls, "config": {"name": name, **settings, **(changes or {}).get(name, {})}})
    return json.dumps({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}})


def write_h5(path: Path, weights, *, layout: str = "keras2", config: str | None = None, drop: str | None = None,
             suffix: int = 0) -> Path:
    """A model file as Keras writes it: keras2 = model_weights/conv2d/conv2d/kernel:0, keras3 =
    model_weights/conv2d_3/sequential/conv2d_3/kernel (layer names with a suffix)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0" if layout == "keras2" else "3.6.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = config or model_config()
        mw = f.create_group("model_weights")
        names = [name if layout == "keras2" or suffix == 0 else f"{name}_{suffix}" for name, _, _ in LAYERS]
        mw.attrs["layer_names"] = [n.encode() for n in names]
        for (base, _, shape), name in zip(LAYERS, names):
            g = mw.create_group(name)
            if shape is None:
                g.attrs["weight_names"] = []
                continue
            paths = ([f"{name}/kernel:0", f"{name}/bias:0"] if layout == "keras2"
                     else [f"sequential/{name}/kernel", f"sequential/{name}/bias"])
            g.attrs["weight_names"] = [p.encode() for p in paths]
            for p, value in zip(paths, weights[base]):
                if name != drop:
                    g.create_dataset(p, data=value)
    return path


def keras_forward(x: np.ndarray, w) -> np.ndarray:
    """Keras' computation in NumPy: NHWC 'valid' convolutions, 2x2 max-pools, channels-last flatten."""
    def conv(a, kernel, bias):  # a (N, H, W, C), kernel (3, 3, C, O)
        n, h, wd, _ = a.shape
        out = np.zeros((n, h - 2, wd - 2, kernel.shape[-1]), np.float64)
        for dy in range(3):
            for dx in range(3):
                out += np.einsum("nhwc,co->nhwo", a[:, dy:dy + h - 2, dx:dx + wd - 2], kernel[dy, dx])
        return np.maximum(out + bias, 0)

    def pool(a):
        n, h, wd, c = a.shape
        a = a[:, :h // 2 * 2, :wd // 2 * 2]
        return a.reshape(n, h // 2, 2, wd // 2, 2, c).max((2, 4))

    a = x.astype(np.float64)[..., None] / 255.0
    a = pool(conv(a, *w["conv2d"]))
    a = pool(conv(conv(a, *w["conv2d_1"]), *w["conv2d_2"]))
    a = a.reshape(len(a), -1)  # NHWC flatten
    a = np.maximum(a @ w["dense"][0] + w["dense"][1], 0)
    return a @ w["dense_1"][0] + w["dense_1"][1]  # logits (before softmax)


@pytest.mark.parametrize("layout, suffix", [("keras2", 0), ("keras3", 0), ("keras3", 3)])
def test_imported_net_matches_keras(tmp_path, layout, suffix):
    w = random_weights(1)
    net, source = load_keras_tutorial(write_h5(tmp_path / "cnn_model.h5", w, layout=layout, suffix=suffix))
    x = np.random.default_rng(2).integers(0, 256, (16, 28, 28)).astype(np.uint8)
    with torch.no_grad():
        ours = net(torch.from_numpy(x).unsqueeze(1)).double().numpy()
    np.testing.assert_allclose(ours, keras_forward(x, w), atol=1e-4, rtol=0)
    assert source["file"] == "cnn_model.h5" and len(source["sha256"]) == 64 and source["backend"] == "tensorflow"


def test_flatten_order_matters(tmp_path):
    """Loading the first dense layer without the channels-last reordering gives different logits."""
    from digit_recognizer.models import keras as k

    w = random_weights(3)
    layers, _ = k.read_keras_h5(write_h5(tmp_path / "m.h5", w))
    net = k.build_model(k.ARCHITECTURE)
    state = k.convert(layers, net, "m")
    naive = dict(state, **{"head.1.weight": torch.from_numpy(w["dense"][0].T.copy())})
    x = torch.randint(0, 256, (4, 1, 28, 28))
    net.load_state_dict(state)
    good = net(x)
    net.load_state_dict(naive)
    assert (net(x) - good).abs().max() > 1e-2


def test_bad_files_are_one_line_errors(tmp_path):
    good = write_h5(tmp_path / "good.h5", random_weights())
    cases = {
        "not an HDF5 file": (tmp_path / "text.h5", b"this is not HDF5"),
        "truncated or corrupt": (tmp_path / "cut.h5", good.read_bytes()[: good.stat().st_size // 2]),
    }
    for message, (path, data) in cases.items():
        path.write_bytes(data)
        with pytest.raises(DigitsError, match=message):
            load_keras_tutorial(path)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(DigitsError, match="no model_weights"):
        load_keras_tutorial(tmp_path / "empty.h5")
    other = write_h5(tmp_path / "other.h5", random_weights(),
                     config=model_config({"conv2d_1": {"filters": 48}}))
    with pytest.raises(DigitsError, match=r"layer 3 \(Conv2D\) has filters 48; the tutorial's has 64"):
        load_keras_tutorial(other)
    with pytest.raises(DigitsError, match="layer 'dense' lists weight"):
        load_keras_tutorial(write_h5(tmp_path / "missing.h5", random_weights(), drop="dense"))
    w = random_weights()
    w["dense"] = (np.zeros((1024, 50), np.float32), np.zeros(50, np.float32))
    with pytest.raises(DigitsError, match=r"shape \(50, 1024\)"):
        load_keras_tutorial(write_h5(tmp_path / "shape.h5", w))


@pytest.mark.smoke
def test_import_keras_command_makes_a_model_every_command_uses(tmp_path, mnist_dir):
    h5 = write_h5(tmp_path / "cnn_model.h5", random_weights(4))
    out = tmp_path / "imported"
    res = run_digits("import-keras", str(h5), "--out", str(out), "--data-dir", str(mnist_dir))
    assert res.returncode == 0, res.stderr
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["source"]["sha256"] and meta["training"]["val_size"] == 6000
    assert meta["architecture"]["name"] == "tutorial" and "int8_ranges" in meta and meta["temperature"] > 0
    res = run_digits("evaluate", "--model", str(out), "--data-dir", str(mnist_dir), "--json")
    assert res.returncode == 0, res.stderr
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n broken")
    res = run_digits("import-keras", str(bad), "--out", str(tmp_path / "x"), "--data-dir", str(mnist_dir))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
