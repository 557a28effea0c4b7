"""The optimizers: SGD (Nesterov, the recipes') or AdamW, with SGD's update taken from PyTorch's functional form.

Every method of `torch.optim.Optimizer` that training calls (construction, `zero_grad`, `step`) imports
`torch._dynamo` on first use, only to keep torch.compile out of it: 1.3 s on a 2-core Xeon, a tenth of the default
recipe's whole command. `LeanSGD` takes the very same update from PyTorch's public `torch.optim.sgd.sgd`, which
needs no such import, and keeps state in `torch.optim.SGD`'s layout, so a checkpoint from either loads into
the other. A PyTorch whose functional form is missing, or takes other arguments, trains with `torch.optim.SGD`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from ..models.net import Net
from .recipes import TrainConfig

SGD_DEFAULTS = {"dampening": 0.0, "maximize": False, "foreach": None, "differentiable": False, "fused": None}


def functional_sgd() -> Callable[..., None] | None:
    """PyTorch's functional SGD update, where this release has it with the arguments `LeanSGD` passes."""
    try:
        from torch.optim.sgd import sgd
        inspect.signature(sgd).bind([], [], [], has_sparse_grad=False, foreach=None, fused=None, weight_decay=0.0,
                                    momentum=0.0, lr=0.0, dampening=0.0, nesterov=False, maximize=False)
    except (ImportError, TypeError, ValueError):
        return None
    return sgd


class LeanSGD:
    """torch.optim.SGD's arithmetic and state layout without torch.optim.Optimizer's compile bookkeeping.

    params: parameters, or groups of them as dicts that may override the keyword settings (as torch's)."""

    def __init__(self, params: list[Any], update: Callable[..., None], *, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, fused: bool | None = None) -> None:
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        settings = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay,
                    **SGD_DEFAULTS, "fused": fused}
        self.param_groups = [{**settings, **g, "params": list(g["params"])} for g in groups]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        self.update = update

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
            self.update(params, [p.grad for p in params], buffers, has_sparse_grad=False,
                        foreach=group["foreach"], fused=group["fused"], weight_decay=group["weight_decay"],
                        momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                        nesterov=group["nesterov"], maximize=group["maximize"])
            if group["momentum"]:
                for p, buffer in zip(params, buffers):
                    self.state[p] = {"momentum_buffer": buffer}

    def indexed(self) -> list[torch.Tensor]:
        """Every parameter in group order: torch numbers them this way in a state dict."""
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        index = {id(p): i for i, p in enumerate(self.indexed())}
        groups, start = [], 0
        for group in self.param_groups:
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": {index[id(p)]: dict(st) for p, st in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        groups = saved["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved optimizer state has other parameter groups")
        params = self.indexed()
        for group, old in zip(self.param_groups, groups):
            group.update({k: v for k, v in old.items() if k != "params"})
        self.state = {}
        for i, st in saved["state"].items():
            p = params[int(i)]
            self.state[p] = {k: v.to(p.device, p.dtype) if torch.is_tensor(v) else v for k, v in st.items()}


def fused_if_supported(optimizer: type, device: torch.device) -> dict[str, Any]:
    """fused=True (one kernel for the whole update) on CUDA where this PyTorch's optimizer offers it."""
    return {"fused": True} if device.type == "cuda" and "fused" in inspect.signature(optimizer).parameters else {}


def make_optimizer(cfg: TrainConfig, model: Net) -> torch.optim.Optimizer | LeanSGD:
    device = next(model.parameters()).device
    params = list(model.parameters())
    if not cfg.decay_norm_and_bias:  # kernels and weight matrices (2+ dims) decay; BatchNorm and biases do not
        params = [{"params": [p for p in params if p.ndim >= 2]},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 **fused_if_supported(torch.optim.AdamW, device))
    settings = dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay,
                    **fused_if_supported(torch.optim.SGD, device))
    update = functional_sgd()
    return LeanSGD(params, update, **settings) if update else torch.optim.SGD(params, **settings)
