"""Training under torchrun: 2 processes with gloo on the CPU share each global batch, end with identical
weights, and only rank 0 writes; a resumed run must have as many processes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO

SCRIPT = r'''
import hashlib, os, sys, torch
from digit_recognizer.data.dataset import Split
from digit_recognizer.training import distributed
from digit_recognizer.training.loop import train
from digit_recognizer.training.recipes import make_config

world = distributed.from_environment()
device = distributed.start(world, torch.device("cpu"))
g = torch.Generator().manual_seed(0)
data = Split(torch.randint(0, 256, (640, 28, 28), dtype=torch.uint8, generator=g),
             torch.randint(0, 10, (640,), generator=g))
out = os.path.join(sys.argv[1], f"rank{world.rank}")  # each rank is told its own folder: only rank 0 may fill it
cfg = make_config("fast", epochs=2, batch_size=64, limit=0)
result = train(cfg, data, out, progress=False, device=device, world=world, log=lambda m: None)
params = b"".join(p.detach().cpu().numpy().tobytes() for p in result.model.parameters())
with open(os.path.join(sys.argv[2], f"rank{world.rank}.sha256"), "w") as f:
    f.write(hashlib.sha256(params).hexdigest())
distributed.stop(world)
'''


def torchrun(tmp_path, nproc: int) -> subprocess.CompletedProcess:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    (tmp_path / "digests").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script),
           str(tmp_path / "runs"), str(tmp_path / "digests")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"})


@pytest.mark.smoke
def test_two_gloo_ranks_end_identical_and_only_rank_0_writes(tmp_path):
    res = torchrun(tmp_path, 2)
    assert res.returncode == 0, res.stderr[-3000:]
    digests = [(tmp_path / "digests" / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert digests[0] == digests[1]
    assert (tmp_path / "runs" / "rank0" / "model.json").is_file()
    assert not (tmp_path / "runs" / "rank1").exists()
    import json
    meta = json.loads((tmp_path / "runs" / "rank0" / "model.json").read_text())
    assert meta["training"]["world_size"] == 2

    # Resuming a 2-process run in 1 process is refused, by name.
    from digit_recognizer.data.dataset import Split
    from digit_recognizer.errors import DigitsError
    from digit_recognizer.training.loop import train
    from digit_recognizer.training.recipes import make_config

    data = Split(torch.zeros(640, 28, 28, dtype=torch.uint8), torch.zeros(640, dtype=torch.long))
    with pytest.raises(DigitsError, match="trained by 2 process"):
        train(make_config("fast", epochs=2, batch_size=64), data, tmp_path / "runs" / "rank0", resume=True,
              progress=False, log=lambda m: None)


@pytest.mark.smoke
def test_the_cli_trains_under_torchrun(tmp_path, fake_data_dir):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "digit_recognizer", "train", "--limit", "600", "--epochs", "1", "--no-report", "--no-progress",
           "--no-verify", "--data-dir", str(fake_data_dir), "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained in") == 1  # rank 0 alone reports
    assert (tmp_path / "run" / "model.json").is_file()


@pytest.mark.smoke
def test_torchrun_fast_recipe_reaches_the_floor(tmp_path, mnist_dir):
    """The default recipe over 2 gloo processes keeps the single process's accuracy (global batch 64)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "digit_recognizer", "train", "--seed", "0", "--no-report", "--no-progress", "--data-dir", str(mnist_dir),
           "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    ev = subprocess.run([sys.executable, "-m", "digit_recognizer", "evaluate", "--json", "--model",
                         str(tmp_path / "run"), "--data-dir", str(mnist_dir)], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    import json
    assert json.loads(ev.stdout)["accuracy"] >= 0.992, ev.stdout[-500:]


@pytest.mark.smoke
def test_an_ensemble_under_torchrun_shares_out_its_members(tmp_path, fake_data_dir):
    """3 members over 2 ranks: rank 0 trains members 1 and 3, rank 1 member 2; each member is the same network
    a single process trains with that seed; rank 0 alone writes the ensemble and reports."""
    args = ["train", "--limit", "600", "--epochs", "1", "--ensemble", "3", "--no-report", "--no-progress",
            "--no-verify", "--data-dir", str(fake_data_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "digit_recognizer", *args, "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained in") == 1
    assert "[rank 1] member 2/3" in res.stderr and "[rank 0] member 3/3" in res.stderr
    import json
    meta = json.loads((tmp_path / "ddp" / "model.json").read_text())
    assert len(meta["members"]) == 3 and meta["training"]["world_size"] == 2
    one = subprocess.run([sys.executable, "-m", "digit_recognizer", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    for k in range(3):
        weights = [(tmp_path / run / f"member-{k}" / "model.safetensors").read_bytes() for run in ("ddp", "one")]
        assert weights[0] == weights[1], f"member {k}"
