"""The run folder: one owner for every file a training run writes.

    runs/<name>/
      config.json              the TrainConfig (JSON), written first
      metrics.jsonl            one line per finished epoch, rewritten whole with each checkpoint
      checkpoint.safetensors   model + optimizer (+ EMA) after the last finished epoch
      model.json, model.safetensors   the finished model (the one loader reads it)
      member-0/ .. member-N/   an ensemble's members, each a run folder of its own
      report.html, report/*.png       the report
      .lock, .owner            held by the process training into the folder, and its pid
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.formats import atomic_write_bytes, remove_stale_temporaries, temp_path
from ..errors import DigitsError, UsageError
from ..models.modelfile import MODEL_STEM, write_json

RUNS_ROOT = Path("runs")  # where `digits train` puts runs unless --out says otherwise
LATEST = "latest"  # runs/latest: a link to the newest run
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.safetensors"
MEMBER = "member-{}"
REPORT_DIR = "report"
REPORT_PAGE = "report.html"
LOCK, OWNER = ".lock", ".owner"


def run_name(recipe: str, seed: int, ensemble: int = 1) -> str:
    return f"{recipe}-seed{seed}" + (f"-x{ensemble}" if ensemble > 1 else "")


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def model_stem(self) -> Path:
        return self.path / MODEL_STEM

    @property
    def model_json(self) -> Path:
        return self.path / f"{MODEL_STEM}.json"

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    @property
    def report_page(self) -> Path:
        return self.path / REPORT_PAGE

    def member(self, k: int) -> "RunDir":
        return RunDir(self.path / MEMBER.format(k))

    def holds_run(self) -> bool:
        """Whether a training run has started here (its config is the first file it writes)."""
        return any(p.exists() for p in (self.config, self.checkpoint, self.model_json, self.metrics))

    def make_room(self, overwrite: bool) -> None:
        """Refuse a folder that holds a run (a usage error naming the ways on), or, with `overwrite`, clear it."""
        if not self.holds_run():
            return
        if not overwrite:
            raise UsageError(f"{self.path} already holds a training run: --overwrite starts again there, --resume "
                             f"continues it with its own settings, or use another --out")
        self.clear()

    def clear(self) -> None:
        """Remove a previous run's files (--overwrite): config, metrics, checkpoint, model, report, members."""
        import shutil

        for p in (self.config, self.metrics, self.checkpoint, self.report_page, *self.path.glob(f"{MODEL_STEM}*")):
            p.unlink(missing_ok=True)
        for d in (self.report_dir, *self.path.glob(MEMBER.format("*"))):
            if d.is_dir():
                shutil.rmtree(d)

    def lock(self) -> "RunLock":
        return RunLock(self)

    def create(self) -> None:
        """Make the folder, removing what a killed write left in it."""
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)

    def write_config(self, cfg: dict[str, Any]) -> None:
        write_json(self.config, cfg)

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise DigitsError(f"{self.path}: not a finished training run (no {CONFIG})")
        return read_plain_json(self.config)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        """metrics.jsonl, rewritten whole each epoch so it always matches the checkpoint."""
        atomic_write_bytes(self.metrics, "".join(json.dumps(r) + "\n" for r in history).encode())

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch history; a missing or corrupt file is a one-line error."""
        try:
            return [json.loads(line) for line in self.metrics.read_text().splitlines() if line]
        except FileNotFoundError:
            raise DigitsError(f"{self.path}: not a finished training run (missing {METRICS})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DigitsError(f"{self.metrics}: corrupt ({e})") from None

    def mark_latest(self) -> None:
        """Point runs/latest at this run when it lives under the default runs folder (a relative link)."""
        root = self.path.parent
        if root.resolve() != RUNS_ROOT.resolve():
            return
        link = root / LATEST
        tmp = temp_path(link)
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path.name, target_is_directory=True)
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)  # a file system without links: the run is still where it says


def read_plain_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DigitsError(f"{path}: corrupt ({e})") from None
    if not isinstance(data, dict):
        raise DigitsError(f"{path}: expected a JSON object")
    return data


class RunLock:
    """An exclusive hold on a run folder for one training process, from before its first write to its end.

    The operating system's lock (filelock) goes with the process, so a killed run never leaves the folder
    locked; the holder's pid, in OWNER, is for the message a second process gets."""

    def __init__(self, run: RunDir) -> None:
        from filelock import FileLock

        self.run = run
        self.file = FileLock(str(run.path / LOCK), timeout=0)

    def __enter__(self) -> "RunLock":
        from filelock import Timeout

        self.run.path.mkdir(parents=True, exist_ok=True)
        try:
            self.file.acquire()
        except Timeout:
            raise DigitsError(f"{self.run.path} is in use by another training process{self.holder()}; wait for it "
                              "to finish, or use another --out") from None
        try:  # a note for the message above; the lock itself is the operating system's
            (self.run.path / OWNER).write_text(str(os.getpid()))
        except OSError:
            pass  # a full or read-only disk: the run's own first write will say so
        return self

    def holder(self) -> str:
        try:
            pid = (self.run.path / OWNER).read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def __exit__(self, *exc: object) -> None:
        try:
            (self.run.path / OWNER).unlink(missing_ok=True)
        except OSError:
            pass
        self.file.release()
