"""One epoch of training: batches indexed from the resident split, augmented on the device, one step each.

    run_epoch(cfg, state, train Split, epoch, bf16, progress) -> the epoch's training metrics
    lr_at(cfg, step, total) -> the learning rate of a step
    augmented(cfg, batch, generator) -> the batch the recipe trains on

Every random draw of an epoch comes from (seed, epoch), so a resumed run repeats it exactly.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..constants import NOT_DIGIT
from ..data.dataset import Split
from ..models.net import Net
from .augment import random_affine, random_slant, random_stroke
from .distributed import SINGLE, World, local_share, sum_over_ranks
from .recipes import TrainConfig
from .step import EagerStep, GraphedStep, OutlierLoss

SEED_STRIDE = 1_000_003  # epoch e of seed s draws from generator seed s * SEED_STRIDE + e
RANK_STRIDE = 7_919  # ... and rank r > 0 of a distributed run augments from that seed + r * RANK_STRIDE
PROGRESS_EVERY = 20  # steps between progress-bar refreshes
PROGRESS_SECONDS = 10.0  # off a terminal (a pipe, a log file, CI): a progress line this often within an epoch

Log = Callable[[str], None]


@dataclass
class State:
    """What the loop carries from epoch to epoch, and what a checkpoint holds."""
    model: Net
    opt: torch.optim.Optimizer
    ema: Net | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model, **({"ema": self.ema} if self.ema is not None else {})}

    @property
    def final(self) -> Net:
        return self.ema if self.ema is not None else self.model


def make_step(cfg: TrainConfig, state: State, net: torch.nn.Module, bf16: bool, graph: bool | None = None
              ) -> EagerStep:
    """The training step: eager, or replayed as a CUDA graph where `graph` (default: where `cfg.cuda_graph`
    asks for one; loop.cuda_graph_for decides for a run). `net`: the model, or its DistributedDataParallel
    wrapper under torchrun."""
    settings = dict(decay=cfg.ema, bf16=bf16, label_smoothing=cfg.label_smoothing,
                    outliers=OutlierLoss(weight=cfg.outlier_weight, energy=cfg.outlier_energy,
                                         energy_in=cfg.energy_in, energy_out=cfg.energy_out))
    if not (bool(cfg.cuda_graph) if graph is None else graph):
        return EagerStep(net, state.opt, state.ema, state.model, **settings)
    return GraphedStep(net, state.opt, state.ema, state.model, batch=cfg.batch_size,
                       channels_last=cfg.channels_last, capture=next(state.model.parameters()).is_cuda, **settings)


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, int(cfg.warmup * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def run_epoch(cfg: TrainConfig, state: State, tr: Split, epoch: int, bf16: bool, progress: bool,
              world: World = SINGLE, net: torch.nn.Module | None = None,
              step: EagerStep | None = None, marker: torch.Tensor | None = None,
              log: Log | None = None) -> dict[str, Any]:
    """One pass over the training split (on the model's device); returns the epoch's training metrics.

    Nothing in the loop waits for the device: batches are indexed from the resident split, augmentation draws
    from a generator on the device, and the running sums stay device tensors until the epoch ends.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    device = tr.images.device
    # Every random draw of an epoch comes from (seed, epoch), so a resumed run repeats it exactly.
    gen = torch.Generator(device=device).manual_seed(cfg.seed * SEED_STRIDE + epoch)
    torch.manual_seed(cfg.seed * SEED_STRIDE + epoch)
    n = len(tr)
    steps = math.ceil(n / cfg.batch_size)
    perm = torch.randperm(n, generator=gen, device=device)  # the same on every rank
    if world.rank > 0:  # every other rank augments its share of the batch with draws of its own
        gen = torch.Generator(device=device).manual_seed(cfg.seed * SEED_STRIDE + epoch + world.rank * RANK_STRIDE)
    step = step or make_step(cfg, state, net or state.model, bf16)
    x_all = tr.images.unsqueeze(1)  # (N, 1, 28, 28) uint8
    marker = None if marker is None else marker.unsqueeze(1)  # (N, 1, 28, 28) uint8, on the device
    state.model.train()
    # Running sums stay tensors: a .item() per step would cost ~1% of a batch-32 step (measured).
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    # A bar on a terminal; in a log file, a line every PROGRESS_SECONDS (`log`), then the per-epoch line.
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True)
    lines = progress and bar.disable and log is not None
    last_line = started
    lr = cfg.lr
    for i in bar:
        idx = local_share(perm[i * cfg.batch_size:(i + 1) * cfg.batch_size], world)  # this rank's share
        fat = None if marker is None else marker[idx].float()
        xb, yb = augmented(cfg, x_all[idx].float(), gen, fat), tr.labels[idx]  # (B, 1, 28, 28), (B,)
        lr = lr_at(cfg, epoch * steps + i, cfg.epochs * steps)
        loss, out = step(xb, yb, lr)
        loss_sum += loss.detach() * len(yb)
        correct += (out.argmax(1) == yb).sum()  # an outlier's label is never an output
        if not bar.disable and (i % PROGRESS_EVERY == 0 or i == steps - 1):
            seen = min(n, (i + 1) * cfg.batch_size) / world.size  # about this rank's share
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}",
                            lr=f"{lr:.3g}")
        if lines and time.perf_counter() - last_line >= PROGRESS_SECONDS:
            last_line = time.perf_counter()
            seen = min(n, (i + 1) * cfg.batch_size) / world.size
            log(f"epoch {epoch + 1}/{cfg.epochs}: {i + 1}/{steps} batches ({100 * (i + 1) / steps:.0f}%), "
                f"loss {loss_sum.item() / seen:.4f}, {seen / (last_line - started):,.0f} images/s")
    bar.close()
    loss_sum, correct = sum_over_ranks(loss_sum, world), sum_over_ranks(correct, world)
    digits = int((tr.labels != NOT_DIGIT).sum())  # accuracy is over the digits
    return {"train_loss": loss_sum.item() / n, "train_accuracy": correct.item() / max(1, digits), "lr": lr,
            "images": n, "train_seconds": time.perf_counter() - started}


def augmented(cfg: TrainConfig, xb: torch.Tensor, gen: torch.Generator,
              marker: torch.Tensor | None = None) -> torch.Tensor:
    """xb (B, 1, 28, 28) float pixels -> the batch the recipe trains on (augmented, in its memory layout);
    `marker`: the same digits drawn with a fat marker, a share `augment_marker` of which replace them."""
    if cfg.augment_marker and marker is not None:
        swap = torch.rand(xb.shape[0], generator=gen, device=gen.device) < cfg.augment_marker
        xb = torch.where(swap.view(-1, 1, 1, 1), marker, xb)
    if cfg.augment_stroke or cfg.augment_bold:
        xb = random_stroke(xb, gen, cfg.augment_stroke, cfg.augment_bold)
    if cfg.augment_slant:
        xb = random_slant(xb, gen, cfg.augment_slant)
    if cfg.augment_degrees or cfg.augment_scale or cfg.augment_shift or cfg.augment_squeeze or cfg.augment_widen:
        xb = random_affine(xb, gen, cfg.augment_degrees, cfg.augment_scale, cfg.augment_shift,
                           cfg.augment_squeeze, cfg.augment_widen)
    return xb.contiguous(memory_format=torch.channels_last) if cfg.channels_last else xb
