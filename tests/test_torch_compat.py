"""Other PyTorch releases: every private or version-specific torch API we touch has a fallback.

Each test removes such an API (as a release without it would) and shows that training still finishes and
the model still predicts.
"""
from __future__ import annotations

import sys

import pytest
import torch

from digit_recognizer.inference import device as hardware
from digit_recognizer.inference import int8 as quantize
from digit_recognizer.training import optim
from digit_recognizer.data.dataset import Split
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.training.loop import train
from digit_recognizer.training.recipes import make_config

PRIVATE_PROBES = [probe for probe, _ in hardware.CPU_FEATURES.values()]


def tiny_split(n: int = 320, seed: int = 0) -> Split:
    """Random 'digits': enough to run every step of training (no MNIST download)."""
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g),
                 torch.arange(n) % 10)


def clear_caches() -> None:
    for fn in (hardware.cpuinfo_flags, hardware.cpu_bf16_is_native, hardware.int8_is_available,
               hardware.int8_is_fast):
        fn.cache_clear()


@pytest.fixture
def fresh_caches():
    clear_caches()
    yield
    clear_caches()


def train_tiny(tmp_path):
    lines: list[str] = []
    cfg = make_config("fast", epochs=1, batch_size=64)
    # The CPU path, whose private APIs these tests take away (int8 runs on the CPU only), on a GPU machine too.
    result = train(cfg, tiny_split(), tmp_path / "run", progress=False, log=lines.append, device="cpu")
    return result, lines


def test_training_finishes_without_private_torch_apis(tmp_path, monkeypatch, fresh_caches):
    # torch's own tracer reads the fx setting in releases that have it, so the setting is renamed from our
    # side to one no release has, rather than deleted from torch.
    monkeypatch.setattr(quantize, "FX_NO_STACK_TRACES", "a_setting_this_release_lacks")
    for probe in PRIVATE_PROBES:
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    result, _ = train_tiny(tmp_path)
    recognizer = Recognizer.load(result.model_json, precision="fp32", device="cpu")
    assert len(recognizer.predict_arrays(tiny_split(4, seed=1).images)) == 4
    if hardware.int8_is_available():  # the ranges were recorded and build an int8 network
        assert "int8_ranges" in recognizer.meta
        int8 = Recognizer.load(result.model_json, precision="int8", device="cpu")
        assert int8.probabilities(tiny_split(64, seed=2).images).shape == (64, 10)


def test_training_finishes_without_int8_quantization(tmp_path, monkeypatch, fresh_caches):
    # A release whose torch.ao quantization has moved out (to torchao): import fails.
    monkeypatch.setitem(sys.modules, "torch.ao.quantization.quantize_fx", None)
    assert not hardware.int8_is_available()
    result, lines = train_tiny(tmp_path)
    assert any("int8 ranges not recorded" in line for line in lines)
    recognizer = Recognizer.load(result.model_json, device="cpu")
    assert "int8_ranges" not in recognizer.meta
    assert recognizer.probabilities(tiny_split(64, seed=2).images).shape == (64, 10)  # auto falls back


@pytest.mark.parametrize("feature", sorted(hardware.CPU_FEATURES))
def test_cpu_feature_fallback_agrees_with_torch(feature, monkeypatch, fresh_caches):
    probe, _ = hardware.CPU_FEATURES[feature]
    if not hasattr(torch.cpu, probe) or sys.platform != "linux":
        pytest.skip(f"no torch.cpu.{probe} or no /proc/cpuinfo to compare with")
    expected = bool(getattr(torch.cpu, probe)())
    monkeypatch.delattr(torch.cpu, probe)
    assert hardware.cpu_has(feature) == expected


def test_cpu_bf16_ignores_cuda(monkeypatch, fresh_caches):
    # A CUDA build (or a GPU) must not make CPU work choose bf16.
    native = hardware.cpu_bf16_is_native()
    hardware.cpu_bf16_is_native.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    from digit_recognizer.inference.device import engine, use_bf16

    assert use_bf16("auto") == native
    assert engine("auto", 10_000, False) == ("bf16" if native else "fp32")


def test_functional_sgd_of_another_shape_is_not_used(monkeypatch):
    import torch.optim.sgd as sgd_module

    monkeypatch.setattr(sgd_module, "sgd", lambda params, grads, bufs, *, lr: None)
    assert optim.functional_sgd() is None


def test_training_finishes_with_torchs_own_sgd(tmp_path, monkeypatch):
    # A release without the functional form (or with another one) trains with torch.optim.SGD.
    monkeypatch.setattr(optim, "functional_sgd", lambda: None)
    steps = []
    own_step = torch.optim.SGD.step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return own_step(self, *args, **kwargs)

    def no_lean_sgd(*args, **kwargs):
        raise AssertionError("LeanSGD built without a functional SGD")

    monkeypatch.setattr(torch.optim.SGD, "step", counted)
    monkeypatch.setattr(optim, "LeanSGD", no_lean_sgd)
    result, _ = train_tiny(tmp_path)
    assert len(steps) > 0  # every update went through torch.optim.SGD
    assert Recognizer.load(result.model_json).probabilities(tiny_split(4, seed=1).images).shape == (4, 10)
