"""Hierarchical self-supervised pretraining (CrossHAR): stage 1 masked reconstruction, stage 2
masked reconstruction + NT-Xent between two physically augmented views.

`run(...)` does the set-up; `train_one_epoch` and `evaluate` stay short. Every epoch writes
`last.pt` atomically (model, optimiser, history); the best validation loss of the final stage
writes `best.pt`. Randomness is drawn from generators seeded by (seed, epoch, rank), so a run
resumed from `last.pt` ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from crosshar import checkpoint
from crosshar.augment import Augmenter
from crosshar.config import AugmentConfig, EncoderConfig, PretrainConfig, WindowConfig
from crosshar.data.sources import in_label_space, load_sources, split_by_subject
from crosshar.device import Precision, batch_to, place, resolve_device, take
from crosshar.errors import CrossharError, ResumeError
from crosshar.models.pretrainer import CHECKPOINT_KEYS, FORMAT, PretrainingModel
from crosshar.train.distributed import Dist, init_distributed, rank_device, sync_buffers
from crosshar.train.progress import TB, PretrainBar
from crosshar.train.runs import (check_progress, git_commit, job_differences, new_run_dir, run_to_resume,
                                 write_run_info)
from crosshar.train.schedule import batches, cosine_lr, generator


@dataclass(frozen=True)
class PretrainJob:
    """Everything one pretraining run needs, resolved."""

    datasets: tuple[str, ...]
    window: WindowConfig
    encoder: EncoderConfig
    augment: AugmentConfig
    pretrain: PretrainConfig
    data_dir: str | None = None
    on_bad: str = "error"


class Model(PretrainingModel):
    """The pretraining model of a job (crosshar.models.pretrainer.PretrainingModel)."""

    def __init__(self, job: PretrainJob):
        super().__init__(job.window, job.encoder, job.pretrain)


def split_epochs(cfg: PretrainConfig, total: int | None) -> PretrainConfig:
    """`cfg` with `total` epochs split between the stages in its own proportion (None: unchanged)."""
    if total is None:
        return cfg
    s1 = round(total * cfg.stage1_epochs / max(cfg.epochs, 1))
    return cfg.replace(stage1_epochs=s1, stage2_epochs=total - s1)


def stage_of(epoch: int, cfg: PretrainConfig) -> int:
    return 1 if epoch < cfg.stage1_epochs else 2


def train_one_epoch(model, opt, X: torch.Tensor, aug: Augmenter, job: PretrainJob, epoch: int, ctx: Dist,
                    step0: int, total_steps: int, on_batch: Callable[[int, dict], None],
                    prec: Precision | None = None) -> dict:
    """One epoch over X (on the CPU or already on prec.device; batches are moved there)."""
    cfg = job.pretrain
    prec = prec or Precision(X.device)
    stage = stage_of(epoch, cfg)
    g = generator(cfg.seed, epoch, ctx.rank)
    g_order = generator(cfg.seed, epoch, 10_000)  # same order on every rank
    torch.manual_seed(cfg.seed * 100_003 + epoch * 101 + ctx.rank)  # dropout
    model.train()
    sums: dict[str, float] = {}
    n = 0
    step = step0
    warm = cfg.warmup_epochs * max(1, math.ceil(len(X) / (cfg.batch_size * ctx.world)))
    for idx in batches(len(X), cfg.batch_size, g_order, ctx, drop_last=True):
        lr = cosine_lr(step, total_steps, warm, cfg.lr) if cfg.lr_schedule == "cosine" else cfg.lr
        for pg in opt.param_groups:
            pg["lr"] = lr
        x = take(X, idx, prec.device)
        with prec.autocast():
            if stage == 1:
                out = model(aug(x, g), None, 1, g)
            else:
                v1, v2 = aug.two_views(x, g, job.pretrain.views)
                out = model(v1, v2, 2, g)
        loss = out["loss"].float()
        if not torch.isfinite(loss):
            losses = ", ".join(f"{k} {float(v):.4g}" for k, v in out.items())  # numbers, not tensor reprs with grad_fn
            raise CrossharError(f"non-finite loss at epoch {epoch + 1}, step {step}: {losses}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        gn = prec.step(loss, opt, model.parameters(), cfg.grad_clip)
        step += 1
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
        n += len(idx)
        on_batch(len(idx), {"loss": float(loss.detach()), "lr": lr, "grad_norm": float(gn), "step": step})
    return {k: v / max(n, 1) for k, v in sums.items()} | {"steps": step - step0}


@torch.no_grad()
def evaluate(model, X: torch.Tensor, job: PretrainJob, stage: int, prec: Precision | None = None) -> dict:
    """Loss on held-out subjects with fixed masks and views (comparable across epochs)."""
    prec = prec or Precision(X.device)
    model.eval()
    g = generator(job.pretrain.seed, 999_983)
    aug = Augmenter(job.augment, job.window.n_channels, job.window.rate_hz)
    sums: dict[str, float] = {}
    for i in range(0, len(X), 512):
        x = batch_to(X[i:i + 512], prec.device)
        with prec.autocast():
            if stage == 1:
                out = model(x, None, 1, g)
            else:
                v1, v2 = aug.two_views(x, g, job.pretrain.views)
                out = model(v1, v2, 2, g)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(x)
    return {k: v / max(len(X), 1) for k, v in sums.items()}


def run(job: PretrainJob, out: str | Path | None = None, resume: bool = False,
        log: Callable[[str], None] = print, progress: bool = True, device: str | torch.device = "cpu") -> Path:
    """Pretrain an encoder; returns the run folder (best.pt, last.pt, run.json, tb/).

    `device`: "cpu", "cuda", "auto", ... (crosshar.device.resolve_device); with torchrun on CUDA each
    rank takes GPU $LOCAL_RANK. The training windows move to the device once when they fit.
    """
    dev = resolve_device(device)
    ctx = init_distributed(dev)
    dev = rank_device(dev)
    cfg = job.pretrain
    torch.manual_seed(cfg.seed)
    ws = in_label_space(load_sources(list(job.datasets), job.data_dir, job.window, job.on_bad), cfg.activities)
    train, val, split = split_by_subject(ws, cfg.val_fraction, cfg.seed)
    run_dir = _run_dir(job, out, resume, ctx)
    model = Model(job)
    Xtr, Xva = torch.from_numpy(train.X), torch.from_numpy(val.X)
    if job.encoder.input_scaling == "source_stats":
        model.scaler.fit(Xtr)
    model.to(dev)
    Xtr, Xva = place(Xtr, dev), place(Xva, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "step": 0, "history": [], "best": {"stage": 0, "val_loss": math.inf, "epoch": -1}}
    if resume:
        state = _resume(run_dir / "last.pt", job, model, opt, log) or state
    info = {
        "kind": "pretrain", "source": "+".join(job.datasets), "datasets": list(job.datasets), "finished": False,
        "configs": {"window": job.window.to_dict(), "encoder": job.encoder.to_dict(),
                    "augment": job.augment.to_dict(), "pretrain": cfg.to_dict()},
        "split": split, "n_train": len(train), "n_val": len(val), "world_size": ctx.world,
        "data": ws.manifest, "git_commit": git_commit(),
    }
    if ctx.main:
        write_run_info(run_dir, info)
        log(f"pretraining on {len(train):,} windows from {len(split['train_subjects'])} subjects of {info['source']} "
            f"(validation: {len(val):,} windows, {len(split['val_subjects'])} subjects)"
            + (f", the activities of label space {cfg.activities} only" if cfg.activities else "") + f"; run folder {run_dir}")
    t_start = time.time()
    _epochs(job, model, opt, Xtr, Xva, state, split, run_dir, ctx, dev, progress)
    if ctx.main:
        best = state["best"]
        info.update(finished=True, history=state["history"], best=best, seconds=round(time.time() - t_start, 1))
        write_run_info(run_dir, info)
        log(f"done: best validation loss {best['val_loss']:.4f} (stage {best['stage']}, epoch {best['epoch']}); "
            f"{run_dir / 'best.pt'}")
    return run_dir


def _run_dir(job: PretrainJob, out: str | Path | None, resume: bool, ctx: Dist) -> Path:
    """--out, the latest unfinished run of the sources (--resume without --out), or a new folder."""
    tag = "+".join(job.datasets)
    if resume and ctx.main:
        out = run_to_resume("pretrain", tag, out)
    return new_run_dir("pretrain", tag, out) if ctx.main else Path(out or ".")


def _resume(last: Path, job: PretrainJob, model: Model, opt, log: Callable[[str], None]) -> dict | None:
    """Model and optimiser state from last.pt, and where the run stopped; None without last.pt."""
    if not last.is_file():
        log(f"--resume: {last} not found; starting from scratch")
        return None
    ck = checkpoint.load(last, FORMAT, keys=CHECKPOINT_KEYS + ("optimizer", "epoch", "step", "history", "best"))
    with checkpoint.reading(last):  # a damaged entry: one line naming last.pt, not a traceback
        kinds = {"job": dict, "epoch": int, "step": int, "history": list, "best": dict}
        wrong = [k for k, t in kinds.items() if not isinstance(ck[k], t) or isinstance(ck[k], bool)]
        if wrong or not 0 <= ck["epoch"] < job.pretrain.epochs:
            raise ValueError(f"{', '.join(wrong) or 'epoch'} {ck[(wrong or ['epoch'])[0]]!r} is not what a "
                             f"{job.pretrain.epochs}-epoch run writes"[:200])
        check_progress(ck, ("stage", "val_loss"))
        _check_same_job(ck, job, last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
    log(f"resuming {last.parent} at epoch {ck['epoch'] + 2}/{job.pretrain.epochs}" if ck["epoch"] + 1 < job.pretrain.epochs
        else f"resuming {last.parent}: all {job.pretrain.epochs} epochs were trained; finishing the run")
    return {"epoch": ck["epoch"] + 1, "step": ck["step"], "history": ck["history"], "best": ck["best"]}


def _epochs(job: PretrainJob, model: Model, opt, Xtr: torch.Tensor, Xva: torch.Tensor, state: dict, split: dict,
            run_dir: Path, ctx: Dist, dev: torch.device, progress: bool) -> None:
    """The epochs left from state["epoch"]: train, validate, keep best.pt and last.pt (updates `state`)."""
    cfg = job.pretrain
    prec = Precision(dev)
    ddp_model = (DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True)
                 if ctx.world > 1 else model)
    aug = Augmenter(job.augment, job.window.n_channels, job.window.rate_hz)
    steps_per_epoch = len(Xtr) // ctx.world // cfg.batch_size or 1
    total_steps = steps_per_epoch * cfg.epochs
    # every scalar's step is the optimiser step (an epoch's at its last step): one scale, so that a resumed run's writer
    # hides what the interrupted one logged after its last.pt (the steps from state["step"] + 1 on)
    tb = TB(run_dir / "tb", enabled=ctx.main, purge_step=state["step"] + 1 if state["step"] else None)
    bar = PretrainBar(cfg.epochs, steps_per_epoch, enabled=progress and ctx.main,
               batch_size=cfg.batch_size, start_epoch=state["epoch"])

    def on_batch(nb: int, m: dict) -> None:
        bar.advance(nb, m)
        tb.scalars(m["step"], **{"train/step_loss": m["loss"], "train/lr": m["lr"], "train/grad_norm": m["grad_norm"]})

    try:
        for epoch in range(state["epoch"], cfg.epochs):
            stage = stage_of(epoch, cfg)
            t0 = time.time()
            bar.epoch(epoch, stage)
            tr = train_one_epoch(ddp_model, opt, Xtr, aug, job, epoch, ctx, state["step"], total_steps, on_batch, prec)
            state["step"] += int(tr.pop("steps"))
            sync_buffers(model, ctx)
            va = evaluate(model, Xva, job, stage, prec)
            if not all(math.isfinite(v) for v in va.values()):  # the loss is checked before each step, not after the last
                raise CrossharError(f"pretraining diverged at epoch {epoch + 1}: validation loss {va} (weights that "
                                    "overflowed); this epoch is not saved: lower the learning rate")
            wps = len(Xtr) / (time.time() - t0)
            rec = {"epoch": epoch + 1, "stage": stage, "train": tr, "val": va, "windows_per_s": wps,
                   "seconds": time.time() - t0}
            state["history"].append(rec)
            tb.scalars(state["step"], **{f"train/{k}": v for k, v in tr.items()}, **{f"val/{k}": v for k, v in va.items()},
                       **{"train/windows_per_s": wps, "train/epoch": epoch + 1})
            improved = stage > state["best"]["stage"] or va["loss"] < state["best"]["val_loss"]
            if improved:
                state["best"] = {"stage": stage, "val_loss": va["loss"], "epoch": epoch + 1}
            if ctx.main:
                ck = {"format": FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                      "step": state["step"], "history": state["history"], "best": state["best"],
                      "job": _job_dict(job), "split": split}
                if improved:
                    checkpoint.save(run_dir / "best.pt", ck)
                checkpoint.save(run_dir / "last.pt", ck)
            bar.done_epoch(rec, improved)
    finally:
        bar.close()
        tb.close()


def _job_dict(job: PretrainJob) -> dict:
    return {"datasets": list(job.datasets), "window": job.window.to_dict(), "encoder": job.encoder.to_dict(),
            "augment": job.augment.to_dict(), "pretrain": job.pretrain.to_dict()}


def _check_same_job(ck: dict, job: PretrainJob, path: Path) -> None:
    """Refuse to resume a checkpoint written for another job, naming what differs (`section.key`). A key the
    checkpoint lacks was written before that option existed: it reads as the option's default (the behaviour
    it had then), so a run interrupted before an option was added still resumes. A key this version does not
    know (a newer version's option, or a hand edit) is a difference too, unless the config lists it as removed."""
    diff = job_differences(ck.get("job"), _job_dict(job), {"window": WindowConfig, "encoder": EncoderConfig,
                                                           "augment": AugmentConfig, "pretrain": PretrainConfig})
    if diff:
        raise ResumeError(f"{path}: cannot resume: the configuration differs in {', '.join(diff)}")
