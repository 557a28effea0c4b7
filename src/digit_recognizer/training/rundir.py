"""The run folder: one owner for every file a training run writes.

    runs/<name>/
      config.json              the TrainConfig (JSON), written first
      metrics.jsonl            one line per finished epoch, rewritten whole with each checkpoint
      checkpoint.safetensors   model + optimizer (+ EMA) after the last finished epoch
      model.json, model.safetensors   the finished model (the one loader reads it)
      member-0/ .. member-N/   an ensemble's members, each a run folder of its own
      report.html, report/*.png       the report
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.formats import atomic_write_bytes, remove_stale_temporaries, temp_path
from ..errors import DigitsError
from ..models.modelfile import MODEL_STEM, write_json

RUNS_ROOT = Path("runs")  # where `digits train` puts runs unless --out says otherwise
LATEST = "latest"  # runs/latest: a link to the newest run
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.safetensors"
MEMBER = "member-{}"
REPORT_DIR = "report"
REPORT_PAGE = "report.html"


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
