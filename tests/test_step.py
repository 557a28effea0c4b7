"""The training step: the static-buffer (CUDA-graph) form takes exactly the eager steps; --cuda-graph is refused
where no CUDA graph can run."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from digit_recognizer.config import from_dict
from digit_recognizer.data.dataset import Split
from digit_recognizer.errors import DigitsError
from digit_recognizer.training import epoch, loop
from digit_recognizer.training.checkpoint import load_checkpoint, save_checkpoint
from digit_recognizer.training.distributed import World
from digit_recognizer.training.recipes import TrainConfig, make_config
from digit_recognizer.training.step import GraphedStep


def tiny(n: int = 300) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g),
                 torch.randint(0, 10, (n,), generator=g))


def two_epochs(cuda_graph: bool):
    # 300 images at batch 64: four full batches and a last one of 44, with augmentation and EMA.
    cfg = make_config("best", epochs=2, batch_size=64, cuda_graph=cuda_graph)
    state = loop.set_up(cfg, torch.device("cpu"))
    step = epoch.make_step(cfg, state, state.model, False)
    records = [epoch.run_epoch(cfg, state, tiny(), e, False, False, step=step) for e in range(2)]
    return records, state, step


def test_static_buffer_step_takes_the_eager_steps_exactly():
    eager, eager_state, _ = two_epochs(False)
    graphed, graphed_state, step = two_epochs(True)
    assert isinstance(step, GraphedStep) and not step.capture  # on a CPU: the same bookkeeping, run eagerly
    assert [r["train_loss"] for r in graphed] == [r["train_loss"] for r in eager]
    for a, b in zip(graphed_state.final.state_dict().values(), eager_state.final.state_dict().values()):
        assert torch.equal(a, b)


def test_a_learning_rate_on_the_device_is_checkpointed_as_a_number(tmp_path):
    cfg = make_config("fast", epochs=1, batch_size=64)
    state = loop.set_up(cfg, torch.device("cpu"))
    epoch.run_epoch(cfg, state, tiny(), 0, False, False)
    for g in state.opt.param_groups:
        g["lr"] = torch.tensor(0.05)
    save_checkpoint(tmp_path / "c.safetensors", state.modules, state.opt, {"epoch": 1})
    fresh = loop.set_up(cfg, torch.device("cpu"))
    load_checkpoint(tmp_path / "c.safetensors", fresh.modules, fresh.opt)
    assert [g["lr"] for g in fresh.opt.param_groups] == [pytest.approx(0.05)]


@pytest.mark.smoke
def test_cuda_graph_without_cuda_is_one_line_before_any_data(tmp_path):
    res = subprocess.run([sys.executable, "-m", "digit_recognizer", "train", "--cuda-graph", "--device", "cpu",
                          "--data-dir", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "--cuda-graph needs" in res.stderr and "cpu" in res.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_config_records_the_choice():
    assert dataclasses.asdict(make_config("best", cuda_graph=True))["cuda_graph"] is True
    assert make_config("best").cuda_graph is None  # wherever a graph can run
    assert from_dict(TrainConfig, {"recipe": "x", "cuda_graph": False}).cuda_graph is False
    assert from_dict(TrainConfig, {"recipe": "x", "cuda_graph": None}).cuda_graph is None
    with pytest.raises(DigitsError, match="cuda_graph: expected bool, got 'yes'"):
        from_dict(TrainConfig, {"recipe": "x", "cuda_graph": "yes"})


CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize("asked, device, processes, optimizer, graph, why", [
    (None, CUDA, 1, "sgd", True, ""),  # the default on a GPU
    (None, CPU, 1, "sgd", False, "cpu, not CUDA"),
    (None, CUDA, 2, "sgd", False, "2 processes"),  # torchrun: eager, said in one line
    (None, CUDA, 1, "adamw", False, "adamw, not SGD"),
    (False, CUDA, 1, "sgd", False, "--no-cuda-graph"),
    (True, CUDA, 1, "sgd", True, ""),
])
def test_the_step_is_a_cuda_graph_wherever_one_can_run(asked, device, processes, optimizer, graph, why):
    cfg = make_config("best", device.type, cuda_graph=asked, optimizer=optimizer)
    assert loop.cuda_graph_for(cfg, device, World(size=processes)) == (graph, why)


@pytest.mark.parametrize("device, processes, optimizer, named", [
    (CPU, 1, "sgd", "cpu, not CUDA"), (CUDA, 2, "sgd", "2 processes"), (CUDA, 1, "adamw", "adamw, not SGD")])
def test_a_cuda_graph_asked_for_where_none_can_run_is_one_line(device, processes, optimizer, named):
    cfg = make_config("best", device.type, cuda_graph=True, optimizer=optimizer)
    with pytest.raises(DigitsError, match=f"--cuda-graph needs one process on a CUDA device with SGD .*{named}"):
        loop.cuda_graph_for(cfg, device, World(size=processes))


def test_the_default_step_on_a_cpu_is_eager():
    cfg = make_config("best", epochs=1, batch_size=64)
    state = loop.set_up(cfg, CPU)
    assert type(epoch.make_step(cfg, state, state.model, False)) is epoch.EagerStep
    assert type(epoch.make_step(cfg, state, state.model, False, graph=True)) is GraphedStep
