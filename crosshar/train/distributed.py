"""Distributed data parallel set-up (torchrun): the context, the process group, buffer sync."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from crosshar.device import dist_backend


@dataclass
class Dist:
    """The distributed context: world size 1 when not launched by torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device | str = "cpu") -> Dist:
    """Join the process group torchrun set up; a no-op otherwise.

    The backend follows the device the tensors live on (crosshar.device.dist_backend): NCCL for
    CUDA, gloo for the CPU, even where a GPU is visible (NCCL cannot reduce CPU tensors).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(dist_backend(torch.device(device)))
    return Dist(dist.get_rank(), dist.get_world_size())


def rank_device(device: torch.device) -> torch.device:
    """The device of this process: with torchrun on CUDA, GPU $LOCAL_RANK (made current)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def sync_buffers(module: torch.nn.Module, ctx: Dist) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP broadcasts buffers only at the start of each forward, so after an epoch every rank holds
    the statistics its own last batch left; without this, ranks would validate (and could pick a
    best epoch) with different models.
    """
    if ctx.world > 1:
        for b in module.buffers():
            dist.broadcast(b, 0)
