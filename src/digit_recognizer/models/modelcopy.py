"""Copies of model files: every file a description names, a private verified copy (for the server), and a
marker reader attached beside a model.

    model_files(json) -> [paths]; private_copy(model, folder) -> (copy's json, LoadedModel)
    attach_marker_reader(model, marker) -> the model's json, now naming the marker reader
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data.formats import atomic_write_bytes, read_regular_file
from ..errors import DigitsError
from .modelfile import (MARKER_SUFFIX, MAX_WEIGHTS_BYTES, LoadedModel, beside, load_described, load_model, read_json,
                        resolve, weights_of, write_json)


def model_files(json_path: Path) -> list[Path]:
    """Every file the description at `json_path` names, itself first: weights, members and their weights, the
    marker reader and its files (each inside the description's folder)."""
    meta = read_json(json_path)
    files = [json_path]
    if "members" in meta:
        for m in meta["members"]:
            files += model_files(beside(json_path, m))
    else:
        files.append(weights_of(json_path, meta))
    if "marker_reader" in meta:
        files += model_files(beside(json_path, meta["marker_reader"]))
    return files


def private_copy(path: str | Path | None, folder: Path) -> tuple[Path, LoadedModel]:
    """The model at `path` loaded and verified, and its files copied into `folder` (the same names, the same
    relative places) and verified there to be the same model: a copy no one else writes to, so that every
    process reading it later reads what was verified. Returns the copy's JSON path and the loaded model."""
    json_path = resolve(path)
    loaded = load_model(json_path)
    root = json_path.parent
    for f in model_files(json_path):
        dest = folder / Path(os.path.normpath(f.absolute())).relative_to(root.absolute())
        atomic_write_bytes(dest, read_regular_file(f, MAX_WEIGHTS_BYTES))
    copy = folder / json_path.name
    if load_model(copy).sha256 != loaded.sha256:
        raise DigitsError(f"{json_path}: the model changed while it was being read; try again")
    return copy, loaded


def attach_marker_reader(model: str | Path | None, marker: str | Path) -> Path:
    """Copy the model at `marker` (one network, or an ensemble) beside `model`, as `<stem>-marker.json` (and its
    weights, or its members as `<stem>-marker-K.*`), and name it as the model's marker reader; the model's
    description is rewritten last, so it never names missing files. Returns the model's JSON path."""
    json_path = resolve(model)
    meta = read_json(json_path)
    reader = load_described(resolve(marker))
    if "marker_reader" in reader.meta:
        raise DigitsError(f"{reader.path}: a marker reader cannot have a marker reader of its own")
    stem = json_path.with_name(json_path.stem + MARKER_SUFFIX)
    if "members" in reader.meta:
        members = [beside(reader.path, m) for m in reader.meta["members"]]
        copies = [copy_network(p, m, stem.with_name(f"{stem.name}-{k}"))
                  for k, (p, m) in enumerate(zip(members, reader.member_meta))]
        write_json(stem.with_suffix(".json"), {**reader.meta, "members": copies})
    else:
        copy_network(reader.path, reader.meta, stem)
    write_json(json_path, {**meta, "marker_reader": stem.name + ".json"})
    return json_path


def copy_network(json_path: Path, meta: dict[str, Any], stem: Path) -> str:
    """One network's description and weights copied to `<stem>.json` and `.safetensors`; returns the JSON's name."""
    weights = read_regular_file(weights_of(json_path, meta), MAX_WEIGHTS_BYTES)
    atomic_write_bytes(stem.with_suffix(".safetensors"), weights)
    write_json(stem.with_suffix(".json"), {**meta, "weights": stem.name + ".safetensors"})
    return stem.name + ".json"
