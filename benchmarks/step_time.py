"""Training-step time of the fast and wide nets against their earlier versions, measured side by side.

    python benchmarks/step_time.py [--rounds 12] [--steps 30]

Each variant trains on one fixed batch (the recipe's batch size, bf16 autocast and channels-last where the CPU
runs bf16 natively); the variants take turns in blocks of --steps steps, so the machine's speed swings hit all
of them alike, and each ratio is the median over rounds of the per-round ratio. The earlier versions are the
3x3-conv-first designs: conv -> BatchNorm -> max-pool -> ReLU in every block.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from digit_recognizer.app.cli import keep_freed_memory
from digit_recognizer.inference.device import use_bf16
from digit_recognizer.models.net import Net, get_architecture
from digit_recognizer.training.step import train_step
from digit_recognizer.training.optim import make_optimizer
from digit_recognizer.training.recipes import RECIPES


def earlier(name: str):
    cfg = get_architecture(name)
    first = int(cfg.layers[0][1:])
    return dataclasses.replace(cfg, name=f"{name} (earlier)", pool_before_bn=False,
                               layers=("c" + str(first), "p") + tuple(cfg.layers[1:]))


def make_step(model_cfg, recipe: str, bf16: bool):
    train_cfg = RECIPES[recipe]
    torch.manual_seed(0)
    net = Net(model_cfg).to(memory_format=torch.channels_last)
    opt = make_optimizer(train_cfg, net)
    b = train_cfg.batch_size
    x = torch.randint(0, 256, (b, 1, 28, 28)).float().contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (b,))

    def step() -> None:
        train_step(net, opt, x, y, bf16, train_cfg.label_smoothing)  # the training loop's own step
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    keep_freed_memory()  # as the digits command does
    bf16 = use_bf16("auto")
    print(f"bf16: {bf16}, threads: {torch.get_num_threads()}")
    rows = []
    for recipe in ("fast", "best"):
        arch = RECIPES[recipe].model
        variants = {"current": make_step(get_architecture(arch), recipe, bf16),
                    "earlier": make_step(earlier(arch), recipe, bf16)}
        for step in variants.values():
            for _ in range(args.steps):
                step()
        ms: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for k, step in variants.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                ms[k].append((time.perf_counter() - t0) / args.steps * 1e3)
        ratio = statistics.median(e / c for e, c in zip(ms["earlier"], ms["current"]))
        print(f"{recipe} recipe, {arch} net, batch {RECIPES[recipe].batch_size}: "
              f"current {statistics.median(ms['current']):.2f} ms/step, "
              f"earlier {statistics.median(ms['earlier']):.2f} ms/step, earlier/current {ratio:.2f}x")
        rows.append([recipe, arch, RECIPES[recipe].batch_size, round(statistics.median(ms["current"]), 2),
                     round(statistics.median(ms["earlier"]), 2), round(ratio, 2)])
    from results import save

    save("step_time", "Training step: current nets against their earlier versions, taking turns",
         ["recipe", "net", "batch", "current ms/step", "earlier ms/step", "earlier/current"], rows,
         notes=f"Median over {args.rounds} rounds of {args.steps} steps; bf16 {bf16}, "
               f"{torch.get_num_threads()} threads.")


if __name__ == "__main__":
    main()
