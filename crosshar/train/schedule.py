"""Seeding, learning-rate schedule and batch order of the training loops."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from crosshar.train.distributed import Dist


def seed_all(seed: int) -> None:
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def generator(*keys: int) -> torch.Generator:
    """A torch.Generator seeded from several integers (seed, epoch, rank, ...)."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence(list(keys)).generate_state(1)[0]))
    return g


def cosine_lr(step: int, total: int, warmup: int, base: float, floor: float = 0.02) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to `floor * base` (nanoGPT's get_lr)."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def batches(n: int, batch_size: int, g: torch.Generator, ctx: Dist, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Shuffled index batches; with several ranks each takes an equal, disjoint share."""
    perm = torch.randperm(n, generator=g).numpy()
    if ctx.world > 1:
        per = n // ctx.world
        perm = perm[ctx.rank * per:(ctx.rank + 1) * per]
    stop = len(perm) - (len(perm) % batch_size if drop_last and len(perm) > batch_size else 0)
    for i in range(0, stop, batch_size):
        yield perm[i:i + batch_size]
