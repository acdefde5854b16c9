"""The windows an export is checked and calibrated on, and how the check is scored.

Real windows of the checkpoint's source datasets when they can be read (`source_windows`: never
target data), else random physical-looking ones (`physical_windows`); `metrics` scores predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crosshar.config import WindowConfig
from crosshar.errors import ConfigError, CrossharError
from crosshar.limits import GRAVITY

# The ONNX opsets an export can use: the encoder's attention (scaled_dot_product_attention) needs 14 (and int8's
# per-channel weights 13); 20 is the newest the TorchScript exporter (dynamo=False, crosshar.export.graph) supports.
MIN_OPSET, MAX_OPSET = 14, 20


def check_opset(opset: int, option: str = "--opset") -> None:
    if not (isinstance(opset, int) and MIN_OPSET <= opset <= MAX_OPSET):
        raise ConfigError(f"{option} must be in {MIN_OPSET}..{MAX_OPSET} (the opsets the exporter supports for "
                          f"these models), got {opset}")


def check_options(*, opset: int, max_windows: int, int8_mode: str | None = None, target: str | None = None,
                  data_dir: str | Path | None = None) -> None:
    """`crosshar export`'s options, checked before any model is loaded or file written: the opset, the
    window count, the int8 mode, and the --target dataset's name (registered, or a folder holding crosshar.toml)."""
    check_opset(opset)
    if max_windows < 1:
        raise ConfigError(f"--max-windows must be >= 1, got {max_windows}")
    if int8_mode is not None:
        from crosshar.export.quantize import INT8_MODES

        if int8_mode not in INT8_MODES:
            raise ConfigError(f"--int8-mode must be one of {', '.join(INT8_MODES)}, got {int8_mode!r}")
    if target is not None:
        from crosshar.data.store import check_specs, resolve

        check_specs([target], data_dir)
        resolve(target, data_dir)


def physical_windows(n: int, window: int = 120, n_channels: int = 6, rate_hz: float = 20.0,
                     seed: int = 0) -> np.ndarray:
    """Random windows that look like phone IMU data, for checks when no real windows are at hand.

    Gravity (9.81 m/s^2) along a random direction, a periodic movement of 0.5-3 Hz with up to
    4 m/s^2 on each acc axis and up to 2 rad/s on each gyro axis, and sensor noise.

    Returns:
        (n, window, n_channels) float32.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(window) / rate_hz
    up = rng.normal(size=(n, 1, 3))
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    f = rng.uniform(0.5, 3.0, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, n_channels))
    amp = rng.uniform(0, 1, size=(n, 1, n_channels)) * np.where(np.arange(n_channels) < 3, 4.0, 2.0)
    x = amp * np.sin(2 * np.pi * f * t[None, :, None] + phase)
    x[..., :3] += GRAVITY * up
    x += rng.normal(scale=np.where(np.arange(n_channels) < 3, 0.05, 0.01), size=x.shape)
    return x.astype(np.float32)


def ort_probabilities(sess, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([sess.run(["probs"], {"window": windows[i:i + batch]})[0]
                           for i in range(0, len(windows), batch)])


def check_windows(windows: np.ndarray | None, w: WindowConfig, what: str) -> np.ndarray | None:
    if windows is None:
        return None
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1:] != (w.window, w.n_channels) or len(windows) == 0:
        raise CrossharError(f"{what} must be (N, {w.window}, {w.n_channels}) windows, got {windows.shape}")
    if not np.isfinite(windows).all():
        raise CrossharError(f"{what} contain NaN or infinite values")
    return windows


def source_windows(meta: dict[str, Any], data_dir: str | Path | None = None, run_path: str | Path | None = None,
                   max_windows: int = 512, max_calib: int = 256, seed: int = 0) -> dict[str, Any]:
    """Real windows of the checkpoint's source datasets for the export checks and int8 calibration.

    Validation subjects (labelled, for the parity check and float vs int8 metrics) and training
    subjects (for calibration) follow the split recorded with the run (the pretraining split in the
    meta, else `run.json` next to the checkpoint); without one, the finetuning default split
    (FinetuneConfig().val_fraction and seed) is re-derived. Never target data.

    Returns:
        {"windows": (N, T, C), "labels": (N,) class indices, "calib": (M, T, C), "note": str}.

    Raises:
        CrossharError (MissingDataError...) when the datasets cannot be read.
    """
    from crosshar.config import FinetuneConfig
    from crosshar.data.labels import LabelSpace
    from crosshar.data.sources import apply_split, load_sources, split_by_subject

    if max_windows < 1 or max_calib < 1:
        raise ConfigError(f"max_windows and max_calib must be >= 1, got {max_windows} and {max_calib}")
    if not meta.get("source"):
        raise CrossharError("the checkpoint names no source dataset")
    w = WindowConfig.from_dict(meta["window"])
    ws = load_sources(list(meta["source"]), data_dir, w)
    split, how = meta.get("pretrain_split"), "the pretraining run's subject split"
    if split is None and run_path is not None:
        rp = Path(run_path)
        info = (rp if rp.is_dir() else rp.parent) / "run.json"
        try:
            split, how = json.loads(info.read_text()).get("split"), f"the subject split in {info}"
        except (OSError, ValueError, AttributeError):
            split = None
        if split is not None and not (isinstance(split, dict) and all(
                isinstance(split.get(k), list) for k in ("train_subjects", "val_subjects"))):
            raise CrossharError(f"{info}: damaged: its split {json.dumps(split)[:80]} does not hold the lists "
                                "train_subjects and val_subjects; the export checks read the held-out subjects from it")
    if split:
        train, val = apply_split(ws, split)
    else:
        ft = FinetuneConfig()
        train, val, _ = split_by_subject(ws, ft.val_fraction, ft.seed)
        how = f"a re-derived subject split (val_fraction {ft.val_fraction}, seed {ft.seed})"
    y = LabelSpace(tuple(meta["classes"]), meta.get("label_space") or "").encode(val.labels)
    keep = np.flatnonzero(y >= 0)
    if len(keep) == 0 or len(train) == 0:
        raise CrossharError(f"no labelled validation windows or no training windows in {'+'.join(meta['source'])}")
    rng = np.random.default_rng(seed)
    if len(keep) > max_windows:
        keep = np.sort(rng.choice(keep, max_windows, replace=False))
    ci = np.arange(len(train))
    if len(ci) > max_calib:
        ci = np.sort(rng.choice(ci, max_calib, replace=False))
    note = (f"{len(keep)} validation windows of {len(set(val.subjects[keep].tolist()))} source subjects and "
            f"{len(ci)} calibration windows of the training subjects of {'+'.join(meta['source'])} ({how})")
    return {"windows": val.X[keep], "labels": y[keep], "calib": train.X[ci], "note": note}


def metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    from crosshar.metrics import classification_report

    keep = y >= 0
    r = classification_report(y[keep], pred[keep], list(classes))
    return {"n": r["n"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
