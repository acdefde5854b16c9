"""Using trained models: loading them, embedding, predicting and scoring windows.

The library's one home for inference, shared by every stage and tool: `load_encoder` (a
pretraining checkpoint), `crosshar.models.classifier.load` (a finetuned one), both through
`crosshar.checkpoint.load`; `in_batches` runs any module over (N, T, C) windows in batches.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from crosshar import checkpoint
from crosshar.config import AugmentConfig, EncoderConfig, PretrainConfig, WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.device import batch_to, resolve_device
from crosshar.errors import CrossharError
from crosshar.metrics import by_group, classification_report
from crosshar.models import classifier as clf
from crosshar.models.encoder import Encoder
from crosshar.models.pretrainer import CHECKPOINT_KEYS as PRETRAIN_KEYS
from crosshar.models.pretrainer import FORMAT as PRETRAIN_FORMAT
from crosshar.models.pretrainer import PretrainingModel
from crosshar.models.scaling import InputScaler



def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a model without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


# Windows per forward pass when only predicting (no gradient). On a CPU small batches are faster (one thread, thread
# CPU time, `python benchmarks/infer_batch.py`, results/infer_batch.md): at 32 windows a pass instead of 512 the
# default model costs 26 % less CPU per window, DIN on the raw window 16 %, CrossHAR's 2,048-wide classifier 23 %, the
# encoder alone 32 % (a 512-window pass's attention maps and activations no longer fit the caches), and the outputs
# are the same to the bit. An accelerator wants large batches.
CPU_INFER_BATCH, ACCEL_INFER_BATCH = 32, 512


def infer_batch(device: torch.device | str) -> int:
    """Windows per no-gradient forward pass on `device` (CPU_INFER_BATCH on a CPU, ACCEL_INFER_BATCH elsewhere)."""
    return CPU_INFER_BATCH if torch.device(device).type == "cpu" else ACCEL_INFER_BATCH


def in_batches(fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray, device: torch.device,
               batch: int | None = None, cpu: bool = True) -> list[torch.Tensor]:
    """fn over (N, ...) numpy windows, `batch` at a time on `device` (default `infer_batch(device)`); the outputs
    (moved to the CPU unless `cpu` is False), one per batch, for the caller to concatenate."""
    batch = batch or infer_batch(device)
    outs = [fn(batch_to(torch.from_numpy(X[i:i + batch]), device)) for i in range(0, len(X), batch)]
    return [o.cpu() for o in outs] if cpu else outs


def pretrain_job(path: str | Path, keys: tuple[str, ...] = ("job",)) -> tuple[dict, dict]:
    """(checkpoint, its job dict) of a pretraining run folder or checkpoint."""
    ck = checkpoint.load(path, PRETRAIN_FORMAT, keys=keys)
    return ck, ck["job"]


def pretrain_window(path: str | Path) -> WindowConfig:
    """The window config a pretraining run used (without building its model)."""
    _, jd = pretrain_job(path)
    with checkpoint.reading(path):
        return WindowConfig.from_dict(jd["window"])


def load_encoder(path: str | Path) -> tuple[Encoder, InputScaler, dict]:
    """(encoder, scaler, job dict) from a pretraining run folder or checkpoint (best.pt by default)."""
    ck, jd = pretrain_job(path, PRETRAIN_KEYS)
    with checkpoint.reading(path):
        m = PretrainingModel(WindowConfig.from_dict(jd["window"]), EncoderConfig.from_dict(jd["encoder"]),
                             PretrainConfig.from_saved(jd["pretrain"]))
        m.load_state_dict(ck["model"])
        split = ck["split"]  # finetuning keeps the encoder's validation subjects held out (data.sources.apply_split)
        if not (isinstance(split, dict) and all(isinstance(split.get(k), (list, tuple))
                                                for k in ("train_subjects", "val_subjects"))):
            raise TypeError(f"'split' must hold the lists train_subjects and val_subjects, got {split!r}"[:200])
    jd = dict(jd, split=split, path=str(path))
    return m.encoder.eval(), m.scaler.eval(), jd


def embed(encoder: Encoder, scaler: InputScaler, X: np.ndarray, batch: int | None = None,
          device: str | torch.device = "cpu") -> np.ndarray:
    """(N, T, C) windows -> (N, T, D) float32 embeddings (computed on `device`, returned on the CPU)."""
    dev = resolve_device(device)
    encoder.to(dev)
    scaler.to(dev)
    with torch.inference_mode():
        out = in_batches(lambda x: encoder.forward_features(scaler(x)).float(), X, dev, batch)
    return torch.cat(out).numpy() if out else np.zeros((0, X.shape[1], encoder.embed_dim), np.float32)


@torch.inference_mode()
def predict(model: clf.HARClassifier, X: np.ndarray, batch: int | None = None) -> np.ndarray:
    """(N, T, C) -> (N, K) logits, computed on the model's device."""
    model.eval()
    if len(X) == 0:
        return np.zeros((0, model.head.fc.out_features), np.float32)  # every registered head ends in .fc
    return torch.cat(in_batches(model, X, model_device(model), batch)).numpy()


def run_augment(meta: dict, path: str | Path | None = None) -> AugmentConfig:
    """The finetuning augmentation a classifier was trained with: its checkpoint's meta ("augment"), or for
    a run finetuned before the meta held it, the run.json written beside its best.pt. CrossharError when
    neither has it."""
    if isinstance(meta.get("augment"), dict):
        return AugmentConfig.from_dict(meta["augment"], source="the checkpoint's meta")
    if "augment" in meta and meta["augment"] is None:
        raise CrossharError(f"{path or 'the model'} was finetuned without augmentation (augment = false, e.g. "
                            "--preset paper): test-time views would draw from an augmentation it never saw")
    if path is not None:
        p = Path(path)
        info = (p if p.is_dir() else p.parent) / "run.json"
        if info.is_file():
            cfg = json.loads(info.read_text()).get("configs", {}).get("augment")
            if isinstance(cfg, dict):
                return AugmentConfig.from_dict(cfg, source=str(info))
    raise CrossharError(f"{path or 'the model'}: its finetuning augmentation is not recorded (neither in the "
                        "checkpoint nor in a run.json beside it), so test-time views cannot be drawn from it")


# the fields of each augmentation that a single-augmentation view keeps (the others are zeroed)
VIEW_FIELDS = {"mirror": ("mirror_p",), "mount": ("mount",), "amplitude": ("body_amplitude", "gyro_amplitude"),
               "cadence": ("cadence",), "sensor": ("gain_std", "bias_acc", "bias_gyro", "noise_acc", "noise_gyro")}
# what test-time views draw: the whole finetuning augmentation, the motion only, or one augmentation alone
TTA_VIEWS = ("all", "motion", *VIEW_FIELDS)


def _softmax(z: torch.Tensor) -> torch.Tensor:
    return torch.softmax(z.float(), dim=-1)


def view_augment(augment: AugmentConfig, kind: str = "all") -> AugmentConfig:
    """The augmentation test-time views draw: `augment` whole ("all"), or ("motion") without the device's
    orientation (no turn, axis permutation, mirror, heading or tilt): the motion's amplitude, cadence and mount
    and the sensor's calibration and noise only; or ("mirror") the window's mirror image and nothing else (a
    reflection through a vertical plane at a random heading, `augment`'s mirror plane): the handedness, and
    with it the sense of every turn about the vertical, is what the datasets' stairwells differ by
    (results/turning.md), so one mirrored view makes the prediction blind to it (exactly so in the vertical
    frames, where the plane's heading does not show). The other single-augmentation kinds ("mount", "amplitude",
    "cadence", "sensor": gain, bias and noise) draw that augmentation alone, as the run was finetuned with it
    (`VIEW_FIELDS`): which views carry the gain of "all"."""
    if kind not in TTA_VIEWS:
        raise CrossharError(f"test-time views must be one of {TTA_VIEWS}, got {kind!r}")
    if kind == "all":
        return augment
    if kind in VIEW_FIELDS:
        off = {f.name: 0.0 for f in dataclasses.fields(augment) if isinstance(getattr(augment, f.name), float)}
        keep = {"mirror_p": 1.0} if kind == "mirror" else {f: getattr(augment, f) for f in VIEW_FIELDS[kind]}
        return augment.replace(**(off | keep))
    return augment.replace(rotation_p=0.0, axis_permute_p=0.0, mirror_p=0.0, yaw_deg=0.0, tilt_deg=0.0)


@torch.inference_mode()
def predict_tta(model: torch.nn.Module, X: np.ndarray, augment: AugmentConfig, views: int, seed: int = 0,
                rate_hz: float = 20.0, batch: int = 512, kind: str = "all") -> np.ndarray:
    """(N, T, C) physical windows -> (N, K) log of the class probabilities averaged over the window as
    recorded and `views` draws of `augment` (test-time augmentation).

    The views are physical variations the model was trained to ignore (its finetuning augmentation:
    turn or mirror of the device, body amplitude, cadence, mount, calibration, noise; with `kind` "motion"
    all but the device's orientation, `view_augment`), so the average marginalises the prediction over
    them, one window at a time: no other window, no label and nothing learnt is involved. Deterministic
    for a given `seed` and `batch` (the generator draws batch after batch). `views` = 0 is `predict`'s
    log-softmax. Costs views + 1 forward passes. `batch` is the draw's batch and stays 512 on every device: the
    views are drawn batch after batch, so a batch of another size draws other views and changes the result; the
    forward passes run `infer_batch(device)` windows at a time within it (the same outputs, less CPU).
    """
    from crosshar.augment import Augmenter

    if views < 0:
        raise CrossharError(f"test-time views must be >= 0, got {views}")
    augment = view_augment(augment, kind)
    model.eval()
    if len(X) == 0:
        return np.zeros((0, model.head.fc.out_features), np.float32)
    dev = model_device(model)
    aug = Augmenter(augment, X.shape[-1], rate_hz)
    g = torch.Generator().manual_seed(seed)
    out = []

    def run(x: torch.Tensor) -> torch.Tensor:  # (b, T, C) -> (b, K) probabilities, infer_batch windows a pass
        return _softmax(torch.cat([model(batch_to(c, dev)) for c in x.split(infer_batch(dev))])).cpu()

    for i in range(0, len(X), batch):
        x = torch.from_numpy(np.ascontiguousarray(X[i:i + batch], dtype=np.float32))
        p = run(x)
        for _ in range(views):
            p += run(aug(x, g))
        out.append(torch.log(p / (views + 1)))
    return torch.cat(out).numpy()


@torch.no_grad()  # not inference_mode: cached training features later feed autograd
def encode(model: clf.HARClassifier, X: np.ndarray, batch: int | None = None) -> torch.Tensor:
    """(N, T, C) -> (N, T, D) head inputs on the model's device, for a frozen encoder (eval mode)."""
    model.eval()
    return torch.cat(in_batches(model.features, X, model_device(model), batch, cpu=False))


def nonfinite_rows(logits: np.ndarray) -> np.ndarray:
    """(N, K) class scores -> (N,) bool: the windows whose scores would argmax to an arbitrary class (a NaN, a +inf,
    or no finite class at all; -inf alone is a zero probability, e.g. of test-time views' log-mean)."""
    return np.isnan(logits).any(1) | np.isposinf(logits).any(1) | np.isneginf(logits).all(1)


def evaluate(model: clf.HARClassifier, X: np.ndarray, y: np.ndarray, classes: list[str],
             feats: torch.Tensor | None = None, batch: int | None = None) -> dict:
    """Metrics on (X, y); `feats` = encode(model, X) skips the (frozen) encoder. The report's "nonfinite" counts the
    windows whose class scores are not finite (`nonfinite_rows`): their argmax is no prediction, so a caller that
    keeps the model checks it (finetuning's `check_finite`) without scoring the windows again."""
    if feats is None:
        logits = predict(model, X, batch)
    else:
        model.eval()
        batch = batch or infer_batch(feats.device)
        with torch.inference_mode():
            logits = torch.cat([model.head(feats[i:i + batch]).float().cpu()
                                for i in range(0, len(feats), batch)]).numpy()
    return classification_report(y, logits.argmax(1), classes) | {"nonfinite": int(nonfinite_rows(logits).sum())}


def score(model: clf.HARClassifier | None, meta: dict, target_ws,
          logits_fn: Callable[[np.ndarray], np.ndarray] | None = None,
          name: str | Path | None = None) -> tuple[dict, np.ndarray, np.ndarray, LabelSpace]:
    """Metrics of the model on the target windows in the intersected label space.

    Predictions are made in the model's classes and mapped up the hierarchy to the evaluation
    classes (e.g. upstairs and downstairs predictions both count as WISDM's "stairs"); model
    classes with no evaluation counterpart are masked out of the argmax. `logits_fn` (windows ->
    (N, K) scores) replaces the PyTorch model, e.g. an onnxruntime session. A window whose scores are not finite
    is a CrossharError naming the model (`name`: its run), never an arbitrary class.
    """
    train_space = LabelSpace(tuple(meta["classes"]), meta.get("label_space", ""))
    eval_space = train_space.intersect(set(target_ws.labels.tolist()))
    y = eval_space.encode(target_ws.labels)
    keep = np.flatnonzero(y >= 0)
    if len(keep) == 0:
        raise CrossharError(f"no target window of {target_ws.dataset} falls in the classes {eval_space.classes}")
    proj = train_space.project_to(eval_space)
    logits = (logits_fn or (lambda X: predict(model, X)))(target_ws.X[keep]).astype(np.float64)
    bad = nonfinite_rows(logits)  # would argmax to an arbitrary class and pass on as a score
    if bad.any():
        raise CrossharError(f"{name or 'the model'} gives non-finite class scores for {int(bad.sum()):,} of "
                            f"{len(bad):,} windows of {target_ws.dataset} (the first: window {int(keep[bad.argmax()])}); "
                            "its weights are damaged or its training diverged: nothing is scored")
    logits[:, proj < 0] = -np.inf
    pred = proj[logits.argmax(1)]
    return classification_report(y[keep], pred, list(eval_space.classes)), y[keep], pred, eval_space


def score_groups(target_ws, space: LabelSpace, y: np.ndarray, pred: np.ndarray) -> dict[str, dict]:
    """{"by_position": {position: report}, "by_device": {...}}: the target's scored windows split by the body
    position and by the device of their recordings, for each of the two that takes more than one value (a
    dataset of several positions or phones, e.g. shoaib, hhar); {} otherwise. `y`, `pred`: score's, over the
    windows of `target_ws` whose label falls in `space`, in order."""
    keep = space.encode(target_ws.labels) >= 0
    return {f"by_{attr}": by_group(y, pred, list(space.classes), values[keep])
            for attr, values in target_ws.recording_splits(keep).items()}


__all__ = ["load_encoder", "pretrain_job", "pretrain_window", "embed", "predict", "predict_tta", "run_augment",
           "view_augment", "TTA_VIEWS", "encode", "evaluate", "score", "score_groups", "in_batches", "infer_batch",
           "model_device", "PRETRAIN_FORMAT"]
