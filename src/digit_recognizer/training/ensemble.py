"""Ensembles: N members of one recipe with consecutive seeds, averaged (with test-time shifts by default).

The run folder holds member-0/ .. member-{N-1}/ (ordinary training runs) and a model.json with "members"
that the one loader (`models.modelfile.load_model`) turns into an averaged model, so prediction, evaluation,
the report and the server use an ensemble exactly as they use a single model.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import to_dict
from ..data.dataset import Split
from ..errors import DigitsError
from ..inference.reader.params import reader_stamp
from ..inference.recognizer import Recognizer
from ..models.modelfile import (FORMAT, FORMAT_VERSION, LoadedModel, load_net, preprocessing_info, read_json,
                                versions, write_json)
from .finish import learned_outliers, refusal_thresholds, validation_metrics
from .distributed import SINGLE, World, barrier
from .loop import splits, stderr_log, train
from .recipes import TrainConfig
from .rundir import RunDir


def train_ensemble(cfg: TrainConfig, data: Split, run_dir: str | Path, n: int, *, resume: bool = False,
                   progress: bool = True, log: Callable[[str], None] = stderr_log, command: str | None = None,
                   tta: bool = True, device: str | torch.device = "auto",
                   world: World = SINGLE, overwrite: bool = False,
                   cascade: float | None = None) -> tuple[Path, float]:
    """Train n members (seeds cfg.seed .. cfg.seed + n - 1) into run_dir on `device`; `tta` averages shifted
    views too, and `cascade` lets the first member answer alone where it is that sure (models.modelfile).
    Under torchrun the members are shared out: rank r trains members r, r + W, r + 2W, ... each as an
    ordinary one-process run on its own device, and rank 0 writes the ensemble once all are done.

    Returns the ensemble's model JSON and the members' training seconds, summed.
    With resume, finished members are kept and an interrupted one continues from its checkpoint. Rank 0 holds
    the ensemble's folder for the whole run, and each member's trainer holds the member's.
    """
    if n < 2:
        raise DigitsError("an ensemble needs at least 2 members")
    run = RunDir(run_dir)
    if not world.is_main:
        return members_then_ensemble(cfg, data, run, n, resume, progress, log, command, tta, device, world,
                                     cascade)
    with run.lock():
        if not resume:
            run.make_room(overwrite)
        run.create()
        run.write_config(to_dict(cfg))
        return members_then_ensemble(cfg, data, run, n, resume, progress, log, command, tta, device, world,
                                     cascade)


def members_then_ensemble(cfg: TrainConfig, data: Split, run: RunDir, n: int, resume: bool, progress: bool,
                          log: Callable[[str], None], command: str | None, tta: bool,
                          device: str | torch.device, world: World, cascade: float | None) -> tuple[Path, float]:
    say = log if not world.distributed else (lambda m: log(f"[rank {world.rank}] {m}"))
    for k in range(world.rank, n, world.size):
        member = run.member(k)
        if resume and member.model_json.exists():
            say(f"member {k + 1}/{n}: already trained")
            continue
        say(f"member {k + 1}/{n} (seed {cfg.seed + k})")
        train(replace(cfg, seed=cfg.seed + k), data, member.path, progress=progress and world.is_main, log=say,
              resume=resume and member.holds_run(), command=command, device=device)
    barrier(world)  # every member finished, whichever rank trained it
    histories = [run.member(k).read_metrics() for k in range(n)]
    seconds = sum(h[-1]["seconds"] for h in histories)
    if not world.is_main:
        return run.model_json, seconds
    # The run's learning curves are the members' mean, epoch by epoch.
    run.write_metrics([{key: sum(h[e][key] for h in histories) / n for key in histories[0][e]}
                       for e in range(len(histories[0]))])
    _, va = splits(cfg, data)  # the members' own validation split (--limit included)
    training = {**to_dict(cfg), "ensemble": n, "train_seconds": seconds, "command": command,
                "world_size": world.size}
    members = [f"{run.member(k).path.name}/{run.member(k).model_json.name}" for k in range(n)]
    return write_ensemble(run, members, va, training, tta, cascade), seconds


def write_ensemble(run: RunDir, members: list[str], val: Split, training: dict[str, Any], tta: bool,
                   cascade: float | None = None) -> Path:
    """The ensemble's model.json, with its validation accuracy and refusal threshold measured as it predicts."""
    metas = [read_json(run.path / m) for m in members]
    meta: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "members": members, "tta": tta,
        "architecture": metas[0]["architecture"], "parameters": sum(m["parameters"] for m in metas),
        "classes": metas[0]["classes"], "preprocessing": preprocessing_info(), "training": training,
        "versions": versions(), "reader": reader_stamp(), **({} if cascade is None else {"cascade": cascade}),
    }
    # Measured through Recognizer, the path every prediction takes; the JSON is written once, complete.
    nets = [load_net(run.path / m, mm) for m, mm in zip(members, metas)]
    measured = validation_metrics(Recognizer(LoadedModel(nets, meta, run.model_json, metas), device="cpu"), val,
                                  learned_outliers(metas))
    thresholds = refusal_thresholds(measured)
    meta.update(thresholds)
    meta["metrics"] = {**{k: v for k, v in measured.items() if k not in thresholds},
                       "member_val_accuracy": [m["metrics"]["val_accuracy"] for m in metas]}
    write_json(run.model_json, meta)
    return run.model_json
