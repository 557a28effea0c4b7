"""The tutorial's Keras model file (`model.save('cnn_model.h5')`) read as weights only, into the tutorial net.

The file is opened with h5py; TensorFlow and Keras are never imported, and Keras' `model_config` is parsed as
plain JSON data, only to check that the architecture is the tutorial's. Both layouts on disk are read, through
each layer's `weight_names` attribute:
    Keras 2 / tf.keras: model_weights/conv2d/conv2d/kernel:0
    Keras 3:            model_weights/conv2d/sequential/conv2d/kernel   (and names such as conv2d_3)
Keras stores conv kernels HWIO and flattens feature maps channels-last; the net here is OIHW and flattens
channels-first, so kernels are transposed and the first dense layer's input rows reordered.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DigitsError
from .net import Net, build_model

ARCHITECTURE = "tutorial"
# The tutorial's layers as Keras records them: (class, the settings that must match).
TUTORIAL_LAYERS = (
    ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "relu"}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Flatten", {}),
    ("Dense", {"units": 100, "activation": "relu"}),
    ("Dense", {"units": 10, "activation": "softmax"}),
)
CLASS_ALIASES = {"MaxPool2D": "MaxPooling2D", "Convolution2D": "Conv2D"}
SKIPPED_CLASSES = ("InputLayer",)  # carries no computation
READ_CHUNK = 1 << 20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def attribute_list(node, name: str) -> list[str] | None:
    """A list attribute, as Keras writes it: whole, or split into name0, name1, ... when it is large."""
    if name in node.attrs:
        return [text(v) for v in node.attrs[name]]
    parts, i = [], 0
    while f"{name}{i}" in node.attrs:
        parts += [text(v) for v in node.attrs[f"{name}{i}"]]
        i += 1
    return parts or None


def check_architecture(config_json: str | None, where: str) -> None:
    """The model_config JSON (data only) describes the tutorial's layers, or a one-line error names the first
    difference."""
    if config_json is None:
        return  # weights-only files: the shapes are checked instead
    try:
        config = json.loads(config_json)
        layers = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
        found = [(CLASS_ALIASES.get(l["class_name"], l["class_name"]), l.get("config", {})) for l in layers
                 if l.get("class_name") not in SKIPPED_CLASSES]
    except (ValueError, KeyError, TypeError):
        raise DigitsError(f"{where}: its model_config is not the JSON Keras writes") from None
    for i, ((want_cls, want), (cls, got)) in enumerate(zip(TUTORIAL_LAYERS, found), start=1):
        if cls != want_cls:
            raise DigitsError(f"{where}: layer {i} is {cls}; the tutorial's is {want_cls} (not the tutorial's model)")
        for key, value in want.items():
            have = list(got[key]) if isinstance(got.get(key), (list, tuple)) else got.get(key)
            if have != value:
                raise DigitsError(f"{where}: layer {i} ({cls}) has {key} {have!r}; the tutorial's has {value!r}")
    if len(found) != len(TUTORIAL_LAYERS):
        raise DigitsError(f"{where}: {len(found)} layers; the tutorial's model has {len(TUTORIAL_LAYERS)}")


def layer_weights(group, layer: str, where: str) -> dict[str, np.ndarray]:
    """{"kernel": ..., "bias": ...} of one layer group, found through its weight_names (either layout)."""
    names = attribute_list(group, "weight_names")
    if names is None:  # no index: every dataset under the group
        names = []
        group.visit(lambda n: names.append(n) if hasattr(group[n], "shape") else None)
    out = {}
    for name in names:
        key = name.rsplit("/", 1)[-1].split(":")[0]
        if name not in group:
            raise DigitsError(f"{where}: layer '{layer}' lists weight '{name}' but the file does not hold it")
        out[key] = np.asarray(group[name], dtype=np.float32)
    if set(out) != {"kernel", "bias"}:
        raise DigitsError(f"{where}: layer '{layer}' has weights {sorted(out)}; expected a kernel and a bias")
    return out


def read_keras_h5(path: str | Path) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
    """The kernel and bias of every layer with weights, in order, and where they came from."""
    import h5py

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DigitsError(f"{where}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        reason = "truncated or corrupt" if "truncated" in str(e).lower() else "not an HDF5 file"
        raise DigitsError(f"{where}: {reason} (expected the .h5 file Keras' model.save writes)") from None
    try:
        with f:
            if "model_weights" not in f:
                raise DigitsError(f"{where}: no model_weights group (expected a whole model saved with "
                                  "model.save('cnn_model.h5'), not a weights-only or other HDF5 file)")
            config = f.attrs.get("model_config")
            check_architecture(text(config) if config is not None else None, where)
            mw = f["model_weights"]
            names = attribute_list(mw, "layer_names") or list(mw.keys())
            layers = []
            for name in names:
                if name not in mw:
                    raise DigitsError(f"{where}: layer '{name}' is listed but missing from model_weights")
                if attribute_list(mw[name], "weight_names") or any(True for _ in mw[name].keys()):
                    layers.append(layer_weights(mw[name], name, where))
            source = {"file": path.name, "sha256": sha256(path),
                      "keras_version": text(f.attrs.get("keras_version", "unknown")),
                      "backend": text(f.attrs.get("backend", "unknown"))}
    except (OSError, KeyError, ValueError) as e:
        raise DigitsError(f"{where}: cannot read the HDF5 data (truncated or corrupt: {e})") from None
    return layers, source


def convert(layers: list[dict[str, np.ndarray]], net: Net, where: str) -> dict[str, torch.Tensor]:
    """Keras kernels and biases -> the net's state dict: HWIO -> OIHW, (in, out) -> (out, in), and the first
    dense layer's rows reordered from Keras' channels-last flatten (h, w, c) to ours (c, h, w)."""
    targets = [(name, m) for name, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    if len(layers) != len(targets):
        raise DigitsError(f"{where}: {len(layers)} layers with weights; the tutorial's model has {len(targets)}")
    state, first_dense = {}, True
    last_conv_channels = None
    for (name, module), w in zip(targets, layers):
        kernel, bias = w["kernel"], w["bias"]
        if isinstance(module, torch.nn.Conv2d):
            kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            last_conv_channels = module.out_channels
        else:
            if first_dense and kernel.ndim == 2 and last_conv_channels:
                side = int(round((kernel.shape[0] / last_conv_channels) ** 0.5))
                if side * side * last_conv_channels == kernel.shape[0]:
                    kernel = (kernel.reshape(side, side, last_conv_channels, -1)  # (h, w, c, out)
                              .transpose(2, 0, 1, 3).reshape(kernel.shape[0], -1))  # (c*h*w, out)
            first_dense = False
            kernel = kernel.T  # (in, out) -> (out, in)
        for key, value in (("weight", kernel), ("bias", bias)):
            want = tuple(getattr(module, key).shape)
            if tuple(value.shape) != want:
                raise DigitsError(f"{where}: layer {name} {key} has shape {tuple(value.shape)}; the tutorial's "
                                  f"net needs {want}")
            state[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_keras_tutorial(path: str | Path) -> tuple[Net, dict[str, Any]]:
    """The tutorial net with the weights of a Keras cnn_model.h5, and the file's provenance."""
    layers, source = read_keras_h5(path)
    net = build_model(ARCHITECTURE)
    net.load_state_dict(convert(layers, net, str(path)))
    return net.eval(), source
