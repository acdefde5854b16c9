"""Finetuning: a registered head on the (frozen or trainable) pretrained encoder, with a fraction of
the source labels; model selection on held-out *source* subjects only.

A run resumes: at most every CHECKPOINT_EVERY_S seconds an epoch's end writes `last.pt` atomically (model,
optimiser, schedule, the weight average, the history); `run(..., resume=True)` continues from it and, as every
epoch draws from generators seeded by (seed, epoch), ends with exactly the weights of an uninterrupted run.
`last.pt` is removed when the run finishes (best.pt is the run's model).

Training windows may be oversampled with Borderline-SMOTE (imbalanced-learn) and augmented on the
fly; validation windows never are. The best checkpoint (validation macro-F1) is a self-contained
classifier (crosshar.models.classifier) that `crosshar cross` and `crosshar export` load alone.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from crosshar.augment import Augmenter
from crosshar.config import AugmentConfig, EncoderConfig, FinetuneConfig, WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.sources import apply_split, load_sources, split_by_subject
from crosshar.data.splits import label_subset
from crosshar.data.windows import CHANNELS, WindowSet
from crosshar.device import Precision, place, resolve_device, take
from crosshar.errors import ConfigError, CrossharError, ResumeError
from crosshar.losses import CenterLoss, partial_cross_entropy, smoothed
from crosshar.data.store import prepare
from crosshar.inference import encode, evaluate, load_encoder, pretrain_window
from crosshar.models import classifier as clf
from crosshar.models.encoder import Encoder
from crosshar.models.heads import head_options, list_heads, resolved_options, saved_options
from crosshar.models.heads.common import mix_statistics
from crosshar.models.heads.ensemble import HeadEnsemble
from crosshar.models.scaling import InputPipeline
from crosshar.train.progress import TB, EpochBar
from crosshar import checkpoint
from crosshar.train.runs import (check_progress, git_commit, job_differences, new_run_dir, run_to_resume,
                                 write_run_info)
from crosshar.train.schedule import generator, seed_all


STATE_FORMAT = "crosshar-finetune-state-v1"  # last.pt: where an interrupted run resumes
STATE_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "best", "bad_epochs", "job")
CHECKPOINT_EVERY_S = 30.0  # last.pt at most this often: the default 40-epoch run (~30 s) writes it about once


@dataclass(frozen=True)
class FinetuneJob:
    """One finetuning run, resolved.

    Attributes:
        datasets: source dataset names.
        classes: the label space the head is trained on (vocabulary nodes).
        encoder_run: pretraining run folder, or None for a head on raw windows (no pretraining).
        random_encoder: without encoder_run, the encoder architecture randomly initialised instead of
            none (trained with the head unless `freeze`): the exact no-pretraining counterpart.
        exclude_subjects: subjects that must not be used at all (the oracle's test subjects).
        init_run: a finished finetuning run (or its best.pt) of the same model (encoder run, head, classes) whose
            weights this run starts from instead of the pretrained encoder and a new head: LP-FT (Kumar et al., ICLR
            2022), the encoder trained end to end (`freeze = False`) from the head its frozen finetuning learnt.
    """

    datasets: tuple[str, ...]
    window: WindowConfig
    finetune: FinetuneConfig
    augment: AugmentConfig
    classes: tuple[str, ...]
    label_space: str = "crosshar4"
    encoder_run: str | None = None
    head_cfg: dict = field(default_factory=dict)
    pipeline: InputPipeline | None = None  # no encoder run: input scaling and frame (None: the configured default)
    data_dir: str | None = None
    on_bad: str = "error"
    exclude_subjects: tuple[str, ...] = ()
    random_encoder: bool = False  # no encoder run: put a randomly initialised encoder (configs/encoder.toml) under the head
    encoder: EncoderConfig | None = None  # random_encoder: its architecture (None: configs/encoder.toml)
    init_run: str | None = None


def default_window(encoder_run: str | None) -> WindowConfig:
    """The pretraining run's window config, else the packaged default."""
    from crosshar import config as C

    return pretrain_window(encoder_run) if encoder_run is not None else C.load("window")


def source_classes(space: str, datasets: tuple[str, ...], window: WindowConfig, data_dir, on_bad: str = "error",
                   extra_label_sets: tuple[set, ...] = ()) -> tuple[str, ...]:
    """The named space intersected with the source datasets' pooled label set (and any extra sets).

    The sources' labels are pooled: a class that one source has at a finer level than another
    (UCI's upstairs/downstairs against WISDM's stairs) stays fine, and the windows with the
    coarser label are left out of the supervised part (they still feed pretraining), or, with
    FinetuneConfig.coarse_labels, train on the summed probability of the classes under it.
    """
    pooled = set().union(*(set(prepare(d, data_dir, window, on_bad=on_bad).labels.tolist()) for d in datasets))
    return LabelSpace.named(space).intersect(pooled, *extra_label_sets).classes


def _smote(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Borderline-SMOTE on flattened training windows (never validation or test data)."""
    from imblearn.over_sampling import BorderlineSMOTE

    counts = np.bincount(y)
    k = int(min(5, counts[counts > 0].min() - 1))
    if k < 1 or len(np.unique(y)) < 2:
        return X, y
    sm = BorderlineSMOTE(random_state=seed, k_neighbors=k, m_neighbors=min(10, len(y) - 1))
    Xr, yr = sm.fit_resample(X.reshape(len(X), -1), y)
    return Xr.reshape(-1, *X.shape[1:]).astype(np.float32), yr


def encode_labels(ws: WindowSet, space: LabelSpace, coarse: bool = False
                  ) -> tuple[WindowSet, np.ndarray, tuple[tuple[int, ...], ...]]:
    """(labelled windows, codes, groups). Code k < K is class k. With `coarse`, a window whose label
    covers several classes (WISDM's "stairs" over upstairs and downstairs, beside UCI's fine labels)
    is kept too, with code K + g, groups[g] being those classes (it trains on their summed
    probability: crosshar.losses.partial_cross_entropy); without, it is left out."""
    y = space.encode(ws.labels)
    groups: list[tuple[int, ...]] = []
    if coarse:
        for lab in np.unique(ws.labels[y < 0]):
            cov = space.covered(str(lab))
            if len(cov) >= 2:
                groups += [cov] if cov not in groups else []
                y[(ws.labels == lab) & (y < 0)] = len(space) + groups.index(cov)
    keep = np.flatnonzero(y >= 0)
    return ws.subset(keep), y[keep], tuple(groups)


def build_model(job: FinetuneJob) -> tuple[clf.HARClassifier, dict]:
    """The classifier and its checkpoint meta (encoder from the pretraining run when given)."""
    if job.finetune.cadence_views > 1 and not 0 < job.augment.cadence < 1:
        raise ConfigError(f"cadence_views = {job.finetune.cadence_views} needs a cadence range to span: set the "
                          f"finetuning augmentation's cadence in (0, 1), got {job.augment.cadence}")
    enc, enc_cfg, split = None, None, None
    if job.encoder_run is None:  # the same input pipeline as a pretrained model's, unless told otherwise
        pipeline = job.pipeline or InputPipeline.default()
        scaler = pipeline.scaler(job.window.n_channels, job.window.rate_hz)
        if job.random_encoder:
            from crosshar import config as C

            cfg = (job.encoder or C.load("encoder")).replace(input_scaling=pipeline.scaling, input_frame=pipeline.frame)
            enc, enc_cfg = Encoder(cfg, job.window.n_channels, max_len=job.window.window), cfg.to_dict()
    else:
        enc, scaler, jd = load_encoder(job.encoder_run)
        if WindowConfig.from_dict(jd["window"]) != job.window:
            raise ConfigError(f"the pretraining run {job.encoder_run} used windows {jd['window']}, "
                              f"but finetuning asks for {job.window.to_dict()}")
        enc_cfg, split, pipeline = jd["encoder"], jd["split"], InputPipeline.of_encoder(jd["encoder"])
    skip = clf.uses_skip(enc is not None, job.finetune.head_input, job.finetune.skip_frame)
    head = clf.make_head(job.finetune.head, clf.head_dim(enc, job.window.n_channels, skip), len(job.classes),
                         job.window.window, dict(job.head_cfg), job.finetune.ensemble)
    skip_frame = job.finetune.skip_frame if skip else "encoder"
    model = clf.HARClassifier(scaler, enc, head, skip=skip,
                              skip_scaler=clf.skip_scaler(pipeline.scaling, job.window.n_channels, skip_frame, job.window.rate_hz))
    meta = {
        "window": job.window.to_dict(), "channels": list(CHANNELS[job.window.channels]),
        "classes": list(job.classes), "label_space": job.label_space, "encoder": enc_cfg,
        "head": job.finetune.head, "head_cfg": resolved_options(job.finetune.head, job.head_cfg), **pipeline.to_meta(),
        "head_input": "embedding+window" if skip else "embedding", "skip_frame": skip_frame,
        "heading_views": job.finetune.heading_views,
        "cadence_views": job.finetune.cadence_views,
        "cadence_span": job.augment.cadence if job.finetune.cadence_views > 1 else None,
        "ensemble": job.finetune.ensemble,
        "source": list(job.datasets), "pretrain_run": job.encoder_run, "pretrain_split": split,
        "units": {"acc": "m/s^2 including gravity", "gyro": "rad/s"}, "sign_convention": "android",
        # the finetuning augmentation (test-time views draw from it); None when finetuning ran without one
        "augment": job.augment.to_dict() if job.finetune.augment else None,
    }
    if job.init_run is not None:
        start_from(model, meta, job.init_run)
    return model, meta


# what a run started from (init_run) must share with the model it starts: its weights fit this architecture
INIT_KEYS = ("window", "classes", "label_space", "encoder", "head", "head_cfg", "pretrain_run", "head_input",
             "skip_frame", "ensemble", "scaling", "frame")


def start_from(model: clf.HARClassifier, meta: dict, init_run: str | Path) -> None:
    """Load a finished finetuning run's weights into `model` (whose checkpoint meta is `meta`): CrossharError, naming
    the run and the first field, when that run's model is another one (INIT_KEYS)."""
    m0, meta0 = clf.load(init_run)
    for key in INIT_KEYS:
        if meta0.get(key) != meta.get(key):
            raise CrossharError(f"{init_run}: its {key} {meta0.get(key)!r} differs from this finetuning's "
                                f"{meta.get(key)!r}; a run starts only from a model of the same architecture")
    model.load_state_dict(m0.state_dict())


def make_optimizer(cfg: FinetuneConfig, params: list, encoder_params: list = ()) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and per-epoch schedule a finetune config names.

    Lion runs at a third of `lr` with three times the weight decay (the ratio MAG-Res2Net found,
    Sec. 4.3); "step" multiplies the rate by `step_gamma` every `step_epochs` (DanHAR's schedule).
    `encoder_params` (a trained encoder's) run at `encoder_lr_scale` times the rate of `params`.
    """
    lr = cfg.lr / 3 if cfg.optimizer == "lion" else cfg.lr
    groups = [{"params": list(params), "lr": lr}]
    if len(encoder_params):
        groups.append({"params": list(encoder_params), "lr": lr * cfg.encoder_lr_scale})
    if cfg.optimizer == "lion":
        from lion_pytorch import Lion

        opt = Lion(groups, lr=lr, weight_decay=cfg.weight_decay * 3)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs, gamma=cfg.step_gamma)
    elif cfg.lr_schedule == "constant":
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    return opt, sched


@dataclass
class _Data:
    """The windows one finetuning run trains and selects on."""

    Xtr: np.ndarray  # (n, T, C) labelled training windows (after oversampling)
    ytr: np.ndarray  # (n,) class indices, or K + g for a window labelled with groups[g] (a coarser label)
    val: WindowSet  # labelled validation windows (held-out source subjects)
    yva: np.ndarray
    split: dict  # the subject split used
    n_labelled: int  # labelled training windows before oversampling
    n_train: int  # labelled training windows in all (before the label rate)
    train_X: np.ndarray  # every labelled training window (for source statistics)
    groups: tuple[tuple[int, ...], ...] = ()  # the class sets of coarse labels (encode_labels)
    unlabelled: np.ndarray | None = None  # (m, T, C) the training windows outside the label rate (FinetuneConfig.unlabelled)


def load_data(job: FinetuneJob, meta: dict, log: Callable[[str], None]) -> _Data:
    """Source windows, split by subject (the pretraining run's split when there is one), labelled in
    the job's classes, cut to the label rate, oversampled when asked."""
    cfg = job.finetune
    space = LabelSpace(job.classes, job.label_space)
    ws = load_sources(list(job.datasets), job.data_dir, job.window, job.on_bad)
    if job.exclude_subjects:
        ws = ws.subset(np.flatnonzero(~np.isin(ws.subjects, list(job.exclude_subjects))))
    if meta["pretrain_split"] is not None and not job.exclude_subjects:
        train, val = apply_split(ws, meta["pretrain_split"])
        split = meta["pretrain_split"]
    else:
        train, val, split = split_by_subject(ws, cfg.val_fraction, cfg.seed)
    train, ytr_all, groups = encode_labels(train, space, coarse=cfg.coarse_labels)  # selection: fine labels only
    val, yva, _ = encode_labels(val, space)
    if len(val) == 0 or len(train) == 0:
        raise CrossharError(f"no labelled windows in the {'validation' if len(train) else 'training'} subjects "
                            f"for classes {list(job.classes)}")
    keep = label_subset(ytr_all, cfg.label_rate, cfg.seed)
    Xtr, ytr = train.X[keep], ytr_all[keep]
    K = len(job.classes)
    seen = {c for c in ytr.tolist() if c < K} | {i for c in set(ytr.tolist()) if c >= K for i in groups[c - K]}
    missing = sorted(set(range(K)) - seen)
    if missing:
        raise CrossharError(f"the labelled subset has no window of {[job.classes[i] for i in missing]}")
    if cfg.smote:
        n0 = len(Xtr)
        Xtr, ytr = _smote(Xtr, ytr, cfg.seed)
        smallest = int(np.bincount(ytr)[np.unique(ytr)].min())
        log(f"Borderline-SMOTE: {n0} -> {len(Xtr)} training windows (validation untouched)" + (
            f"; not applied: a class has {smallest} labelled window, and it needs 2 of every class" if smallest < 2 else ""))
    unlabelled = np.delete(train.X, keep, axis=0) if cfg.unlabelled > 0 else None
    return _Data(Xtr, ytr, val, yva, split, int(len(keep)), int(len(train)), train.X, groups, unlabelled)


@dataclass
class _Trainer:
    """What one epoch of finetuning needs besides the model and the windows."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler  # stepped once per epoch
    params: list
    cfg: FinetuneConfig
    aug: Augmenter | None
    center: CenterLoss | None
    cached: bool  # the training tensor holds the frozen encoder's features, not windows
    prec: Precision
    allowed: torch.Tensor | None = None  # (K + G, K) bool when coarse labels train (partial_cross_entropy)
    average: torch.optim.swa_utils.AveragedModel | None = None  # the moving average of the model (average_epochs)
    clip_groups: list | None = None  # parameter groups whose gradient norms are clipped separately (an ensemble's members)
    unlabelled: torch.Tensor | None = None  # (m, T, C) unlabelled source windows (FinetuneConfig.unlabelled > 0)
    unlabelled_feats: torch.Tensor | None = None  # (m, T, D) their frozen encoder's features (the unaugmented view)
    pseudo: list = field(default_factory=lambda: [0, 0])  # this epoch's [confident, drawn] unlabelled windows
    weight: torch.Tensor | None = None  # (K,) class weights of the cross-entropy (FinetuneConfig.class_weight)

    def selected(self, model: clf.HARClassifier) -> clf.HARClassifier:
        """The model that validation selects and best.pt saves: the moving average when there is one."""
        return model if self.average is None else self.average.module


def train_one_epoch(model: clf.HARClassifier, X: torch.Tensor, y: torch.Tensor, tr: _Trainer, epoch: int,
                    on_step: Callable[[], None] = lambda: None) -> float:
    """One epoch over (X, y) in seeded random order; returns the mean training loss.

    X: (n, T, C) windows, or (n, T, D) cached head inputs when `tr.cached`; y: (n,) class indices.
    """
    cfg, dev = tr.cfg, tr.prec.device
    g = generator(cfg.seed, epoch)
    torch.manual_seed(cfg.seed * 7919 + epoch)
    model.train()
    if model.encoder is not None and cfg.freeze:
        model.encoder.eval()
    tot, n = 0.0, 0
    for idx in torch.randperm(len(X), generator=g).split(cfg.batch_size):
        x, yb = take(X, idx, dev), take(y, idx, dev)
        if len(idx) < 2:
            continue
        if tr.aug is not None:
            x = tr.aug(x, g)
        with tr.prec.autocast():
            feats = x if tr.cached else model.features(x)  # cached features when frozen
            if cfg.style_mix > 0:
                feats = class_style_mix(feats, yb, cfg.style_mix, g)
            if cfg.mixup > 0:
                loss = _mixup_loss(model, feats, yb, tr, g)
            else:
                loss = _loss(model, feats, yb, tr)
            if tr.unlabelled is not None:
                loss = loss + cfg.unlabelled * unlabelled_loss(model, tr, g)
        loss = loss.float()
        if not torch.isfinite(loss):
            raise CrossharError(f"non-finite loss at epoch {epoch + 1}; lower the learning rate")
        tr.opt.zero_grad(set_to_none=True)
        moves = sam_ascent(loss, tr.params, cfg.sam) if cfg.sam > 0 else None
        if moves is not None:  # the gradient is taken again at the batch's worst weights within rho (SAM)
            with tr.prec.autocast(), running_stats_frozen(model):
                again = model.features(x) if feats.requires_grad else feats  # frozen features: the same tensor
                worst = _loss(model, again, yb, tr).float()
            if not torch.isfinite(worst):
                raise CrossharError(f"non-finite loss at epoch {epoch + 1} (at SAM's moved weights); lower the "
                                    "learning rate or sam")
            tr.prec.step(worst, tr.opt, tr.clip_groups or tr.params, cfg.grad_clip, lambda: sam_restore(moves))
        else:
            tr.prec.step(loss, tr.opt, tr.clip_groups or tr.params, cfg.grad_clip)
        if tr.average is not None:
            tr.average.update_parameters(model)
        tot += float(loss.detach()) * len(idx)
        n += len(idx)
        on_step()
    return tot / max(n, 1)


def class_style_mix(x: torch.Tensor, y: torch.Tensor, p: float, g: torch.Generator, alpha: float = 0.1,
                    eps: float = 1e-6) -> torch.Tensor:
    """MixStyle (Zhou et al., ICLR 2021) within each class: each window of x (B, T, D), the head's inputs, with
    probability `p` has its per-channel mean and standard deviation over time replaced by a Beta(alpha, alpha) mix of
    its own and those of another window of the batch with the same label y (B,), its normalised content kept: another
    subject's intensity and offsets for the same activity. Across classes those statistics carry the class itself
    (results/matrix-mixstyle/), hence the partner from the same class; a window alone in its class keeps its own.
    Draws from `g`. Returns (B, T, D)."""
    B = len(x)
    partner = torch.arange(B)
    for c in torch.unique(y.cpu()):
        idx = (y.cpu() == c).nonzero().flatten()
        partner[idx] = idx[torch.randperm(len(idx), generator=g)]
    lam = torch.from_numpy(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g))).beta(alpha, alpha, B))
    on = torch.rand(B, generator=g) < p
    lam = torch.where(on, lam, torch.ones_like(lam)).to(x.device, x.dtype)[:, None, None]
    return mix_statistics(x, lam, partner.to(x.device), eps)


def sam_ascent(loss: torch.Tensor, params: list[torch.Tensor], rho: float) -> list | None:
    """Sharpness-aware minimisation's first half (Foret et al., ICLR 2021): the gradient g of `loss` over `params`
    (not accumulated into .grad), and every parameter moved in place by e = rho * g / ||g||, ||g|| the norm over
    all of them: the worst weights within rho of these, to first order. The step's gradient is then taken there
    and applied to the weights as they were (sam_restore). Returns the moves [(param, e)], or None when nothing
    moved (a zero or non-finite gradient: the step is then an ordinary one)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    if not pairs:
        return None
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for _, g in pairs]))
    if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
        return None
    moves = []
    with torch.no_grad():
        for p, g in pairs:
            e = (g.float() * (rho / norm)).to(p.dtype)
            p.add_(e)
            moves.append((p, e))
    return moves


def sam_restore(moves: list) -> None:
    """Put the weights sam_ascent moved back where they were (their gradients stay: the worst point's)."""
    with torch.no_grad():
        for p, e in moves:
            p.sub_(e)


@contextlib.contextmanager
def running_stats_frozen(model: torch.nn.Module):
    """Batch norms keep their running statistics through a second pass over the same batch (SAM's): momentum 0
    while inside, so each batch counts once, as without SAM; the batch still normalises itself."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    kept = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, k in zip(norms, kept):
            m.momentum = k


def _criterion(tr: _Trainer) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy (weighted by class when `tr.weight` is set: FinetuneConfig.class_weight), or
    partial_cross_entropy over the allowed class sets when labels can be coarser; either with
    FinetuneConfig.label_smoothing's share of the target spread over the classes."""
    if tr.allowed is not None:
        ce = lambda lg, t: partial_cross_entropy(lg, t, tr.allowed)  # noqa: E731
    else:
        ce = F.cross_entropy if tr.weight is None else (lambda lg, t: F.cross_entropy(lg, t, weight=tr.weight))  # noqa: E731
    return smoothed(ce, tr.cfg.label_smoothing)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) "balanced" class weights of training labels `y` (n,): n / (K n_k), so that every class weighs as much
    in the loss as if the classes were equally frequent (pooled sources bring different class priors: WISDM adds
    walking but no upstairs or downstairs beside UCI). A class without a window gets weight 0 (nothing to weigh)."""
    counts = np.bincount(y[y < n_classes], minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)


def _loss(model: clf.HARClassifier, feats: torch.Tensor, y: torch.Tensor, tr: _Trainer) -> torch.Tensor:
    """Cross-entropy (over a class set where a label is coarser: partial_cross_entropy), plus the
    weighted center loss on the head's features or logits when asked (fine labels only)."""
    ce = _criterion(tr)
    if isinstance(model.head, HeadEnsemble):  # each member on its own loss: the sum trains each as if alone
        logits = model.head.member_logits(feats)  # (K, B, C)
        return sum(ce(lg, y) for lg in logits)
    if tr.center is None:
        return ce(model.head(feats), y)
    f = model.head.forward_features(feats)
    logits = model.head.fc(f)  # every registered head ends in .fc
    on = logits if tr.cfg.center_on == "logits" else f
    fine = y < logits.shape[-1]
    return ce(logits, y) + tr.cfg.center_loss * tr.center(on[fine].float(), y[fine])


def _mixup_loss(model: clf.HARClassifier, feats: torch.Tensor, y: torch.Tensor, tr: _Trainer,
                g: torch.Generator) -> torch.Tensor:
    """Mixup (Zhang et al. 2018) on the head's input: feats (B, T, D) mixed with a shuffled copy of
    the batch with one weight lam ~ Beta(alpha, alpha); the loss is the same mix of the two labels'
    losses (cross-entropy is linear in the target, so this is cross-entropy on the mixed label)."""
    lam = float(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g))).beta(tr.cfg.mixup, tr.cfg.mixup))
    perm = torch.randperm(len(y), generator=g).to(y.device)
    mixed = lam * feats + (1 - lam) * feats[perm]
    ce = _criterion(tr)
    logits = model.head.member_logits(mixed) if isinstance(model.head, HeadEnsemble) else model.head(mixed)[None]
    return sum(lam * ce(lg, y) + (1 - lam) * ce(lg, y[perm]) for lg in logits)  # (K, B, C): K heads, each alone


def unlabelled_loss(model: clf.HARClassifier, tr: _Trainer, g: torch.Generator) -> torch.Tensor:
    """FixMatch's consistency term (Sohn et al. 2020) on `unlabelled_ratio` x batch_size unlabelled
    source windows drawn at random: each is classified unaugmented (no gradient); where the top
    class probability reaches `threshold`, that class is the target of the same window through the
    finetuning augmentation (the strong view). Returns the summed cross-entropy / windows drawn, a
    scalar (0 when none is confident); counts the confident windows in tr.pseudo."""
    cfg, dev = tr.cfg, tr.prec.device
    n = min(len(tr.unlabelled), cfg.unlabelled_ratio * cfg.batch_size)
    idx = torch.randint(len(tr.unlabelled), (n,), generator=g)
    x = take(tr.unlabelled, idx, dev)
    with torch.no_grad():
        weak = take(tr.unlabelled_feats, idx, dev) if tr.unlabelled_feats is not None else model.features(x)
        conf, pseudo = F.softmax(model.head(weak).float(), dim=-1).max(dim=-1)
    sure = conf >= cfg.threshold
    tr.pseudo[0] += int(sure.sum())
    tr.pseudo[1] += n
    if not bool(sure.any()):
        return torch.zeros((), device=dev)
    logits = model.head(model.features(tr.aug(x[sure], g)))
    return F.cross_entropy(logits.float(), pseudo[sure], reduction="sum") / n


def moving_average(model: clf.HARClassifier, epochs: float, steps_per_epoch: int) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of `model`'s weights and buffers (BatchNorm statistics), updated
    once per optimiser step, whose horizon 1 / (1 - decay) is `epochs` epochs of `steps_per_epoch` steps."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = 1.0 - 1.0 / max(epochs * steps_per_epoch, 1.0)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _trainer(model: clf.HARClassifier, job: FinetuneJob, dev: torch.device,
             groups: tuple[tuple[int, ...], ...] = (), n_train: int = 0) -> _Trainer:
    """Frozen encoder, center loss, optimiser, augmentation and weight average of a finetuning run
    (`groups`: the class sets of coarse labels, load_data's; `n_train`: training windows per epoch)."""
    cfg = job.finetune
    if model.encoder is not None and cfg.freeze:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    center = None
    if cfg.center_loss > 0:
        center_dim = len(job.classes) if cfg.center_on == "logits" else model.head.feature_dim
        center = CenterLoss(len(job.classes), center_dim).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + (list(center.parameters()) if center else [])
    enc = {id(p) for p in model.encoder.parameters()} if model.encoder is not None else set()
    opt, sched = make_optimizer(cfg, [p for p in params if id(p) not in enc], [p for p in params if id(p) in enc])
    aug = Augmenter(job.augment, job.window.n_channels, job.window.rate_hz) if cfg.augment else None
    frozen = model.encoder is not None and cfg.freeze
    allowed = None
    if groups:
        K = len(job.classes)
        sets = torch.zeros(len(groups), K, dtype=torch.bool)
        for g, cls in enumerate(groups):
            sets[g, list(cls)] = True
        allowed = torch.cat([torch.eye(K, dtype=torch.bool), sets]).to(dev)
    average = (moving_average(model, cfg.average_epochs, max(1, n_train // cfg.batch_size))
               if cfg.average_epochs > 0 else None)
    clip_groups = None
    if isinstance(model.head, HeadEnsemble):  # each member clipped as it would be alone; the rest together
        members = [[p for p in m.parameters() if p.requires_grad] for m in model.head.members]
        inside = {id(p) for g in members for p in g}
        clip_groups = members + [[p for p in params if id(p) not in inside]]
    return _Trainer(opt, sched, params, cfg, aug, center, frozen and aug is None, Precision(dev), allowed, average,
                    clip_groups)


def run(job: FinetuneJob, out: str | Path | None = None, log: Callable[[str], None] = print,
        progress: bool = True, device: str | torch.device = "cpu", resume: bool = False) -> Path:
    """Finetune; returns the run folder (best.pt = the selected classifier, run.json = metrics).

    `resume`: continue the interrupted run in `out` (else the newest unfinished run of this job, else of the
    sources) from its last.pt, refusing one written for another job (crosshar.train.runs.job_differences) or other
    data.

    `device`: "cpu", "cuda", "auto", ... (crosshar.device.resolve_device). With a frozen encoder
    the validation windows are encoded once (and the training windows too when nothing augments
    them): the encoder is then a fixed function.
    """
    dev = resolve_device(device)
    cfg = job.finetune
    seed_all(cfg.seed)
    model, meta = build_model(job)
    d = load_data(job, meta, log)
    tag = "+".join(job.datasets)
    if resume:  # without --out: the newest unfinished run of this very job, else the newest of the sources (named)
        out = run_to_resume("finetune", tag, out if out is not None else resumable(job))
    run_dir = new_run_dir("finetune", tag, out)
    log(f"finetuning head {cfg.head} on {len(d.Xtr):,} labelled windows ({cfg.label_rate * 100:.3g} % of {d.n_train:,}) "
        f"of {'+'.join(job.datasets)}; classes {list(job.classes)}; "
        f"{'model selection on' if cfg.select == 'best' else 'validation scored (nothing selected) on'} {len(d.val):,} "
        f"windows of {len(d.split['val_subjects'])} held-out source subjects; encoder: "
        f"{job.encoder_run or 'none (head on raw windows)'}; run folder {run_dir}")
    if meta["scaling"] == "source_stats" and job.encoder_run is None:
        model.scaler.fit(torch.from_numpy(d.train_X))
    model.to(dev)
    tr = _trainer(model, job, dev, d.groups, len(d.Xtr))
    if cfg.class_weight == "balanced":
        w = class_weights(d.ytr, len(job.classes))
        tr.weight = place(torch.from_numpy(w).float(), dev)
        log("class weights (balanced): " + ", ".join(f"{c} {x:.2f}" for c, x in zip(job.classes, w)))
    for g, cls in enumerate(d.groups):
        log(f"{int((d.ytr == len(job.classes) + g).sum()):,} labelled windows say only one of "
            f"{[job.classes[i] for i in cls]}: they train on those classes' summed probability")
    if model.encoder is not None and cfg.freeze:
        model.encoder.eval()
    Fva = encode(model, d.val.X) if model.encoder is not None and cfg.freeze else None
    if d.unlabelled is not None and len(d.unlabelled):
        tr.unlabelled = place(torch.from_numpy(d.unlabelled), dev)
        tr.unlabelled_feats = encode(model, d.unlabelled) if model.encoder is not None and cfg.freeze else None
        log(f"semi-supervised: {len(d.unlabelled):,} unlabelled source training windows, {cfg.unlabelled_ratio} per "
            f"labelled one in each step, pseudo-labelled at confidence >= {cfg.threshold:g} (weight {cfg.unlabelled:g})")
    Xtr_t = encode(model, d.Xtr) if tr.cached else place(torch.from_numpy(d.Xtr), dev)
    ytr_t = place(torch.from_numpy(d.ytr).long(), dev)
    state = _resume(run_dir / "last.pt", job, d, model, tr, log) if resume else None
    # unfinished until the end: best.pt is written while training, and a model cut short is never scored as a run.
    # Written once last.pt is found to be this job's: a refused --resume leaves the folder's run.json as it was
    write_run_info(run_dir, {"kind": "finetune", "finished": False, "source": "+".join(job.datasets),
                             "datasets": list(job.datasets), "head": cfg.head, "git_commit": git_commit()})
    t0 = time.time()
    best, history = _epochs(model, meta, job, tr, Xtr_t, ytr_t, d, Fva, run_dir, log, progress, state)
    info = {"kind": "finetune", "finished": True, "source": "+".join(job.datasets), "datasets": list(job.datasets),
            "head": cfg.head, "classes": list(job.classes), "label_space": job.label_space,
            "encoder_run": job.encoder_run, "init_run": job.init_run, "configs": {"finetune": cfg.to_dict(),
            "augment": job.augment.to_dict() if cfg.augment else None,
            "window": job.window.to_dict(), "head": dict(job.head_cfg)}, "split": d.split,
            "exclude_subjects": list(job.exclude_subjects), "n_labelled": d.n_labelled, "n_train_windows": d.n_train,
            "n_val": int(len(d.val)), "best": best, "history": history, "seconds": round(time.time() - t0, 1),
            "git_commit": git_commit()}
    write_run_info(run_dir, info)
    (run_dir / "last.pt").unlink(missing_ok=True)  # finished: best.pt is the run's model
    kept = "the last epoch" if cfg.select == "last" else "the best source-validation epoch"
    log(f"kept {kept}, {best['epoch']}: source-validation macro-F1 {best['macro_f1']:.3f} "
        f"(accuracy {best.get('accuracy', 0):.3f}); {run_dir / 'best.pt'}")
    return run_dir


def check_finite(model: clf.HARClassifier, va: dict, epoch: int) -> None:
    """Before best.pt is written: every weight and buffer of `model` finite, and its class scores on the source's
    validation windows too (`va`: this epoch's `evaluate` of the same model, whose "nonfinite" counts the windows
    whose scores are not; they are not scored twice). The training loss is checked before each step, so the step
    after it (the epoch's last) could leave weights that overflow: their NaN scores argmax to class 0 and would pass
    on as a validation score and a saved model. CrossharError if not."""
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    n = va["nonfinite"]
    if not bad and n == 0:
        return
    what = (f"weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} are not finite" if bad
            else f"class scores are not finite for {n:,} of {va['n']:,} source-validation windows")
    raise CrossharError(f"finetuning diverged at epoch {epoch + 1}: the model's {what} (an overflow); nothing is "
                        "saved: lower the learning rate")


def improves(score: float, best: float, ties: str = "first") -> bool:
    """Whether an epoch's validation score replaces the best so far (and resets the patience):
    strictly higher, or equal with `ties` == "last". "last" keeps training a model whose validation
    score has saturated (an in-domain oracle at 100 % of labels reaches macro-F1 1.0 within a few
    epochs) instead of stopping at the first epoch that got there."""
    return score > best or (ties == "last" and score == best)


def _epochs(model: clf.HARClassifier, meta: dict, job: FinetuneJob, tr: _Trainer, X: torch.Tensor, y: torch.Tensor,
            d: _Data, Fva: torch.Tensor | None, run_dir: Path, log: Callable[[str], None],
            progress: bool, state: dict | None = None) -> tuple[dict, list]:
    """Train with early stopping on source-validation macro-F1; best.pt keeps the best epoch (with
    `select = "last"` every epoch runs and best.pt keeps the last: no model selection, so the source's validation
    windows are scored only every `val_every` epochs and at the last, for the history; nothing else changes).
    `state` (from last.pt, `_resume`): where an interrupted run continues. Returns (best, history)."""
    cfg = job.finetune
    best, history, bad_epochs, start = {"macro_f1": -1.0, "epoch": 0}, [], 0, 0
    if state is not None:
        best, history, bad_epochs, start = state["best"], state["history"], state["bad_epochs"], state["epoch"]
    tb = TB(run_dir / "tb", purge_step=start + 1 if state is not None else None)  # every scalar's step: the epoch
    last = cfg.select == "last"  # no model selection: every epoch runs and the last is kept
    bar = EpochBar(f"finetuning {cfg.head}", cfg.epochs - start, math.ceil(len(X) / cfg.batch_size), enabled=progress)
    saved = time.monotonic()
    for epoch in range(start, cfg.epochs):
        loss = train_one_epoch(model, X, y, tr, epoch, bar.step)
        tr.sched.step()
        rec = {"epoch": epoch + 1, "train_loss": loss}
        va = None
        if not last or (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            va = evaluate(tr.selected(model), d.val.X, d.yva, list(job.classes), feats=Fva)
            rec |= {"val_accuracy": va["accuracy"], "val_macro_f1": va["macro_f1"]}
        if tr.unlabelled is not None:  # the share of drawn unlabelled windows that were confident enough to train
            rec["pseudo_labelled"] = tr.pseudo[0] / max(tr.pseudo[1], 1)
            tr.pseudo[:] = [0, 0]
        history.append(rec)
        tb.scalars(epoch + 1, **{f"finetune/{k}": v for k, v in rec.items() if k != "epoch"})
        if (last and epoch + 1 == cfg.epochs) or (not last and improves(va["macro_f1"], best["macro_f1"], cfg.ties)):
            best = {"macro_f1": va["macro_f1"], "accuracy": va["accuracy"], "epoch": epoch + 1}
            bad_epochs = 0
            check_finite(tr.selected(model), va, epoch)
            clf.save(run_dir / "best.pt", tr.selected(model), meta | {"metrics": {"source_val": va}, "history": history})
            saved = -math.inf if not last else saved  # last.pt follows at once: best.pt is never newer than it
        else:
            bad_epochs += 1
        if progress:
            log(f"epoch {epoch + 1:3d} loss {rec['train_loss']:.4f}" + (f" val acc {va['accuracy']:.3f} macro-F1 "
                f"{va['macro_f1']:.3f}{' *' if bad_epochs == 0 else ''}" if va else ""))
        bar.epoch(epoch + 1, f"val macro-F1 {va['macro_f1']:.3f}" if va else f"loss {loss:.4f}")
        if bad_epochs >= cfg.patience and not last:
            log(f"early stop: no validation gain for {cfg.patience} epochs")
            break
        # at most every CHECKPOINT_EVERY_S, and after every best.pt of --select best: a resume (whose replay of the
        # epochs since last.pt is exact on a CPU, not always on a GPU) never keeps a best.pt from after its state
        if epoch + 1 < cfg.epochs and time.monotonic() - saved >= CHECKPOINT_EVERY_S:
            checkpoint.save(run_dir / "last.pt", _state(model, tr, job, d, epoch, history, best, bad_epochs))
            saved = time.monotonic()
    bar.close()
    tb.close()
    return best, history


_SECTIONS = {"window": WindowConfig, "encoder": EncoderConfig, "augment": AugmentConfig, "finetune": FinetuneConfig}


def _job_dict(job: FinetuneJob) -> dict:
    """The job as plain data: what a resumed run must share with the one it continues."""
    return {"datasets": list(job.datasets), "classes": list(job.classes), "label_space": job.label_space,
            "encoder_run": job.encoder_run, "random_encoder": job.random_encoder, "init_run": job.init_run,
            "exclude_subjects": list(job.exclude_subjects), "pipeline": checkpoint.plain(job.pipeline),
            "head": checkpoint.plain(dict(job.head_cfg)), "window": job.window.to_dict(),
            "encoder": None if job.encoder is None else job.encoder.to_dict(), "augment": job.augment.to_dict(),
            "finetune": job.finetune.to_dict()}


def _as_written(old: Any, new: dict) -> Any:
    """A last.pt's job `old` with its head options completed as the head ran: an option of today's job `new` that the
    head gained after the checkpoint was written reads as the head ran before it existed (heads.saved_options: its
    BEFORE, else the constructor's default), so a run interrupted before a head gained an option still resumes, while
    an option it did set otherwise stays a difference. An empty or unknown head is left as it is."""
    head = old.get("head") if isinstance(old, dict) else None
    name = (old.get("finetune") or {}).get("head") if isinstance(old, dict) else None
    if not isinstance(head, dict) or not head or name not in list_heads() or not isinstance(new.get("head"), dict):
        return old
    saved, defaults = saved_options(name, head), head_options(name)
    missing = {k: defaults[k] for k in new["head"] if k not in saved and k in defaults}
    return {**old, "head": checkpoint.plain({**missing, **saved})}


def resumable(job: FinetuneJob) -> Path | None:
    """The newest unfinished finetuning run of `job`'s sources whose last.pt was written for this very job (a run
    `run(..., resume=True)` continues), or None. A last.pt that cannot be read is passed over."""
    from crosshar.train.runs import find_runs

    want = _job_dict(job)
    for p, _ in find_runs("finetune", "+".join(job.datasets), finished=False):
        if (p / "last.pt").is_file():
            try:
                ck = checkpoint.load(p / "last.pt", STATE_FORMAT, keys=("job",))
            except CrossharError:
                continue
            if not job_differences(_as_written(ck["job"], want), want, _SECTIONS):
                return p
    return None


def _state(model: clf.HARClassifier, tr: _Trainer, job: FinetuneJob, d: _Data, epoch: int, history: list,
           best: dict, bad_epochs: int) -> dict:
    """last.pt after `epoch` (0-based): everything the next epoch reads, and the job and data it belongs to."""
    return {"format": STATE_FORMAT, "model": model.state_dict(), "optimizer": tr.opt.state_dict(),
            "scheduler": tr.sched.state_dict(), "center": tr.center.state_dict() if tr.center else None,
            "average": tr.average.state_dict() if tr.average is not None else None,
            "scaler": tr.prec.scaler.state_dict() if tr.prec.scaler is not None else None,
            "epoch": epoch, "history": history, "best": best, "bad_epochs": bad_epochs,
            "job": _job_dict(job), "data": {"split": d.split, "n_labelled": d.n_labelled}}


def _resume(last: Path, job: FinetuneJob, d: _Data, model: clf.HARClassifier, tr: _Trainer,
            log: Callable[[str], None]) -> dict | None:
    """Load last.pt into the model and trainer; the state `_epochs` continues from (None without last.pt)."""
    if not last.is_file():
        log(f"--resume: {last} not found; starting from scratch")
        return None
    ck = checkpoint.load(last, STATE_FORMAT, keys=STATE_KEYS)
    epochs = job.finetune.epochs
    with checkpoint.reading(last):  # a damaged entry: one line naming last.pt, not a traceback
        kinds = {"epoch": int, "history": list, "best": dict, "bad_epochs": int}
        wrong = [k for k, t in kinds.items() if not isinstance(ck[k], t) or isinstance(ck[k], bool)]
        if wrong or not 0 <= ck["epoch"] < epochs - 1:
            raise ValueError(f"{', '.join(wrong) or 'epoch'} {ck[(wrong or ['epoch'])[0]]!r} is not what a "
                             f"{epochs}-epoch run writes"[:200])
        check_progress(ck, ("macro_f1",))
        want = _job_dict(job)
        diff = job_differences(_as_written(ck["job"], want), want, _SECTIONS)
        data = {"split": d.split, "n_labelled": d.n_labelled}
        diff += [f"data ({k})" for k in data if job_differences(ck.get("data"), {k: data[k]}, {})]
        if diff:
            raise ResumeError(f"{last}: cannot resume: the configuration differs in {', '.join(diff)}")
        model.load_state_dict(ck["model"])
        tr.opt.load_state_dict(ck["optimizer"])
        tr.sched.load_state_dict(ck["scheduler"])
        for name, part in (("center", tr.center), ("average", tr.average), ("scaler", tr.prec.scaler)):
            if part is not None:
                part.load_state_dict(ck[name])
    log(f"resuming {last.parent} at epoch {ck['epoch'] + 2}/{epochs}")
    return {"epoch": ck["epoch"] + 1, "history": ck["history"], "best": ck["best"], "bad_epochs": ck["bad_epochs"]}
