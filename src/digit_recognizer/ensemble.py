"""Ensembles: N members of one recipe with consecutive seeds, averaged with test-time shifts.

The run folder holds member-0/ .. member-{N-1}/ (ordinary training runs) and a model.json with "members"
that the one loader (`modelfile.load_model`) turns into an averaged model, so prediction, evaluation,
the report and the server use an ensemble exactly as they use a single model.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .calibration import expected_calibration_error, refusal_stats
from .checkpoint import CHECKPOINT_FILE
from .config import to_dict
from .data.dataset import Split, train_val_split
from .errors import DigitsError
from .modelfile import (FORMAT, FORMAT_VERSION, MODEL_STEM, LoadedModel, load_net, preprocessing_info, read_json,
                        versions, write_json)
from .predict import Recognizer
from .train import TrainConfig, read_metrics, stderr_log, train, write_metrics

MEMBER_DIR = "member-{}"


def train_ensemble(cfg: TrainConfig, data: Split, run_dir: str | Path, n: int, *, resume: bool = False,
                   progress: bool = True, log: Callable[[str], None] = stderr_log,
                   command: str | None = None) -> tuple[Path, float]:
    """Train n members (seeds cfg.seed .. cfg.seed + n - 1) into run_dir.

    Returns the ensemble's model JSON and the members' training seconds, summed.
    With resume, finished members are kept and an interrupted one continues from its checkpoint.
    """
    if n < 2:
        raise DigitsError("an ensemble needs at least 2 members")
    run_dir = Path(run_dir)
    if (run_dir / f"{MODEL_STEM}.json").exists() and not resume:
        raise DigitsError(f"{run_dir} already holds a model; use --resume, or another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", to_dict(cfg))
    histories, seconds, members = [], 0.0, []
    for k in range(n):
        member = run_dir / MEMBER_DIR.format(k)
        members.append(f"{member.name}/{MODEL_STEM}.json")
        if resume and (member / f"{MODEL_STEM}.json").exists():
            log(f"member {k + 1}/{n}: already trained")
            history = read_metrics(member)
        else:
            log(f"member {k + 1}/{n} (seed {cfg.seed + k})")
            result = train(replace(cfg, seed=cfg.seed + k), data, member, progress=progress, log=log,
                           resume=resume and (member / CHECKPOINT_FILE).exists(), command=command)
            history = result.history
        histories.append(history)
        seconds += history[-1]["seconds"]
    # The run's learning curves are the members' mean, epoch by epoch.
    write_metrics(run_dir, [{key: sum(h[e][key] for h in histories) / n for key in histories[0][e]}
                            for e in range(len(histories[0]))])
    _, va = train_val_split(data, cfg.val_fraction, cfg.split_seed)
    training = {**to_dict(cfg), "ensemble": n, "train_seconds": seconds, "command": command}
    return write_ensemble(run_dir, members, va, training), seconds


def write_ensemble(run_dir: Path, members: list[str], val: Split, training: dict[str, Any]) -> Path:
    """The ensemble's model.json, with its validation accuracy and refusal threshold measured as it predicts."""
    json_path = run_dir / f"{MODEL_STEM}.json"
    metas = [read_json(run_dir / m) for m in members]
    meta: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "members": members, "tta": True,
        "architecture": metas[0]["architecture"], "parameters": sum(m["parameters"] for m in metas),
        "classes": metas[0]["classes"], "preprocessing": preprocessing_info(), "training": training,
        "versions": versions(),
    }
    # Measured through Recognizer, the path every prediction takes; the JSON is written once, complete.
    nets = [load_net(run_dir / m, mm) for m, mm in zip(members, metas)]
    recognizer = Recognizer(LoadedModel(nets, meta, json_path, metas))
    probs = recognizer.probabilities(val.images)  # (N, 10): members x shifted views, averaged
    refusals = refusal_stats(probs, val.labels)
    meta["metrics"] = {"val_accuracy": (probs.argmax(1) == val.labels).float().mean().item(),
                       "val_ece": expected_calibration_error(probs, val.labels),
                       **{k: v for k, v in refusals.items() if k.startswith("val_")},
                       "member_val_accuracy": [m["metrics"]["val_accuracy"] for m in metas]}
    meta["min_confidence"] = refusals["min_confidence"]
    write_json(json_path, meta)
    return json_path
