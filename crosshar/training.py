"""Small shared pieces of the training loops: seeding, schedules, distributed set-up, run folders."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from crosshar import paths
from crosshar.atomic import atomic_write_json
from crosshar.device import dist_backend


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


def batches(n: int, batch_size: int, g: torch.Generator, ctx: Dist, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Shuffled index batches; with several ranks each takes an equal, disjoint share."""
    perm = torch.randperm(n, generator=g).numpy()
    if ctx.world > 1:
        per = n // ctx.world
        perm = perm[ctx.rank * per:(ctx.rank + 1) * per]
    stop = len(perm) - (len(perm) % batch_size if drop_last and len(perm) > batch_size else 0)
    for i in range(0, stop, batch_size):
        yield perm[i:i + batch_size]


def new_run_dir(kind: str, tag: str, out: str | Path | None = None) -> Path:
    """runs/<kind>/<tag>-<timestamp>/ (or `out`)."""
    d = Path(out) if out is not None else paths.runs_dir() / kind / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "run.json", info)


def find_runs(kind: str, source: str | None = None, finished: bool | None = True,
              root: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, run.json) of runs of a kind, newest first; unreadable run.json files are skipped.

    Args:
        source: keep runs of this source dataset string ("uci", "uci+motion") only.
        finished: True / False keeps finished / unfinished runs; None keeps both.
    """
    root = root or paths.runs_dir()
    found = []
    for info in (root / kind).glob("*/run.json"):
        try:
            d = json.loads(info.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if finished is not None and bool(d.get("finished")) != finished:
            continue
        if source is not None and d.get("source") != source:
            continue
        found.append((info.stat().st_mtime, info.parent, d))
    return [(p, d) for _, p, d in sorted(found, key=lambda t: -t[0])]


def latest_run(kind: str, dataset: str | None = None, root: Path | None = None) -> Path | None:
    """The most recent finished run of a kind (optionally for one source dataset string)."""
    runs = find_runs(kind, dataset, root=root)
    return runs[0][0] if runs else None


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class TB:
    """TensorBoard scalars on the main rank only; silently absent elsewhere."""

    def __init__(self, log_dir: Path, enabled: bool = True):
        self.w = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.w = SummaryWriter(str(log_dir))

    def scalars(self, step: int, **values: float) -> None:
        if self.w is not None:
            for k, v in values.items():
                self.w.add_scalar(k, v, step)

    def close(self) -> None:
        if self.w is not None:
            self.w.flush()
            self.w.close()


class EpochBar:
    """A rich bar over epochs and steps with total and ETA (nothing when disabled).

    Args:
        epochs: total epochs; steps: steps per epoch (the bar counts steps).
    """

    def __init__(self, description: str, epochs: int, steps: int, enabled: bool = True):
        self.enabled = enabled
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                              TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.p.start()
            self.task = self.p.add_task(description, total=epochs * steps, info="")
            self.epochs = epochs

    def step(self, n: int = 1) -> None:
        if self.enabled:
            self.p.update(self.task, advance=n)

    def epoch(self, epoch: int, info: str = "") -> None:
        if self.enabled:
            self.p.update(self.task, info=f"epoch {epoch}/{self.epochs} {info}")

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
