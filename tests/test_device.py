"""--device: every command runs on the CPU when asked, an unavailable device is a one-line error naming it,
precision is chosen per device, and the device-resident training path is the one the CPU runs too."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference import device as dev


def digits_cli(*args: str, cwd=None, cuda_visible: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    return subprocess.run([sys.executable, "-m", "digit_recognizer", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_auto_and_cpu_resolve_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "device_available", lambda kind: kind == "cpu")
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec, message", [("cuda", "device 'cuda' is not available"),
                                           ("cuda:3", "device 'cuda:3' is not available"),
                                           ("mps", "device 'mps' is not available"),
                                           ("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device")])
def test_unavailable_devices_are_named(monkeypatch, spec, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "device_available", lambda kind: kind == "cpu")
    with pytest.raises(DigitsError, match=message):
        dev.resolve_device(spec)


def test_a_missing_gpu_index_names_the_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DigitsError, match=r"2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        dev.resolve_device("cuda:2")


def test_precision_is_resolved_per_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.engine("auto", 1, True, "cuda") == "bf16"  # no small-batch fp32 rule on a GPU
    assert dev.engine("auto", 10_000, True, "mps") == "fp32"
    with pytest.raises(DigitsError, match="int8 runs on the CPU only"):
        dev.engine("int8", 100, True, "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a pre-Ampere GPU
    assert dev.use_bf16("auto", "cuda") is False


def test_cuda_without_cuda_is_one_line_on_every_command(tmp_path):
    img = tmp_path / "d.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    commands = [["train", "--limit", "100"], ["evaluate"], ["predict", str(img)], ["read", str(img)],
                ["export", "--onnx", str(tmp_path / "m.onnx")]]
    # serve names its missing extra first where it is not installed (a GPU machine without FastAPI)
    commands += [["serve"]] if importlib.util.find_spec("fastapi") else []
    for args in commands:
        res = digits_cli(*args, "--device", "cuda", cuda_visible="")
        assert res.returncode == 1, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "cuda" in lines[0].lower() and "Traceback" not in res.stderr, (args, lines)


def test_device_cpu_on_every_command(fake_data_dir, tmp_path, mnist):
    run = tmp_path / "run"
    res = digits_cli("train", "--epochs", "1", "--limit", "300", "--no-progress", "--no-verify", "--no-report",
                     "--data-dir", str(fake_data_dir), "--out", str(run), "--device", "cpu")
    assert res.returncode == 0, res.stderr
    import json
    assert json.loads((run / "model.json").read_text())["training"]["device"] == "cpu"
    img = tmp_path / "seven.png"
    Image.fromarray(mnist.test.images[0].numpy()).save(img)
    res = digits_cli("predict", "--json", "--device", "cpu", str(img))
    assert res.returncode == 0 and json.loads(res.stdout)["digit"] == int(mnist.test.labels[0]), res.stderr
    assert digits_cli("read", "--device", "cpu", str(img)).returncode == 0
    assert digits_cli("export", "--onnx", str(tmp_path / "m.onnx"), "--device", "cpu").returncode == 0
    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(mnist.test.images[1].numpy()).save(folder / "a.png")
    (folder / "labels.csv").write_text(f"file,label\na.png,{int(mnist.test.labels[1])}\n")
    res = digits_cli("evaluate", "--images", str(folder), "--device", "cpu")
    assert res.returncode == 0 and "100.00%" in res.stdout, res.stdout + res.stderr
    if importlib.util.find_spec("fastapi") is None:
        return  # serve needs its extra; the rest of every command ran on the CPU
    from digit_recognizer.testing.localserver import local_server
    with local_server("--device", "cpu") as url:
        import urllib.request
        assert b"ok" in urllib.request.urlopen(url + "/api/health").read()


def test_training_keeps_the_split_and_the_random_draws_on_the_device(monkeypatch):
    """The loop indexes a device-resident split with a device generator (the GPU path, run on the CPU)."""
    from digit_recognizer.data.dataset import Split
    from digit_recognizer.training import epoch, loop
    from digit_recognizer.training.recipes import make_config

    cfg = make_config("best", epochs=1, limit=256, batch_size=64)
    seen = []
    real = epoch.augmented

    def spy(cfg_, xb, gen, *rest):
        seen.append((xb.device, gen.device))
        return real(cfg_, xb, gen, *rest)

    monkeypatch.setattr(epoch, "augmented", spy)
    g = torch.Generator().manual_seed(0)
    data = Split(torch.randint(0, 256, (256, 28, 28), dtype=torch.uint8, generator=g),
                 torch.randint(0, 10, (256,), generator=g))
    state = loop.set_up(cfg, torch.device("cpu"))
    tr = loop.on_device(data, torch.device("cpu"))
    a = epoch.run_epoch(cfg, state, tr, 0, False, False)
    state2 = loop.set_up(cfg, torch.device("cpu"))
    b = epoch.run_epoch(cfg, state2, tr, 0, False, False)
    assert seen and all(d == torch.device("cpu") and g_ == torch.device("cpu") for d, g_ in seen)
    assert a["train_loss"] == b["train_loss"]  # (seed, epoch) fixes every draw: a resumed epoch repeats


def test_fast_recipe_chooses_its_settings_by_device():
    from digit_recognizer.training.recipes import RECIPES, make_config

    cpu, gpu = make_config("fast", "cpu"), make_config("fast", "cuda")
    assert cpu == RECIPES["fast"]
    assert (gpu.model, gpu.batch_size, gpu.epochs) == ("wide", 512, 3)
    assert make_config("fast", "cuda", batch_size=128).batch_size == 128  # the user's word wins
    assert make_config("tutorial", "cuda") == RECIPES["tutorial"]  # the tutorial stays the tutorial


@pytest.mark.slow
def test_gpu_benchmark_script_runs_end_to_end_on_the_cpu(fake_data_dir):
    """benchmarks/gpu.py is run on GPU machines; --quick checks every path of it here."""
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick",
                          "--seeds", "1", "--no-verify", "--data-dir", str(fake_data_dir)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert res.returncode == 0, res.stderr[-2000:]
    import json
    records = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["what"] for r in records][:2] == ["fast recipe on cpu (the default)",
                                                 "digits train --device cpu (fresh process)"]
    assert any(line.startswith("sealed in") for line in records[1]["log"])  # the fixed costs, timed
    assert records[-1]["ms_500_images"] > 0 and records[-1]["ms_one_image"] > 0


def test_a_forced_precision_the_cpu_lacks_is_warned_once(monkeypatch):
    from digit_recognizer.errors import DigitsWarning

    monkeypatch.setattr(dev, "cpu_bf16_is_native", lambda: False)
    monkeypatch.setattr(dev, "cpu_has", lambda feature: False)
    monkeypatch.setattr(dev, "int8_is_available", lambda: True)
    dev.warn_once.cache_clear()
    with pytest.warns(DigitsWarning, match="bf16 is emulated"):
        assert dev.engine("bf16", 1000, True) == "bf16"
    with pytest.warns(DigitsWarning, match="without VNNI"):
        assert dev.engine("int8", 1000, True) == "int8"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dev.engine("bf16", 1000, True)  # once per process: no second warning
        dev.engine("auto", 1000, True)  # auto never warns
    dev.warn_once.cache_clear()
