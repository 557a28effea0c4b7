"""The CLI on a small offline data set (fast tier): smoke training, resume rules, ensembles, run folders."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_digits
from digit_recognizer.inference.recognizer import Recognizer

SMOKE = ("--epochs", "1", "--limit", "300", "--no-progress", "--no-verify")


def smoke_train(data_dir: Path, *args: str, cwd: Path | None = None):
    import os
    import subprocess

    cmd = [sys.executable, "-m", "digit_recognizer", "train", *SMOKE, "--data-dir", str(data_dir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})


@pytest.mark.smoke
def test_smoke_training_logs_throughput_and_names_its_model(fake_data_dir, tmp_path):
    res = smoke_train(fake_data_dir, "--no-report", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "images/s" in res.stderr and "GFLOP/s" in res.stderr
    # What follows the last epoch, timed step by step (on a CPU the validation outliers are drawn then).
    sealed = re.search(r"sealed in ([\d.]+) s: calibration ([\d.]+), int8 ranges [\d.]+, refusals measured "
                       r"\(outliers drawn\) [\d.]+, saving [\d.]+$", res.stderr, re.M)
    assert sealed and float(sealed[1]) >= float(sealed[2]) > 0, res.stderr
    assert "training steps:" not in res.stderr  # said on CUDA only
    run = tmp_path / "runs" / "fast-seed0"
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[0]["images_per_second"] > 0 and history[0]["gflops"] > 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["training"]["limit"] == 300 and meta["training"]["train_size"] == 270  # 10% for validation
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()
    assert "--model latest" in res.stdout  # the commands for *this* model (runs/latest points to it)


@pytest.mark.smoke
def test_resume_refuses_options_that_differ(fake_data_dir, tmp_path):
    run = tmp_path / "run"
    assert smoke_train(fake_data_dir, "--no-report", "--out", str(run)).returncode == 0
    res = smoke_train(fake_data_dir, "--no-report", "--out", str(run), "--resume", "--lr", "0.5")
    assert res.returncode == 1 and "lr: 0.2 -> 0.5" in res.stderr and "Traceback" not in res.stderr
    res = smoke_train(fake_data_dir, "--no-report", "--out", str(run), "--resume")  # the same settings: fine
    assert res.returncode == 0, res.stderr


@pytest.mark.smoke
def test_ensemble_honours_no_tta(fake_data_dir, tmp_path):
    for flag, expected in (("--no-tta", False), ("--tta", True)):
        run = tmp_path / flag
        res = smoke_train(fake_data_dir, "--no-report", "--ensemble", "2", flag, "--out", str(run))
        assert res.returncode == 0, res.stderr
        assert json.loads((run / "model.json").read_text())["tta"] is expected


@pytest.mark.smoke
def test_cascade_is_recorded_and_needs_an_ensemble_or_shifted_views(fake_data_dir, tmp_path):
    for args in (("--ensemble", "2", "--cascade", "0.9"), ("--tta", "--cascade", "0.9")):
        run = tmp_path / args[0].strip("-")
        res = smoke_train(fake_data_dir, "--no-report", *args, "--out", str(run))
        assert res.returncode == 0, res.stderr
        meta = json.loads((run / "model.json").read_text())
        assert meta["cascade"] == 0.9 and meta["tta"] is True
        assert Recognizer.load(run).cascade == 0.9
    single = ("error: --cascade needs --ensemble 2 or more, or a model that predicts with shifted views (--tta), "
              "and a confidence above 0 and at most 1")
    for bad, said in ((("--cascade", "0.9"), single), (("--tta", "--cascade", "1.5"), single),
                      (("--ensemble", "2", "--cascade", "1.5"), "error: --cascade needs a confidence above 0 and "
                                                                "at most 1")):
        res = smoke_train(fake_data_dir, "--no-report", *bad, "--out", str(tmp_path / "other"))
        assert res.returncode == 2 and res.stderr.strip() == said, res.stderr
        assert not (tmp_path / "other").exists()


@pytest.mark.smoke
def test_report_on_a_smoke_run(fake_data_dir, tmp_path):
    run = tmp_path / "run"
    res = smoke_train(fake_data_dir, "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert (run / "report.html").is_file() and "test accuracy" in res.stdout


@pytest.mark.parametrize("overrides, message", [
    ({"schedule": "onecylce"}, "unknown schedule"),
    ({"optimizer": "adam"}, "unknown optimizer"),
    ({"limit": -1}, "--limit"),
])
def test_configs_are_checked_before_any_data(overrides, message):
    from digit_recognizer.errors import DigitsError
    from digit_recognizer.training.recipes import make_config

    with pytest.raises(DigitsError, match=message):
        make_config("fast", **overrides)


@pytest.mark.smoke
def test_bad_option_fails_before_loading_data(tmp_path):
    res = run_digits("train", "--precision", "fp8", "--data-dir", str(tmp_path / "nothing-here"))
    assert res.returncode == 2 and "unknown precision" in res.stderr and not (tmp_path / "nothing-here").exists()


def test_serve_without_its_extra_says_what_to_install(monkeypatch):
    import importlib.util

    from typer.testing import CliRunner

    from digit_recognizer.app import cli
    from digit_recognizer.errors import DigitsError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    result = CliRunner().invoke(cli.app, ["serve"])
    assert isinstance(result.exception, DigitsError)
    assert "pip install 'digit-recognizer[serve]'" in str(result.exception) and "fastapi" in str(result.exception)


@pytest.mark.smoke
def test_python_m_works_like_digits():
    import subprocess

    res = subprocess.run([sys.executable, "-m", "digit_recognizer", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "train" in res.stdout and "predict" in res.stdout


def test_shipped_model_file_has_no_machine_paths():
    from digit_recognizer.models.modelfile import default_model_path

    def strings(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)
        elif isinstance(obj, str):
            yield obj

    shipped = default_model_path()
    paths = sorted(shipped.parent.glob("*.json"))  # the model, and its members and marker reader where it has them
    assert shipped in paths
    for path in paths:
        for s in strings(json.loads(path.read_text())):
            assert not any(part.startswith(("/", "~")) or ":\\" in part for part in s.split()), s


def test_model_latest_and_every_command_names_its_model(fake_data_dir, tmp_path, mnist):
    from PIL import Image

    res = run_digits_in(tmp_path, "predict", "--model", "latest", "x.png")
    assert res.returncode == 1 and "no runs/latest" in res.stderr
    assert smoke_train(fake_data_dir, "--no-report", cwd=tmp_path).returncode == 0
    img = tmp_path / "x.png"
    Image.fromarray(mnist.test.images[0].numpy()).save(img)
    res = run_digits_in(tmp_path, "predict", "--model", "latest", "x.png")
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [f"model: {Path('runs') / 'latest' / 'model.json'}"]
    res = run_digits_in(tmp_path, "predict", "x.png")
    assert "model: the shipped model" in res.stderr


def run_digits_in(cwd: Path, *args: str):
    import os
    import subprocess

    return subprocess.run([sys.executable, "-m", "digit_recognizer", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO / "src")})


@pytest.mark.smoke
def test_an_empty_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_digits("predict", str(tmp_path / "empty"))
    assert res.returncode == 1 and f"no images in {tmp_path / 'empty'}" in res.stderr


@pytest.mark.smoke
def test_evaluate_images_prints_mistakes_plainly(tmp_path):
    from PIL import Image

    folder = tmp_path / "set"
    folder.mkdir()
    Image.new("L", (40, 40), 255).save(folder / "blank.png")
    (folder / "labels.csv").write_text("file,label\nblank.png,3\n")
    res = run_digits("evaluate", "--images", str(folder))
    assert res.returncode == 0, res.stderr
    assert "blank.png: label 3, refused" in res.stdout and "{" not in res.stdout


def test_report_pictures_legend_ticks_and_losses(tmp_path, monkeypatch):
    """The class-count legend sits clear of the bars; epoch ticks are whole numbers; a smoothed training loss
    is labelled as such next to the plain validation loss."""
    import torch

    from digit_recognizer.app import report
    from digit_recognizer.data.dataset import Split

    figs = []
    monkeypatch.setattr(report, "save", lambda fig, path: figs.append(fig))
    g = torch.Generator().manual_seed(0)
    split = Split(torch.zeros(500, 28, 28, dtype=torch.uint8), torch.randint(0, 10, (500,), generator=g))
    report.class_counts({"train": split, "validation": split, "test": split}, tmp_path / "c.png")
    history = [{"epoch": e, "train_loss": 0.6, "val_loss": 0.1, "train_accuracy": 0.9, "val_accuracy": 0.95}
               for e in (1, 2)]
    report.learning_curves(history, tmp_path / "l.png", label_smoothing=0.1)
    counts, curves = figs
    counts.canvas.draw()
    ax = counts.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not any(legend.overlaps(bar.get_window_extent()) for bar in ax.patches)
    curves.canvas.draw()
    for ax in curves.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert labels == ["train (label smoothing 0.1)", "validation (plain cross-entropy)"]


def test_image_grid_shows_every_digit_and_colours_wrong_titles(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from digit_recognizer.app.report import image_grid

    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    for i in range(4):
        images[i, 4 + i:10 + i, 10:14] = 255  # a bar at a different height in each tile
    image_grid(images, ["pred 1 / true 1", "pred 2 / true 7", "a", "b\nc"], tmp_path / "g.png",
               ["black", "red", "black", "black"])
    page = np.asarray(Image.open(tmp_path / "g.png").convert("RGB")).astype(int)
    from scipy import ndimage

    black = (page < 30).all(-1)
    labels, n = ndimage.label(black)
    tiles = [sl for k, sl in enumerate(ndimage.find_objects(labels)) if (labels[sl] == k + 1).sum() > 3000]
    assert len(tiles) == 4  # every digit, as a black square (titles are small marks)
    tops = []
    for sl in tiles:
        inner = (page[sl] == 255).all(-1)  # the white bar inside the tile
        tops.append(np.argwhere(inner)[:, 0].min() * 28 // inner.shape[0])
    assert sorted(tops) == [4, 5, 6, 7]  # each bar where it was drawn, in digit pixels
    red = (page[..., 0] > 200) & (page[..., 1] < 80) & (page[..., 2] < 80)
    assert red.any()  # the wrong prediction's title


@pytest.mark.smoke
def test_progress_bars_become_one_line_per_epoch_in_a_log(fake_data_dir, tmp_path):
    args = [a for a in SMOKE if a != "--no-progress"]
    cmd = [sys.executable, "-m", "digit_recognizer", "train", *args, "--epochs", "2", "--data-dir",
           str(fake_data_dir), "--no-report", "--out", str(tmp_path / "run")]
    import subprocess

    with open(tmp_path / "train.log", "w") as log:  # stderr is a file, as under nohup or a scheduler
        res = subprocess.run(cmd, stdout=log, stderr=log, timeout=300)
    text = (tmp_path / "train.log").read_text()
    assert res.returncode == 0, text
    assert "\r" not in text and "batch/s" not in text  # no bar redraws
    assert len([line for line in text.splitlines() if line.startswith("epoch ")]) == 2
