"""What a training run shows and logs as it goes: TensorBoard scalars and rich progress bars."""

from __future__ import annotations

import time
from pathlib import Path


class TB:
    """TensorBoard scalars on the main rank only; silently absent elsewhere."""

    def __init__(self, log_dir: Path, enabled: bool = True, purge_step: int | None = None):
        """`purge_step`: a resumed run's first step; TensorBoard hides what the interrupted run logged from it on
        (the steps it replays), so that each step shows once. Only for a writer whose scalars share one step scale."""
        self.w = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.w = SummaryWriter(str(log_dir), purge_step=purge_step)

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


class PretrainBar:
    """Rich progress bars with totals and ETAs: the whole run (steps) and the current epoch
    (windows), with losses and windows/s (quiet when disabled)."""

    def __init__(self, epochs: int, steps: int, enabled: bool, batch_size: int = 1, start_epoch: int = 0):
        self.enabled = enabled
        self.epochs = epochs
        self.steps, self.batch = steps, batch_size
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                              TextColumn("{task.fields[info]}"))
            self.p.start()
            self.all = self.p.add_task("all epochs (steps)", total=epochs * steps, completed=start_epoch * steps, info="")
            self.task = None
        self.t = time.time()
        self.seen = 0

    def epoch(self, epoch: int, stage: int) -> None:
        if self.enabled:
            if self.task is not None:
                self.p.remove_task(self.task)
            self.task = self.p.add_task(f"epoch {epoch + 1}/{self.epochs} stage {stage} (windows)",
                                        total=self.steps * self.batch, info="")
        self.t, self.seen = time.time(), 0

    def advance(self, n: int, m: dict) -> None:
        self.seen += n
        if self.enabled:
            wps = self.seen / max(time.time() - self.t, 1e-9)
            self.p.update(self.task, advance=n, info=f"loss {m['loss']:.4f} lr {m['lr']:.2e} {wps:,.0f} win/s")
            self.p.update(self.all, advance=1)

    def done_epoch(self, rec: dict, improved: bool) -> None:
        if self.enabled:
            tr, va = rec["train"], rec["val"]
            parts = " ".join(f"{k} {v:.4f}" for k, v in va.items())
            self.p.console.print(f"epoch {rec['epoch']:3d} stage {rec['stage']} train loss {tr['loss']:.4f} "
                                 f"| val {parts} | {rec['windows_per_s']:,.0f} win/s{' *' if improved else ''}")

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
