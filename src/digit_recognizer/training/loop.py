"""The training loop: data held as one tensor, batches by indexing, a checkpoint after every epoch.

The loop only ever sees the training split; the test split is the evaluator's business. What happens after
the last epoch (calibration, refusal statistics, int8 ranges, saving) is `finish.py`'s.
"""
from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import to_dict
from ..data.dataset import Split, train_val_split
from ..errors import DigitsError, os_error_line
from ..inference.device import describe_device, resolve_device, usable_cores, use_bf16
from ..inference.engine import logits
from ..models.net import Net, build_model, forward_flops
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import SINGLE, World, barrier
from .epoch import Log, State, make_step, run_epoch
from .exposure import draw_of, drawn_ahead, validation_outliers, widened
from .finish import finish
from .marker import marker_bank
from .optim import make_optimizer
from .recipes import TrainConfig, resume_config
from .rundir import RunDir

BACKWARD_FLOPS = 2  # a backward pass costs about twice its forward pass (gradients of inputs and weights)


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class TrainResult:
    model: Net
    history: list[dict[str, Any]]
    model_json: Path
    seconds: float


def train(cfg: TrainConfig, data: Split, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log: Log = stderr_log, command: str | None = None, device: str | torch.device = "auto",
          world: World = SINGLE, overwrite: bool = False) -> TrainResult:
    """Train on `data` (the full training split; validation is carved from it) into run_dir, on `device`
    (auto: CUDA, then MPS, then CPU). Both splits live on the device for the whole run, as uint8.
    The folder is locked for this run from start to end (rank 0 holds the lock); `overwrite` starts again in
    a folder that holds a run.

    Under torchrun (`world`), every rank trains its share of each global batch with DistributedDataParallel;
    rank 0 alone writes files and logs."""
    run = RunDir(run_dir)
    if not world.is_main:
        return train_locked(cfg, data, run, resume, progress, log, command, device, world, overwrite)
    with run.lock():
        return train_locked(cfg, data, run, resume, progress, log, command, device, world, overwrite)


def train_locked(cfg: TrainConfig, data: Split, run: RunDir, resume: bool, progress: bool, log: Log,
                 command: str | None, device: str | torch.device, world: World, overwrite: bool) -> TrainResult:
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if world.distributed and cfg.batch_size < world.size:
        raise DigitsError(f"batch size {cfg.batch_size} is smaller than the {world.size} processes sharing it")
    graph, why_not = cuda_graph_for(cfg, dev, world)
    if dev.type == "cuda" and world.is_main:
        log("training steps: " + ("each replayed as one CUDA graph" if graph else f"eager ({why_not})"))
    if world.is_main:
        start_run(run, cfg, resume, overwrite)
    barrier(world)
    log = log if world.is_main else (lambda _: None)
    base, va = splits(cfg, data)
    # The validation outliers finish needs, drawn while a GPU trains. On a CPU they are drawn after the last
    # epoch: a thread there slowed the loop by as much as it saved (train_overhead.py, 2 cores: 14.5 s against 14.2).
    outliers = drawn_ahead(validation_outliers, va) if world.is_main and dev.type != "cpu" else None
    va_dev = on_device(va, dev)
    base_marker = marker_renditions(cfg, base, world, log, dev)
    bf16 = use_bf16(cfg.precision, dev.type)
    state = set_up(cfg, dev)
    if resume and run.checkpoint.exists():
        saved = load_checkpoint(run.checkpoint, state.modules, state.opt)
        trained_by = saved.get("world_size", 1)  # checkpoints from before torchrun support: one process
        if trained_by != world.size:
            raise DigitsError(f"{run.path} was trained by {trained_by} process(es); resume it with as many "
                              f"(this is {world.size})")
        state.history, state.seconds = saved["history"], saved["seconds"]
        log(f"resuming {run.path} after epoch {len(state.history)}: epoch {len(state.history) + 1} next")
    elif resume:
        log(f"resuming {run.path}: no checkpoint was saved there (none finished), so from epoch 1")
    step_net = ddp_wrapped(state.model, dev) if world.distributed else state.model
    flops = forward_flops(state.model)
    step = make_step(cfg, state, step_net, bf16, graph)  # built once: a captured graph serves every epoch
    drawn = draw_of(cfg, min(len(state.history), cfg.epochs - 1))
    tr, tr_dev, marker = training_split(cfg, base, drawn, base_marker, world, log, dev)
    for epoch in range(len(state.history), cfg.epochs):
        if draw_of(cfg, epoch) != drawn:  # a fresh draw of other hands' digits and outliers
            drawn = draw_of(cfg, epoch)
            tr, tr_dev, marker = training_split(cfg, base, drawn, base_marker, world, log, dev)
        started = time.perf_counter()
        record = run_epoch(cfg, state, tr_dev, epoch, bf16, progress and world.is_main, world, step_net, step,
                           marker, log)
        # At the run's precision: bf16 validation took 0.23 s instead of 0.40 s per tutorial epoch here.
        val_loss, val_acc = evaluate_loss_acc(state.final, va_dev, bf16)
        state.seconds += time.perf_counter() - started  # training + validation, as Keras' fit() counts an epoch
        rate = record["images"] / record["train_seconds"]
        state.history.append({"epoch": epoch + 1, **record, "val_loss": val_loss, "val_accuracy": val_acc,
                              "images_per_second": rate,
                              "gflops": (1 + BACKWARD_FLOPS) * flops * rate / 1e9, "seconds": state.seconds})
        if world.is_main:
            save_epoch(run, state, world)
        log(epoch_line(state.history[-1], cfg.epochs))
    # Calibration, int8 ranges and saving run on the CPU: the model file is device-free.
    final = state.final.cpu().to(memory_format=torch.contiguous_format).eval()
    model_json = run.model_json
    if world.is_main:
        model_json = finish(run, final, cfg, tr, va, state.history, log=log, outliers=outliers,
                            training_info={"bf16": bf16, "device": describe_device(dev), "world_size": world.size,
                                           "command": command})
    barrier(world)
    return TrainResult(final, state.history, model_json, state.seconds)


def save_epoch(run: RunDir, state: State, world: World) -> None:
    """The checkpoint, then the metrics (which never claim an epoch the checkpoint lacks); a failed write (a
    full disk) stops the run saying what it keeps."""
    done = len(state.history)
    try:
        save_checkpoint(run.checkpoint, state.modules, state.opt,
                        {"history": state.history, "seconds": state.seconds, "world_size": world.size})
        run.write_metrics(state.history)
    except OSError as e:
        kept = (f"{run.checkpoint.name} keeps epoch {done - 1}: --resume continues from epoch {done}"
                if done > 1 and run.checkpoint.exists() else "no checkpoint was saved: --resume starts at epoch 1")
        raise DigitsError(f"{os_error_line(e)}; training stopped after epoch {done} ({kept})") from None


def marker_renditions(cfg: TrainConfig, tr: Split, world: World, log: Log, device: torch.device,
                      start: int = 0) -> torch.Tensor | None:
    """(N, 28, 28) uint8 on `device`: each training digit drawn once with a fat marker and thinned by the
    reader (`augment_marker`), or None; `start`: the first image's index in the bank's draws. Every rank draws
    the same ones, on its share of the CPUs."""
    if not cfg.augment_marker:
        return None
    started = time.perf_counter()
    workers = max(1, usable_cores() // world.size)
    bank = torch.from_numpy(marker_bank(tr.images.numpy(), cfg.seed, workers, cfg.marker_pen, start))
    log(f"drew {len(bank):,} marker digits in {time.perf_counter() - started:.0f} s ({workers} processes)")
    return bank.to(device)


def training_split(cfg: TrainConfig, base: Split, draw: int, base_marker: torch.Tensor | None, world: World,
                   log: Log, device: torch.device) -> tuple[Split, Split, torch.Tensor | None]:
    """(on the CPU, on `device`, marker renditions or None) of draw `draw` of the training split: MNIST's digits
    `base`, then that draw's other hands' digits and outliers (training.exposure). The extra images' marker
    renditions take bank indices of their own in each draw; draw 0's are the indices they always had."""
    tr = widened(cfg, base, draw)
    if len(tr) == len(base):
        return tr, on_device(tr, device), base_marker
    if cfg.redraw_every:
        log(f"drew {len(tr) - len(base):,} other hands' digits and outliers (draw {draw + 1})")
    extra = Split(tr.images[len(base):], tr.labels[len(base):])
    more = marker_renditions(cfg, extra, world, log, device, start=len(base) + draw * len(extra))
    marker = None if base_marker is None else torch.cat([base_marker, more])
    return tr, on_device(tr, device), marker


def ddp_wrapped(model: Net, device: torch.device) -> torch.nn.Module:
    """The model as DistributedDataParallel sees it: gradients averaged over the ranks after each backward."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def start_run(run: RunDir, cfg: TrainConfig, resume: bool, overwrite: bool = False) -> None:
    """Create the folder and record the config; a resumed run must be given the config it was started with, and
    a folder holding another run is refused unless `overwrite` clears it."""
    if resume:
        resume_config(run, **to_dict(cfg))
    else:
        run.make_room(overwrite)
    run.create()
    run.write_config(to_dict(cfg))


def splits(cfg: TrainConfig, data: Split) -> tuple[Split, Split]:
    """(train, validation) of the recipe, from the first `cfg.limit` images of `data` (0 = all)."""
    if cfg.limit and cfg.limit < len(data):
        data = Split(data.images[:cfg.limit], data.labels[:cfg.limit])
    return train_val_split(data, cfg.val_fraction, cfg.split_seed)


def on_device(split: Split, device: torch.device) -> Split:
    return Split(split.images.to(device), split.labels.to(device))


def set_up(cfg: TrainConfig, device: torch.device | None = None) -> State:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device or torch.device("cpu"))  # initialised on the CPU: same weights
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema else None
    return State(model, make_optimizer(cfg, model), ema)


def cuda_graph_for(cfg: TrainConfig, device: torch.device, world: World) -> tuple[bool, str]:
    """Whether the training steps replay as one CUDA graph, and why not where they do not. A graph needs one
    process (DistributedDataParallel's hooks run outside it) on a CUDA device with SGD (the fused step reads its
    learning rate from the device); `cuda_graph` None takes it wherever it can run, True requires it."""
    blocked = [why for why, cannot in ((f"{device.type}, not CUDA", device.type != "cuda"),
                                       (f"{world.size} processes", world.distributed),
                                       (f"{cfg.optimizer}, not SGD", cfg.optimizer != "sgd")) if cannot]
    if cfg.cuda_graph and blocked:
        raise DigitsError(f"--cuda-graph needs one process on a CUDA device with SGD (this run: "
                          f"{'; '.join(blocked)})")
    if cfg.cuda_graph is False:
        return False, "--no-cuda-graph"
    return not blocked, "; ".join(blocked)


@torch.no_grad()
def evaluate_loss_acc(net: Net, split: Split, bf16: bool = False) -> tuple[float, float]:
    out = logits(net, split.images, bf16=bf16)
    return F.cross_entropy(out, split.labels).item(), (out.argmax(1) == split.labels).float().mean().item()


def epoch_line(h: dict[str, Any], epochs: int) -> str:
    return (f"epoch {h['epoch']}/{epochs}: loss {h['train_loss']:.4f} acc {h['train_accuracy']:.4f} "
            f"val_loss {h['val_loss']:.4f} val_acc {h['val_accuracy']:.4f} ({h['seconds']:.1f} s; "
            f"{h['images_per_second']:,.0f} images/s, {h['gflops']:.1f} GFLOP/s)")
