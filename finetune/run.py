"""Finetuning: a registered head on the (frozen or trainable) pretrained encoder, with a fraction of
the source labels; model selection on held-out *source* subjects only.

Training windows may be oversampled with Borderline-SMOTE (imbalanced-learn) and augmented on the
fly; validation windows never are. The best checkpoint (validation macro-F1) is a self-contained
classifier (crosshar.models.classifier) that `crosshar cross` and `crosshar export` load alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from crosshar.augment import Augmenter
from crosshar.config import AugmentConfig, FinetuneConfig, WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.sources import apply_split, load_sources, split_by_subject
from crosshar.data.splits import label_subset
from crosshar.data.windows import CHANNELS, WindowSet
from crosshar.device import Precision, batch_to, place, resolve_device, take
from crosshar.errors import ConfigError, CrossharError
from crosshar.losses import CenterLoss
from crosshar.metrics import classification_report
from crosshar.models import classifier as clf
from crosshar.models.heads import create_head
from crosshar.models.scaling import InputScaler
from crosshar.training import TB, EpochBar, generator, git_commit, new_run_dir, seed_all, write_run_info


@dataclass(frozen=True)
class FinetuneJob:
    """One finetuning run, resolved.

    Attributes:
        datasets: source dataset names.
        classes: the label space the head is trained on (vocabulary nodes).
        encoder_run: pretraining run folder, or None for a head on raw windows (no pretraining).
        exclude_subjects: subjects that must not be used at all (the oracle's test subjects).
    """

    datasets: tuple[str, ...]
    window: WindowConfig
    finetune: FinetuneConfig
    augment: AugmentConfig
    classes: tuple[str, ...]
    label_space: str = "crosshar4"
    encoder_run: str | None = None
    head_cfg: dict = field(default_factory=dict)
    scaling: str | None = None  # no encoder run: input scaling (None: configs/encoder.toml's, as a pretrained model's)
    frame: str | None = None  # no encoder run: "device" or "gravity" (None: configs/encoder.toml's)
    data_dir: str | None = None
    on_bad: str = "error"
    exclude_subjects: tuple[str, ...] = ()


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


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a model without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


@torch.inference_mode()
def predict(model: clf.HARClassifier, X: np.ndarray, batch: int = 512) -> np.ndarray:
    """(N, T, C) -> (N, K) logits, computed on the model's device."""
    model.eval()
    if len(X) == 0:
        return np.zeros((0, model.head.fc.out_features), np.float32)  # every registered head ends in .fc
    dev = model_device(model)
    return torch.cat([model(batch_to(torch.from_numpy(X[i:i + batch]), dev)).cpu()
                      for i in range(0, len(X), batch)]).numpy()


@torch.no_grad()  # not inference_mode: cached training features later feed autograd
def encode(model: clf.HARClassifier, X: np.ndarray, batch: int = 512) -> torch.Tensor:
    """(N, T, C) -> (N, T, D) head inputs on the model's device, for a frozen encoder (eval mode)."""
    model.eval()
    dev = model_device(model)
    return torch.cat([model.features(batch_to(torch.from_numpy(X[i:i + batch]), dev)) for i in range(0, len(X), batch)])


def evaluate(model: clf.HARClassifier, X: np.ndarray, y: np.ndarray, classes: list[str],
             feats: torch.Tensor | None = None, batch: int = 512) -> dict:
    """Metrics on (X, y); `feats` = encode(model, X) skips the (frozen) encoder."""
    if feats is None:
        pred = predict(model, X, batch).argmax(1)
    else:
        model.eval()
        with torch.inference_mode():
            pred = torch.cat([model.head(feats[i:i + batch]).cpu() for i in range(0, len(feats), batch)]).numpy().argmax(1)
    return classification_report(y, pred, classes)


def encode_labels(ws: WindowSet, space: LabelSpace) -> tuple[WindowSet, np.ndarray]:
    y = space.encode(ws.labels)
    keep = np.flatnonzero(y >= 0)
    return ws.subset(keep), y[keep]


def build_model(job: FinetuneJob) -> tuple[clf.HARClassifier, dict]:
    """The classifier and its checkpoint meta (encoder from the pretraining run when given)."""
    enc, enc_cfg, split = None, None, None
    if job.encoder_run is None:  # the same input pipeline as a pretrained model's, unless told otherwise
        from crosshar import config as C

        default = C.load("encoder")
        scaling, frame = job.scaling or default.input_scaling, job.frame or default.input_frame
        scaler = InputScaler(scaling, job.window.n_channels, frame=frame)
    else:
        from crosshar.pretrain.run import load_encoder

        enc, scaler, jd = load_encoder(job.encoder_run)
        if WindowConfig.from_dict(jd["window"]) != job.window:
            raise ConfigError(f"the pretraining run {job.encoder_run} used windows {jd['window']}, "
                              f"but finetuning asks for {job.window.to_dict()}")
        enc_cfg, split, scaling = jd["encoder"], jd["split"], jd["encoder"]["input_scaling"]
        frame = jd["encoder"].get("input_frame", "device")
    skip = enc is not None and job.finetune.head_input == "embedding+window"
    head = create_head(job.finetune.head, clf.head_dim(enc, job.window.n_channels, skip), len(job.classes),
                       seq_len=job.window.window, **job.head_cfg)
    model = clf.HARClassifier(scaler, enc, head, skip=skip)
    meta = {
        "window": job.window.to_dict(), "channels": list(CHANNELS[job.window.channels]),
        "classes": list(job.classes), "label_space": job.label_space, "encoder": enc_cfg,
        "head": job.finetune.head, "head_cfg": dict(job.head_cfg), "scaling": scaling, "frame": frame,
        "head_input": "embedding+window" if skip else "embedding",
        "source": list(job.datasets), "pretrain_run": job.encoder_run, "pretrain_split": split,
        "units": {"acc": "m/s^2 including gravity", "gyro": "rad/s"}, "sign_convention": "android",
    }
    return model, meta


def make_optimizer(cfg: FinetuneConfig, params: list) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and per-epoch schedule a finetune config names.

    Lion runs at a third of `lr` with three times the weight decay (the ratio MAG-Res2Net found,
    Sec. 4.3); "step" multiplies the rate by `step_gamma` every `step_epochs` (DanHAR's schedule).
    """
    if cfg.optimizer == "lion":
        from lion_pytorch import Lion

        opt = Lion(params, lr=cfg.lr / 3, weight_decay=cfg.weight_decay * 3)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs, gamma=cfg.step_gamma)
    elif cfg.lr_schedule == "constant":
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    return opt, sched


def run(job: FinetuneJob, out: str | Path | None = None, log: Callable[[str], None] = print,
        progress: bool = True, device: str | torch.device = "cpu") -> Path:
    """Finetune; returns the run folder (best.pt = the selected classifier, run.json = metrics).

    `device`: "cpu", "cuda", "auto", ... (crosshar.device.resolve_device). With a frozen encoder
    the validation windows are encoded once (and the training windows too when nothing augments
    them): the encoder is then a fixed function.
    """
    dev = resolve_device(device)
    cfg = job.finetune
    seed_all(cfg.seed)
    model, meta = build_model(job)
    space = LabelSpace(job.classes, job.label_space)
    ws = load_sources(list(job.datasets), job.data_dir, job.window, job.on_bad)
    if job.exclude_subjects:
        ws = ws.subset(np.flatnonzero(~np.isin(ws.subjects, list(job.exclude_subjects))))
    if meta["pretrain_split"] is not None and not job.exclude_subjects:
        train, val = apply_split(ws, meta["pretrain_split"])
        split = meta["pretrain_split"]
    else:
        train, val, split = split_by_subject(ws, cfg.val_fraction, cfg.seed)
    train, ytr_all = encode_labels(train, space)
    val, yva = encode_labels(val, space)
    if len(val) == 0 or len(train) == 0:
        raise CrossharError(f"no labelled windows in the {'validation' if len(train) else 'training'} subjects "
                            f"for classes {list(job.classes)}")
    keep = label_subset(ytr_all, cfg.label_rate, cfg.seed)
    Xtr, ytr = train.X[keep], ytr_all[keep]
    missing = sorted(set(range(len(job.classes))) - set(ytr.tolist()))
    if missing:
        raise CrossharError(f"the labelled subset has no window of {[job.classes[i] for i in missing]}")
    if cfg.smote:
        n0 = len(Xtr)
        Xtr, ytr = _smote(Xtr, ytr, cfg.seed)
        log(f"Borderline-SMOTE: {n0} -> {len(Xtr)} training windows (validation untouched)")
    run_dir = new_run_dir("finetune", "+".join(job.datasets), out)
    log(f"finetuning head {cfg.head} on {len(Xtr):,} labelled windows ({cfg.label_rate:.0%} of {len(train):,}) "
        f"of {'+'.join(job.datasets)}; classes {list(job.classes)}; model selection on {len(val):,} windows of "
        f"{len(split['val_subjects'])} held-out source subjects; encoder: "
        f"{job.encoder_run or 'none (head on raw windows)'}; run folder {run_dir}")
    if model.encoder is not None and cfg.freeze:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    if meta["scaling"] == "source_stats" and job.encoder_run is None:
        model.scaler.fit(torch.from_numpy(train.X))
    model.to(dev)
    center_dim = len(job.classes) if cfg.center_on == "logits" else model.head.feature_dim
    center = CenterLoss(len(job.classes), center_dim).to(dev) if cfg.center_loss > 0 else None
    params = [p for p in model.parameters() if p.requires_grad] + (list(center.parameters()) if center else [])
    opt, sched = make_optimizer(cfg, params)
    aug = Augmenter(job.augment, job.window.n_channels) if cfg.augment else None
    tb = TB(run_dir / "tb")
    frozen = model.encoder is not None and cfg.freeze
    if frozen:
        model.encoder.eval()
    Fva = encode(model, val.X) if frozen else None
    Xtr_t = encode(model, Xtr) if frozen and aug is None else place(torch.from_numpy(Xtr), dev)
    ytr_t = place(torch.from_numpy(ytr).long(), dev)
    prec = Precision(dev)
    best, history, bad_epochs = {"macro_f1": -1.0, "epoch": 0}, [], 0
    t0 = time.time()
    bar = EpochBar(f"finetuning {cfg.head}", cfg.epochs, math.ceil(len(Xtr_t) / cfg.batch_size), enabled=progress)
    for epoch in range(cfg.epochs):
        g = generator(cfg.seed, epoch)
        torch.manual_seed(cfg.seed * 7919 + epoch)
        model.train()
        if model.encoder is not None and cfg.freeze:
            model.encoder.eval()
        tot, n = 0.0, 0
        for idx in torch.randperm(len(Xtr_t), generator=g).split(cfg.batch_size):
            x, y = take(Xtr_t, idx, dev), take(ytr_t, idx, dev)
            if len(idx) < 2:
                continue
            if aug is not None:
                x = aug(x, g)
            with prec.autocast():
                feats = x if frozen and aug is None else model.features(x)  # cached features when frozen
                if center is not None:
                    f = model.head.forward_features(feats)
                    logits = model.head.fc(f)  # every registered head ends in .fc
                    loss = F.cross_entropy(logits, y) + cfg.center_loss * center(
                        (logits if cfg.center_on == "logits" else f).float(), y)
                else:
                    loss = F.cross_entropy(model.head(feats), y)
            loss = loss.float()
            if not torch.isfinite(loss):
                raise CrossharError(f"non-finite loss at epoch {epoch + 1}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            prec.step(loss, opt, params, cfg.grad_clip)
            tot += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.step()
        sched.step()
        va = evaluate(model, val.X, yva, list(job.classes), feats=Fva)
        rec = {"epoch": epoch + 1, "train_loss": tot / max(n, 1), "val_accuracy": va["accuracy"], "val_macro_f1": va["macro_f1"]}
        history.append(rec)
        tb.scalars(epoch + 1, **{f"finetune/{k}": v for k, v in rec.items() if k != "epoch"})
        if va["macro_f1"] > best["macro_f1"]:
            best = {"macro_f1": va["macro_f1"], "accuracy": va["accuracy"], "epoch": epoch + 1}
            bad_epochs = 0
            clf.save(run_dir / "best.pt", model, meta | {"metrics": {"source_val": va}, "history": history})
        else:
            bad_epochs += 1
        if progress:
            log(f"epoch {epoch + 1:3d} loss {rec['train_loss']:.4f} val acc {va['accuracy']:.3f} "
                f"macro-F1 {va['macro_f1']:.3f}{' *' if bad_epochs == 0 else ''}")
        bar.epoch(epoch + 1, f"val macro-F1 {va['macro_f1']:.3f}")
        if bad_epochs >= cfg.patience:
            log(f"early stop: no validation gain for {cfg.patience} epochs")
            break
    bar.close()
    tb.close()
    info = {"kind": "finetune", "finished": True, "source": "+".join(job.datasets), "datasets": list(job.datasets),
            "head": cfg.head, "classes": list(job.classes), "label_space": job.label_space,
            "encoder_run": job.encoder_run, "configs": {"finetune": cfg.to_dict(), "augment": job.augment.to_dict(),
            "window": job.window.to_dict(), "head": dict(job.head_cfg)}, "split": split,
            "exclude_subjects": list(job.exclude_subjects), "n_labelled": int(len(keep)), "n_train_windows": int(len(train)),
            "n_val": int(len(val)), "best": best, "history": history, "seconds": round(time.time() - t0, 1),
            "git_commit": git_commit()}
    write_run_info(run_dir, info)
    log(f"best source-validation macro-F1 {best['macro_f1']:.3f} (accuracy {best.get('accuracy', 0):.3f}) "
        f"at epoch {best['epoch']}; {run_dir / 'best.pt'}")
    return run_dir
