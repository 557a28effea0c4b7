"""Self-describing model files: weights in `<stem>.safetensors`, everything else in `<stem>.json`.

`load_model` is the one loader: it takes a run folder, either file of a pair, or None for the shipped model.
A JSON with "members" describes an ensemble whose probabilities are averaged (with "cascade": c, its first member
alone answers where its calibrated confidence reaches c, and all of them only where it does not; a single model
with shifted views, "tta", may cascade too: its plain view alone, then every view); one with
"marker_reader" names a second model (its own description, beside the first) that reads the digits whose strokes
the reader thinned as a fat marker's (inference.reader.Views.marker).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..config import from_dict, shown, to_dict
from ..constants import DIGIT_BOX, IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES
from ..data.formats import atomic_write_bytes, atomic_write_files, read_regular_file
from ..errors import DigitsError
from .net import MAX_PARAMETERS, ModelConfig, Net, check_config, count_parameters

FORMAT = "digits-model"
FORMAT_VERSION = 1
MODEL_STEM = "model"
MAX_JSON_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 4 * MAX_PARAMETERS + (1 << 20)  # float32 weights and the safetensors header
MAX_MEMBERS = 64  # networks in one ensemble
MARKER_SUFFIX = "-marker"  # model.json's marker reader is model-marker.json (+ .safetensors) beside it


def versions() -> dict[str, str]:
    from .. import __version__
    return {"digits": __version__, "torch": torch.__version__, "python": platform.python_version()}


def preprocessing_info() -> dict[str, Any]:
    return {"input": f"(B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}) pixels 0..255, ink bright on black",
            "digit_box": DIGIT_BOX, "centre": "centre of mass", "mnist_mean": MNIST_MEAN, "mnist_std": MNIST_STD}


def model_meta(model: Net, *, training: dict | None = None, metrics: dict | None = None,
               extra: dict | None = None) -> dict[str, Any]:
    """The JSON description of `model` (its weights file is named when it is saved)."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "architecture": to_dict(model.cfg), "parameters": count_parameters(model), "classes": NUM_CLASSES,
        "preprocessing": preprocessing_info(), "training": training or {}, "metrics": metrics or {},
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(extra or {}),
    }


def save_model(path: str | Path, model: Net, meta: dict[str, Any] | None = None) -> Path:
    """Write `<path>.safetensors` and `<path>.json`; a folder gets `folder/model.*`. Returns the JSON path."""
    stem = Path(path)
    stem = stem / MODEL_STEM if stem.is_dir() else stem.with_suffix("")
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {**(meta or model_meta(model)), "weights": stem.name + ".safetensors"}
    # Both staged, then renamed weights first: the description, which names the weights, appears last, and a
    # full disk leaves neither half.
    atomic_write_files([(stem.with_suffix(".safetensors"), save_tensors(weights)),
                        (stem.with_suffix(".json"), json_bytes(meta))])
    return stem.with_suffix(".json")


def json_bytes(obj: Any) -> bytes:
    """A description as written to disk: indented JSON, one newline at the end."""
    return (json.dumps(obj, indent=2) + "\n").encode()


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def update_metrics(json_path: Path, metrics: dict) -> None:
    meta = read_json(json_path)
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    write_json(json_path, meta)


def read_json(path: Path) -> dict[str, Any]:
    """A model description, read (a regular file, at most MAX_JSON_BYTES) and checked field by field."""
    try:
        meta = json.loads(read_regular_file(path, MAX_JSON_BYTES))
    except RecursionError:
        raise DigitsError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer past Python's digit limit
        raise DigitsError(f"{path}: not valid JSON ({str(e)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DigitsError(f"{path}: not a digits model description (missing \"format\": \"{FORMAT}\")")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DigitsError(f"{path}: model format version {shown(meta.get('format_version'))} is not supported")
    check_meta(meta, path)
    return meta


def check_meta(meta: dict[str, Any], path: Path) -> None:
    """The fields that steer loading and prediction have the right types and sensible values, and the files
    they name lie in the description's own folder."""
    def fail(key: str, why: str) -> None:
        raise DigitsError(f"{path}: \"{key}\" {why}, got {shown(meta[key])}")

    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if "tta" in meta and not isinstance(meta["tta"], bool):
        fail("tta", "must be true or false")
    if "temperature" in meta and not (number(meta["temperature"]) and meta["temperature"] > 0):
        fail("temperature", "must be a positive number")
    if "min_confidence" in meta and not (number(meta["min_confidence"]) and 0 <= meta["min_confidence"] <= 1):
        fail("min_confidence", "must be a number from 0 to 1")
    if "min_score" in meta and not number(meta["min_score"]):
        fail("min_score", "must be a number (a digit score: inference.engine.scores)")
    if "weights" in meta:
        if not isinstance(meta["weights"], str):
            fail("weights", "must be a file name")
        beside(path, meta["weights"])
    if "members" in meta:
        members = meta["members"]
        if not (isinstance(members, list) and 1 <= len(members) <= MAX_MEMBERS
                and all(isinstance(m, str) for m in members)):
            fail("members", f"must be a list of 1 to {MAX_MEMBERS} model file names")
        for m in members:
            beside(path, m)
    if "cascade" in meta and not (number(meta["cascade"]) and 0 < meta["cascade"] <= 1
                                  and ("members" in meta or meta.get("tta") is True)):
        fail("cascade", "must be a number above 0 and at most 1, in an ensemble's description or a model's with "
                        "shifted views (tta)")
    if "marker_reader" in meta:
        if not isinstance(meta["marker_reader"], str):
            fail("marker_reader", "must be a model file name")
        beside(path, meta["marker_reader"])


def beside(json_path: Path, name: str) -> Path:
    """A file named by a model description: inside the description's folder (or below), nowhere else. Names
    are judged as written ('..' counts; a link placed in the folder is the owner's choice)."""
    folder = json_path.parent.absolute()
    target = Path(os.path.normpath(folder / name))
    if not target.is_relative_to(folder):
        raise DigitsError(f"{json_path}: {shown(name)} lies outside the model's folder")
    return target


def default_model_path() -> Path:
    return Path(str(resources.files("digit_recognizer") / "assets" / f"{MODEL_STEM}.json"))


def resolve(path: str | Path | None) -> Path:
    """The JSON file for a run folder, a .json, a .safetensors, or None (the shipped model)."""
    if path is None:
        return default_model_path()
    p = Path(path)
    if p.is_dir():
        p = p / f"{MODEL_STEM}.json"
    elif p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    if not p.exists():
        raise DigitsError(f"{path}: no model there (expected a run folder, a model .json or .safetensors)")
    return p


@dataclass
class LoadedModel:
    """Networks (one, or an ensemble's members) in eval mode, plus their description."""
    nets: list[Net]
    meta: dict[str, Any]
    path: Path
    member_meta: list[dict[str, Any]] = field(default_factory=list)
    sha256: str = ""  # of the descriptions (as parsed) and the weights files: names the model without its path
    marker: LoadedModel | None = None  # the reader of fat markers' digits, where the description names one
    label: str | None = None  # the name to show, where the files were copied from somewhere else

    @property
    def name(self) -> str:
        """'shipped', the run folder's name, or the description file's stem."""
        if self.label is not None:
            return self.label
        if self.path == default_model_path():
            return "shipped"
        return self.path.parent.name if self.path.name == f"{MODEL_STEM}.json" else self.path.stem

    @property
    def has_int8(self) -> bool:
        """Whether every member carries int8 activation ranges (recorded by training)."""
        return bool(self.member_meta) and all("int8_ranges" in m for m in self.member_meta)

    @property
    def temperatures(self) -> list[float]:
        """Each member's softmax temperature, fitted on the validation split (1.0 if never calibrated)."""
        return [float(m.get("temperature", 1.0)) for m in self.member_meta] or [1.0] * len(self.nets)


def weights_of(json_path: Path, meta: dict[str, Any]) -> Path:
    """The weights file a description names (by default `<stem>.safetensors` beside it)."""
    return beside(json_path, str(meta.get("weights", json_path.with_suffix(".safetensors").name)))


def load_net(json_path: Path, meta: dict[str, Any], digest: Any = None) -> Net:
    """The network a description names, its architecture checked against bounds and its weights' shapes
    against the architecture before anything is allocated for them."""
    cfg = from_dict(ModelConfig, meta.get("architecture"), f"{json_path}: architecture")
    check_config(cfg, f"{json_path}: architecture")
    weights_path = weights_of(json_path, meta)
    data = read_regular_file(weights_path, MAX_WEIGHTS_BYTES)
    if digest is not None:
        digest.update(data)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Net(cfg).state_dict().items()}
    check_weights_header(weights_path, expected)
    try:
        tensors = load_tensors(data)
    except SafetensorError as e:
        raise DigitsError(f"{weights_path}: weights are corrupt ({e})") from None
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise DigitsError(f"{weights_path}: weights contain NaN or infinity")
    net = Net(cfg)
    net.load_state_dict(tensors)
    # NHWC: oneDNN's fast layout for these convolutions (tutorial CNN, 10k test images in fp32: 0.66 s vs 1.52 s).
    return net.eval().to(memory_format=torch.channels_last)


def check_weights_header(path: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """The safetensors header (read alone) names exactly the architecture's tensors, in its shapes."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitsError(f"{path}: weights are corrupt ({e})") from None
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        k = wrong[0]
        raise DigitsError(f"{path}: weights do not match the architecture ({k}: file has "
                          f"{found.get(k, 'nothing')}, architecture needs {expected.get(k, 'nothing')})")


def load_model(path: str | Path | None = None) -> LoadedModel:
    """The model at `path` (see `resolve`), with its ensemble's members and its marker reader."""
    json_path = resolve(path)
    loaded = load_described(json_path)
    if "marker_reader" in loaded.meta:
        marker_path = beside(json_path, loaded.meta["marker_reader"])
        if not marker_path.is_file():
            raise DigitsError(f"{json_path}: its marker reader {shown(loaded.meta['marker_reader'])} is missing")
        loaded.marker = load_described(marker_path)
        if "marker_reader" in loaded.marker.meta:
            raise DigitsError(f"{marker_path}: a marker reader cannot name a marker reader of its own")
        loaded.sha256 = hashlib.sha256((loaded.sha256 + loaded.marker.sha256).encode()).hexdigest()
    return loaded


def load_described(json_path: Path) -> LoadedModel:
    """One description's networks: itself, or its ensemble's members."""
    meta = read_json(json_path)
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    if "members" in meta:
        member_paths = [beside(json_path, m) for m in meta["members"]]
        metas = [read_json(p) for p in member_paths]
        nets = []
        for p, m in zip(member_paths, metas):
            digest.update(json.dumps(m, sort_keys=True).encode())
            nets.append(load_net(p, m, digest))
        return LoadedModel(nets, meta, json_path, metas, digest.hexdigest())
    net = load_net(json_path, meta, digest)
    return LoadedModel([net], meta, json_path, [meta], digest.hexdigest())
