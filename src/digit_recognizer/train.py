"""Training: recipes as frozen configs, one loop over data held as a single tensor, per-epoch checkpoints.

The loop only ever sees the training split; the test split is the evaluator's business.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .augment import random_affine, random_stroke
from .calibration import calibrate, refusal_stats
from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from .config import from_dict, to_dict
from .data.dataset import Split, train_val_split
from .data.formats import atomic_write_bytes
from .errors import DigitsError
from .inference import autocast, logits, probabilities, use_bf16
from .model import Net, build_model, get_architecture
from .modelfile import save_model, write_json
from .quantize import activation_ranges


@dataclass(frozen=True)
class TrainConfig:
    recipe: str
    model: str = "fast"
    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | onecycle (linear warm-up, then cosine to 0)
    warmup: float = 0.2  # fraction of all steps spent warming up (onecycle)
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split stays the same across training seeds
    seed: int = 0
    channels_last: bool = True  # NHWC is oneDNN's fast layout for these convolutions on CPU
    precision: str = "auto"  # auto (bf16 autocast where the CPU runs it natively) | fp32 | bf16
    augment_degrees: float = 0.0
    augment_scale: float = 0.0
    augment_shift: float = 0.0  # fraction of the image size
    augment_stroke: float = 0.0  # share of images whose strokes are thickened or thinned by a pixel
    ema: float = 0.0  # decay of the weight average used as the final model; 0 = off
    tta: bool = False  # the saved model averages 1-pixel-shifted views at prediction time


RECIPES = {
    # The tutorial exactly: SGD 0.01 momentum 0.9, batch 32, 10 epochs, 10% validation.
    "tutorial": TrainConfig("tutorial", model="tutorial", epochs=10, batch_size=32, lr=0.01, momentum=0.9),
    # Chosen on validation accuracy per second of training (AVX512-BF16 CPU, bf16): 2 epochs at batch 64 beat
    # 1 epoch of wider nets and batch 128 at the same time; no augmentation in so short a run.
    "fast": TrainConfig("fast", model="fast", epochs=2, batch_size=64, lr=0.2, nesterov=True,
                        weight_decay=5e-4, schedule="onecycle", warmup=0.2, label_smoothing=0.1),
    "best": TrainConfig("best", model="wide", epochs=36, batch_size=128, optimizer="sgd", lr=0.1, nesterov=True,
                        weight_decay=5e-4, schedule="onecycle", warmup=0.15, label_smoothing=0.1,
                        augment_degrees=10, augment_scale=0.1, augment_shift=0.1,
                        augment_stroke=0.5, ema=0.999, tta=True),
}
DEFAULT_RECIPE = "fast"


def make_config(recipe: str = DEFAULT_RECIPE, **overrides: Any) -> TrainConfig:
    """A recipe with overrides (None values ignored); unknown names and keys are errors."""
    if recipe not in RECIPES:
        raise DigitsError(f"unknown recipe '{recipe}' (choose from {', '.join(RECIPES)})")
    merged = {**to_dict(RECIPES[recipe]), **{k: v for k, v in overrides.items() if v is not None}}
    cfg = from_dict(TrainConfig, merged, f"recipe {recipe}")
    get_architecture(cfg.model)
    use_bf16(cfg.precision)  # rejects an unknown precision now, not after loading the data
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise DigitsError("epochs and batch size must be at least 1")
    return cfg


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, int(cfg.warmup * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def make_optimizer(cfg: TrainConfig, model: Net) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise DigitsError(f"unknown optimizer '{cfg.optimizer}' (sgd or adamw)")


@torch.no_grad()
def evaluate_loss_acc(net: Net, split: Split, bf16: bool = False) -> tuple[float, float]:
    out = logits(net, split.images, bf16=bf16)
    return F.cross_entropy(out, split.labels).item(), (out.argmax(1) == split.labels).float().mean().item()


@dataclass
class TrainResult:
    model: Net
    history: list[dict[str, Any]]
    model_json: Path
    seconds: float


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train(cfg: TrainConfig, data: Split, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] = stderr_log, command: str | None = None) -> TrainResult:
    """Train on `data` (the full training split; validation is carved from it) into run_dir."""
    from tqdm import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if resume:
        if not config_path.exists():
            raise DigitsError(f"{run_dir}: nothing to resume (no config.json)")
        saved = from_dict(TrainConfig, json.loads(config_path.read_text()), str(config_path))
        if saved != cfg:
            cfg = saved
            log(f"resuming with the run's own config from {config_path}")
    elif (run_dir / CHECKPOINT_FILE).exists():
        raise DigitsError(f"{run_dir} already holds a training run; use --resume, or another --out")
    write_json(config_path, to_dict(cfg))

    tr, va = train_val_split(data, cfg.val_fraction, cfg.split_seed)
    bf16 = use_bf16(cfg.precision)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema else None
    modules = {"model": model, **({"ema": ema} if ema is not None else {})}
    opt = make_optimizer(cfg, model)
    history: list[dict[str, Any]] = []
    elapsed = 0.0
    if resume and (run_dir / CHECKPOINT_FILE).exists():
        state = load_checkpoint(run_dir, modules, opt)
        history, elapsed = state["history"], state["seconds"]
        log(f"resuming {run_dir} after epoch {len(history)}")

    x_all = tr.images.unsqueeze(1)  # (N, 1, 28, 28) uint8
    n = len(tr)
    steps = math.ceil(n / cfg.batch_size)
    augment = cfg.augment_degrees or cfg.augment_scale or cfg.augment_shift
    for epoch in range(len(history), cfg.epochs):
        t0 = time.perf_counter()
        # Every random draw of an epoch comes from (seed, epoch), so a resumed run repeats it exactly.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen)
        model.train()
        seen = 0
        # Running sums stay tensors: a .item() per step would cost ~1% of a batch-32 step (measured).
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True)
        for i in bar:
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb, yb = x_all[idx].float(), tr.labels[idx]  # (B, 1, 28, 28), (B,)
            if cfg.augment_stroke:
                xb = random_stroke(xb, gen, cfg.augment_stroke)
            if augment:
                xb = random_affine(xb, gen, cfg.augment_degrees, cfg.augment_scale, cfg.augment_shift)
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            lr = lr_at(cfg, epoch * steps + i, cfg.epochs * steps)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, out = train_step(model, opt, xb, yb, bf16, cfg.label_smoothing)
            if ema is not None:
                update_ema(ema, model, cfg.ema)
            seen += len(yb)
            loss_sum += loss.detach() * len(yb)
            correct += (out.argmax(1) == yb).sum()
            if progress and (i % 20 == 0 or i == steps - 1):
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}",
                                lr=f"{lr:.3g}")
        bar.close()
        final = ema if ema is not None else model
        # At the run's precision: bf16 validation took 0.23 s instead of 0.40 s per tutorial epoch here.
        val_loss, val_acc = evaluate_loss_acc(final, va, bf16)
        train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen
        elapsed += time.perf_counter() - t0  # an epoch = training + validation, as Keras' fit() counts it
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
                        "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr, "seconds": elapsed})
        write_metrics(run_dir, history)
        save_checkpoint(run_dir, modules, opt, {"history": history, "seconds": elapsed})
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} acc {train_acc:.4f} "
            f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({elapsed:.1f} s)")

    final = (ema if ema is not None else model).to(memory_format=torch.contiguous_format).eval()
    last = history[-1]
    # Calibrated in fp32, the reference precision (bf16 batch predictions differ by < 0.03 in a logit).
    val_logits = logits(final, va.images)  # (N, 10)
    cal = calibrate(val_logits, va.labels)
    metrics = {"val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],
               "val_ece_before": cal["val_ece_before"], "val_ece_after": cal["val_ece_after"]}
    # Refusals measured as the saved model will predict: with shifted views when it uses them.
    if cfg.tta:
        probs = probabilities([final], va.images, temperatures=[cal["temperature"]], tta=True)
        metrics["val_accuracy_tta"] = (probs.argmax(1) == va.labels).float().mean().item()
    else:
        probs = F.softmax(val_logits / cal["temperature"], 1)
    refusals = refusal_stats(probs, va.labels)
    metrics.update((k, v) for k, v in refusals.items() if k.startswith("val_"))
    # Activation ranges for int8 inference, from training images only (the validation split stays unseen).
    ranges = activation_ranges(final, tr.images)
    if ranges is None:
        log("int8 ranges not recorded: this PyTorch has no x86 quantized engine (the model runs in fp32/bf16)")
    model_json = save_model(run_dir / "model", final,
                            training={**to_dict(cfg), "train_seconds": elapsed, "bf16": bf16,
                                      "train_size": len(tr), "val_size": len(va), "command": command},
                            metrics=metrics, extra={"temperature": cal["temperature"],
                                                    "min_confidence": refusals["min_confidence"], "tta": cfg.tta,
                                                    **({"int8_ranges": ranges} if ranges is not None else {})})
    return TrainResult(final, history, model_json, elapsed)


def train_step(model: Net, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor, bf16: bool,
               label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch: xb (B, 1, 28, 28) float pixels, yb (B,) -> (loss, logits (B, 10))."""
    with autocast(bf16):
        out = model(xb)
    loss = F.cross_entropy(out.float(), yb, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss, out


@torch.no_grad()
def update_ema(ema: Net, model: Net, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.lerp_(p, 1 - decay)
        else:
            e.copy_(p)


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl, rewritten whole each epoch so it always matches the checkpoint."""
    atomic_write_bytes(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history).encode())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch history from metrics.jsonl (FileNotFoundError / JSONDecodeError for the caller to word)."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
