"""Training checkpoints as one safetensors file: model + optimizer tensors, everything else as JSON metadata.

One file written atomically, so a kill at any moment leaves either the old or the new checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from ..data.formats import atomic_write_bytes
from ..errors import DigitsError


def save_checkpoint(path: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    """modules: name -> module (e.g. "model", "ema"), each saved under its name as a tensor prefix."""
    tensors = {f"{name}/{k}": v.detach().contiguous()
               for name, m in modules.items() for k, v in m.state_dict().items()}
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for idx, st in opt["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{idx}/{k}"] = v.detach().contiguous()
            else:
                opt_scalars.setdefault(str(idx), {})[k] = v
    # A learning rate held on the device (a CUDA-graphed step reads it there) is saved as a number.
    groups = [{k: v.item() if isinstance(v, torch.Tensor) else v for k, v in g.items()} for g in opt["param_groups"]]
    meta = {"state": json.dumps(state), "param_groups": json.dumps(groups),
            "opt_scalars": json.dumps(opt_scalars)}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def load_checkpoint(path: Path, modules: dict[str, torch.nn.Module],
                    optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model and optimizer in place; returns the JSON state saved with them."""
    try:
        raw = path.read_bytes()
        tensors = load(raw)
        from safetensors import safe_open  # metadata is only exposed through safe_open
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        state = json.loads(meta["state"])
        groups = json.loads(meta["param_groups"])
        scalars = json.loads(meta["opt_scalars"])
    except FileNotFoundError:
        raise DigitsError(f"{path.parent}: no checkpoint to resume from") from None
    except (SafetensorError, KeyError, ValueError, TypeError, OSError) as e:
        raise DigitsError(f"{path}: corrupt checkpoint ({e})") from None
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    for idx, st in scalars.items():
        opt_state.setdefault(int(idx), {}).update(st)
    try:
        for name, m in modules.items():
            m.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")})
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (RuntimeError, ValueError, KeyError) as e:
        raise DigitsError(f"{path}: checkpoint does not match this model/optimizer ({e})") from None
    return state
