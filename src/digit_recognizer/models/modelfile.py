"""Self-describing model files: weights in `<stem>.safetensors`, everything else in `<stem>.json`.

`load_model` is the one loader: it takes a run folder, either file of a pair, or None for the shipped model.
A JSON with "members" describes an ensemble whose probabilities are averaged.
"""
from __future__ import annotations

import json
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

from ..config import from_dict, to_dict
from ..constants import DIGIT_BOX, IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES
from ..data.formats import atomic_write_bytes
from ..errors import DigitsError
from .net import ModelConfig, Net, count_parameters

FORMAT = "digits-model"
FORMAT_VERSION = 1
MODEL_STEM = "model"
MAX_JSON_BYTES = 1 << 20


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
    atomic_write_bytes(stem.with_suffix(".safetensors"), save_tensors(weights))
    write_json(stem.with_suffix(".json"), meta)
    return stem.with_suffix(".json")


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def update_metrics(json_path: Path, metrics: dict) -> None:
    meta = read_json(json_path)
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    write_json(json_path, meta)


def read_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise DigitsError(f"{path}: too large for a model description")
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise DigitsError(f"{path}: model file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DigitsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DigitsError(f"{path}: not a digits model description (missing \"format\": \"{FORMAT}\")")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DigitsError(f"{path}: model format version {meta.get('format_version')} is not supported")
    return meta


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

    @property
    def has_int8(self) -> bool:
        """Whether every member carries int8 activation ranges (recorded by training)."""
        return bool(self.member_meta) and all("int8_ranges" in m for m in self.member_meta)

    @property
    def temperatures(self) -> list[float]:
        """Each member's softmax temperature, fitted on the validation split (1.0 if never calibrated)."""
        return [float(m.get("temperature", 1.0)) for m in self.member_meta] or [1.0] * len(self.nets)


def load_net(json_path: Path, meta: dict[str, Any]) -> Net:
    cfg = from_dict(ModelConfig, meta.get("architecture"), f"{json_path}: architecture")
    net = Net(cfg)
    weights_path = json_path.parent / str(meta.get("weights", json_path.with_suffix(".safetensors").name))
    try:
        tensors = load_tensors(weights_path.read_bytes())
        net.load_state_dict(tensors)
    except FileNotFoundError:
        raise DigitsError(f"{weights_path}: weights file not found") from None
    except (SafetensorError, RuntimeError) as e:
        raise DigitsError(f"{weights_path}: weights are corrupt or do not match the architecture ({e})") from None
    # NHWC: oneDNN's fast layout for these convolutions (tutorial CNN, 10k test images in fp32: 0.66 s vs 1.52 s).
    return net.eval().to(memory_format=torch.channels_last)


def load_model(path: str | Path | None = None) -> LoadedModel:
    json_path = resolve(path)
    meta = read_json(json_path)
    if "members" in meta:
        member_paths = [json_path.parent / m for m in meta["members"]]
        metas = [read_json(p) for p in member_paths]
        nets = [load_net(p, m) for p, m in zip(member_paths, metas)]
        return LoadedModel(nets, meta, json_path, metas)
    return LoadedModel([load_net(json_path, meta)], meta, json_path, [meta])
