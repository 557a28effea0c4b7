"""One training step (forward, loss, backward, SGD, the EMA update), run eagerly or replayed as a CUDA graph.

On a GPU, a step of these small nets is ~2 ms of Python and kernel launches around kernels that take a fraction
of that. `GraphedStep` captures the whole step once as a CUDA graph and replays it for every full batch: the
batch, its labels and the learning rate (a device tensor the fused optimizer reads) live in static buffers the
batch is copied into. The first WARMUP_STEPS steps run eagerly on a side stream, as capture requires (and so
that the optimizer's momentum buffers exist before it); a last, smaller batch runs eagerly. With
`capture=False` (a CPU, the tests) the same static-buffer step runs eagerly, so its bookkeeping is checked on
any machine; the graph itself needs CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..constants import IMAGE_SIZE, NOT_DIGIT
from ..inference.device import autocast

WARMUP_STEPS = 3  # eager steps on a side stream before capture (PyTorch's documented minimum pattern)


@dataclass(frozen=True)
class OutlierLoss:
    """How the net learns the outliers (label NOT_DIGIT), as TrainConfig sets it.

    - `weight`: outlier exposure (Hendrycks et al. 2019): this times an outlier's cross-entropy to the uniform
      distribution, relative to a digit's loss.
    - `energy`: energy-bounded learning (Liu et al. 2020, "Energy-based Out-of-distribution Detection"): this
      times the squared hinges that push a digit's logsumexp of the logits above `energy_in` and an outlier's
      below `energy_out`. The logsumexp is the score that refuses what is not a digit (inference.engine.scores),
      so the net learns the score itself, instead of only a flat softmax that leaves the logits' level free.
    """
    weight: float = 0.0
    energy: float = 0.0
    energy_in: float = 0.0
    energy_out: float = 0.0


def loss_of(out: torch.Tensor, yb: torch.Tensor, label_smoothing: float, outliers: OutlierLoss) -> torch.Tensor:
    """Cross-entropy on the digits, and on the outliers (label NOT_DIGIT) the losses `outliers` asks for.
    out (B, 10) logits, yb (B,) labels 0..10 -> a scalar. Written without boolean indexing, so that a CUDA graph
    can hold it."""
    outlier = yb == NOT_DIGIT
    digit_loss = F.cross_entropy(out, torch.where(outlier, 0, yb), label_smoothing=label_smoothing,
                                 reduction="none")  # (B,)
    uniform_loss = -F.log_softmax(out, 1).mean(1)  # (B,)
    loss = torch.where(outlier, outliers.weight * uniform_loss, digit_loss)
    if outliers.energy:
        lse = torch.logsumexp(out, 1)  # (B,): the digit score before calibration
        hinge = torch.where(outlier, F.relu(lse - outliers.energy_out), F.relu(outliers.energy_in - lse))
        loss = loss + outliers.energy * hinge ** 2
    return loss.mean()


def train_step(model: torch.nn.Module, opt: Any, xb: torch.Tensor, yb: torch.Tensor, bf16: bool,
               label_smoothing: float, graph_safe: bool = False, outliers: OutlierLoss = OutlierLoss()
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch: xb (B, 1, 28, 28) float pixels, yb (B,) -> (loss, logits (B, 10)).
    `graph_safe`: autocast without its weight cache, which a CUDA graph capture cannot hold."""
    with autocast(bf16, xb.device.type, cache=not graph_safe):
        out = model(xb)
    loss = loss_of(out.float(), yb, label_smoothing, outliers)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss, out


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.lerp_(p, 1 - decay)
        else:
            e.copy_(p)


class EagerStep:
    """The step as plain PyTorch calls: the learning rate set on the optimizer, then train_step and the EMA."""

    def __init__(self, net: torch.nn.Module, opt: Any, ema: torch.nn.Module | None, model: torch.nn.Module,
                 *, decay: float, bf16: bool, label_smoothing: float, outliers: OutlierLoss = OutlierLoss()) -> None:
        self.net, self.opt, self.ema, self.model = net, opt, ema, model
        self.decay, self.bf16, self.label_smoothing = decay, bf16, label_smoothing
        self.outliers = outliers

    def set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr

    def run(self, xb: torch.Tensor, yb: torch.Tensor, graph_safe: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        loss, out = train_step(self.net, self.opt, xb, yb, self.bf16, self.label_smoothing, graph_safe,
                               self.outliers)
        if self.ema is not None:
            update_ema(self.ema, self.model, self.decay)
        return loss, out

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        self.set_lr(lr)
        return self.run(xb, yb)


class GraphedStep(EagerStep):
    """The step replayed from static buffers: captured as a CUDA graph when `capture`, else run eagerly."""

    def __init__(self, *args: Any, batch: int, channels_last: bool, capture: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        device = next(self.model.parameters()).device
        self.x = torch.zeros(batch, 1, IMAGE_SIZE, IMAGE_SIZE, device=device)  # (B, 1, 28, 28)
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.zeros(batch, dtype=torch.long, device=device)  # (B,)
        self.capture = capture
        if capture:  # the fused optimizer reads the learning rate from the device on every replay
            self.lr = torch.zeros((), device=device)
            super().set_lr(self.lr)  # type: ignore[arg-type]
        self.graph: Any = None
        self.outputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.eager_steps = 0

    def set_lr(self, lr: float) -> None:
        if self.capture:
            self.lr.fill_(lr)
        else:
            super().set_lr(lr)

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        self.set_lr(lr)
        if len(yb) != len(self.y):  # the epoch's last, smaller batch
            return self.run(xb, yb, graph_safe=self.capture)
        self.x.copy_(xb)
        self.y.copy_(yb)
        if self.graph is not None:
            self.graph.replay()
            return self.outputs  # type: ignore[return-value]
        if not self.capture:
            return self.run(self.x, self.y)
        if self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.run(self.x, self.y, graph_safe=True)
            torch.cuda.current_stream().wait_stream(side)
            return out
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self.run(self.x, self.y, graph_safe=True)
        self.graph.replay()  # capture records the step without running it
        return self.outputs
