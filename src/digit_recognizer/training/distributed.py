"""Training over several processes with DistributedDataParallel, as torchrun starts them:

    torchrun --standalone --nproc_per_node=2 -m digit_recognizer train ...

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; gloo runs on CPUs, NCCL on CUDA with the GPU from LOCAL_RANK
(the conventions of nanoGPT's train.py and pytorch/examples' distributed/ddp). Without torchrun there is one
process and none of this is touched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import DigitsError


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def from_environment() -> World:
    """The world torchrun describes in the environment, or a single process."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise DigitsError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
    return World(rank, local, size) if size > 1 else SINGLE


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes the GPU its LOCAL_RANK names. Returns the device."""
    if not world.distributed:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_available():
        raise DigitsError("this PyTorch build has no torch.distributed: train in one process")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def stop(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def sum_over_ranks(t: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of a tensor over every rank (the tensor itself in one process)."""
    if world.distributed:
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t)
    return t


def local_share(batch: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a global batch of indices (the last ranks may get one fewer)."""
    return batch.tensor_split(world.size)[world.rank] if world.distributed else batch
