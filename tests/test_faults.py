"""Faults an operator meets: two runs on one folder, a full or read-only disk, a stopped run, model files that
change under a server, odd entries in a folder."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_digits
from digit_recognizer.errors import DigitsError
from digit_recognizer.models.modelfile import default_model_path, save_model
from digit_recognizer.models.net import build_model
from digit_recognizer.training.rundir import RunDir

CLI = [sys.executable, "-c", "from digit_recognizer.app.cli import main; main()"]


def smoke_args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--limit", "300", "--epochs", "1", "--no-report", "--no-verify", "--data-dir", str(data_dir),
            "--out", str(out), "--precision", "fp32", "--device", "cpu", *extra]


@contextlib.contextmanager
def held_elsewhere(folder: Path):
    """Another process holding the run folder's lock, for as long as the block runs."""
    held = subprocess.Popen([sys.executable, "-c", "import time\n"
                             "from digit_recognizer.training.rundir import RunDir\n"
                             f"with RunDir({str(folder)!r}).lock():\n"
                             "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "held"
        yield held.pid
    finally:
        held.kill()
        held.wait()


def test_a_run_folder_belongs_to_one_process(tmp_path):
    with held_elsewhere(tmp_path / "run") as pid:
        with pytest.raises(DigitsError, match=f"in use by another training process \\(pid {pid}\\)"):
            with RunDir(tmp_path / "run").lock():
                pass
    with RunDir(tmp_path / "run").lock():  # the holder is gone: the lock went with it
        assert (tmp_path / "run" / ".owner").read_text() == str(os.getpid())
    assert not (tmp_path / "run" / ".owner").exists()


@pytest.mark.smoke
def test_a_second_train_on_a_busy_folder_is_refused(tmp_path, fake_data_dir):
    with held_elsewhere(tmp_path / "run") as pid:
        res = run_digits(*smoke_args(fake_data_dir, tmp_path / "run"))
        assert res.returncode == 1 and f"pid {pid}" in res.stderr, res.stderr
        assert not (tmp_path / "run" / "config.json").exists()  # nothing written by the refused run


@pytest.mark.smoke
def test_overwrite_starts_again_and_the_advice_says_so(tmp_path, fake_data_dir):
    out = tmp_path / "run"
    assert run_digits(*smoke_args(fake_data_dir, out)).returncode == 0
    again = run_digits(*smoke_args(fake_data_dir, out, "--seed", "3"))
    assert again.returncode == 2 and "--overwrite starts again" in again.stderr
    over = run_digits(*smoke_args(fake_data_dir, out, "--seed", "3", "--overwrite"))
    assert over.returncode == 0, over.stderr
    assert json.loads((out / "model.json").read_text())["training"]["seed"] == 3


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on the device"),
                                         (errno.EROFS, "the file system is read-only")])
def test_a_full_or_read_only_disk_is_one_line(tmp_path, fake_data_dir, monkeypatch, capsys, code, words):
    from digit_recognizer.app import cli
    from digit_recognizer.data import formats

    def refuse(_fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(formats.os, "fsync", refuse)  # every staged write ends in an fsync
    monkeypatch.setattr(sys, "argv", ["digits", *smoke_args(fake_data_dir, tmp_path / "run")])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 1 and "Traceback" not in err
    assert errors == [f"error: {tmp_path / 'run' / 'config.json'}: {words}"]


@pytest.mark.smoke
def test_a_real_full_disk_is_one_line(tmp_path, fake_data_dir):
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root here ({mounted.stderr.decode().strip()[:80]})")
    try:
        (disk / "filler").write_bytes(b"\0" * 40_000)  # room for the config, not for a checkpoint
        res = run_digits(*smoke_args(fake_data_dir, disk / "run"))
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert errors == [f"error: {disk / 'run' / 'checkpoint.safetensors'}: no space left on the device; "
                          "training stopped after epoch 1 (no checkpoint was saved: --resume starts at epoch 1)"]
        assert sorted(p.name for p in (disk / "run").iterdir() if not p.name.startswith(".")) == ["config.json"]
    finally:
        subprocess.run(["umount", str(disk)])


def test_a_model_is_both_files_or_neither(tmp_path, monkeypatch):
    from digit_recognizer.data import formats

    real_open, calls = open, []

    def failing_second(path, *args, **kwargs):  # the description's staging fails: the disk filled up
        if str(path).endswith(".tmp"):
            calls.append(path)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(formats, "open", failing_second, raising=False)
    with pytest.raises(OSError) as e:
        save_model(tmp_path / "model", build_model("fast"))
    assert e.value.filename == str(tmp_path / "model.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no weights without their description
    monkeypatch.undo()
    save_model(tmp_path / "model", build_model("fast"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


@pytest.mark.smoke
def test_resume_says_where_it_starts(tmp_path, fake_data_dir):
    out = tmp_path / "run"
    first = subprocess.run([*CLI, *smoke_args(fake_data_dir, out, "--epochs", "2")], capture_output=True, text=True)
    assert first.returncode == 0
    (out / "checkpoint.safetensors").unlink()  # stopped before its first checkpoint
    (out / "model.json").unlink()
    res = run_digits(*smoke_args(fake_data_dir, out, "--epochs", "2", "--resume"))
    assert res.returncode == 0 and "no checkpoint was saved there" in res.stderr and "from epoch 1" in res.stderr


@pytest.mark.smoke
def test_sigterm_stops_training_with_a_resume_hint(tmp_path, fake_data_dir):
    out = tmp_path / "run"
    proc = subprocess.Popen([*CLI, *smoke_args(fake_data_dir, out, "--epochs", "200", "--no-progress")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert f"terminated; continue with: digits train --resume --out {out}" in err
    assert not (out / ".owner").exists()  # the lock and its note went with the run


@pytest.mark.smoke
def test_a_dangling_link_and_an_odd_name_are_named(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    page = np.full((120, 100), 235, np.uint8)
    page[20:100, 45:53] = 20
    Image.fromarray(page).save(folder / "one.png")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    odd = os.fsencode(str(folder)) + b"/zahl_\xff.png"
    shutil.copy(folder / "one.png", odd)
    res = run_digits("predict", str(folder))
    assert res.returncode == 3, res.stderr  # some files could not be read
    assert f"{folder / 'gone.png'}: a link to {tmp_path / 'nowhere.png'}, which does not exist" in res.stderr
    assert "zahl_\\377.png: 1" in res.stdout and "\\udc" not in res.stdout


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError("timed out")


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.smoke
def test_workers_serve_the_model_the_server_started_with(tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from digit_recognizer.testing.localserver import local_server_process

    model = tmp_path / "mine"
    shutil.copytree(default_model_path().parent, model)
    with local_server_process("--workers", "2", "--model", str(model / "model.json"), timeout=90) as (url, proc):
        status, info = get(url + "/api/model")
        assert status == 200 and info["name"] == "mine"
        sha = info["sha256"]
        # The files on disk change, then break; a worker dies and is replaced.
        for weights in model.glob("*.safetensors"):  # every network's, the members' included
            weights.write_bytes(b"truncated")
        victim = get(url + "/api/health")[1]["worker"]
        os.kill(victim, signal.SIGKILL)
        workers = wait_for(lambda: (ws := {get(url + "/api/health")[1]["worker"] for _ in range(12)})
                           and victim not in ws and len(ws) == 2 and ws)
        assert len(workers) == 2
        assert {get(url + "/api/model")[1]["sha256"] for _ in range(12)} == {sha}
        # Now the server's own copy breaks too: a replaced worker cannot start, and health says so.
        worker = next(iter(workers))  # a worker process was started with the settings in its environment
        env = dict(e.split("=", 1) for e in Path(f"/proc/{worker}/environ").read_text().split("\0") if "=" in e)
        private = Path(json.loads(env["DIGITS_SERVE_SETTINGS"])["model"])
        assert private.parent != model and private.is_file()
        for weights in private.parent.glob("*.safetensors"):
            weights.write_bytes(b"truncated")
        os.kill(worker, signal.SIGKILL)
        status, body = wait_for(lambda: (h := get(url + "/api/health"))[0] == 503 and h)
        assert "a worker process could not start" in body["error"] and "corrupt" in body["error"]


@pytest.mark.smoke
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stopped_server_exits_cleanly(workers):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from digit_recognizer.testing.localserver import local_server_process

    for sig in (signal.SIGINT, signal.SIGTERM):
        with local_server_process("--workers", workers, timeout=90) as (_, proc):
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 0, (workers, sig)
