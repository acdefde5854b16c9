"""The sidecar `crosshar export` writes next to a model (`model.onnx` -> `model.json`): what the graph
expects and where it came from. Its schema lives with the runtime that reads it
(crosshar.runtime.sidecar); every sidecar is validated against it before it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crosshar import __version__
from crosshar.config import WindowConfig
from crosshar.data.windows import CHANNELS
from crosshar.runtime.sidecar import SIDECAR_FORMAT, sha256_file, sidecar_path, validate


def sidecar(meta: dict[str, Any], onnx_path: Path, opset: int, **extra: Any) -> dict[str, Any]:
    """What the runtime needs to feed the graph, plus provenance (see the module docstring).

    Checked against the schema the runtime applies (crosshar.runtime.sidecar) before it is written.
    """
    w = WindowConfig.from_dict(meta["window"])
    norm = {"kind": w.normalize}
    if w.normalize == "zscore_subject":
        norm["runtime"] = ("the model was trained on per-subject, per-channel z-normalised windows: the "
                           "runtime z-normalises each window with running per-channel mean and std of the "
                           "stream (one stream = one subject); the graph input is then the normalised window")
    return validate({
        "format": SIDECAR_FORMAT,
        "model": onnx_path.name,
        "input": {"name": "window", "shape": ["batch", w.window, w.n_channels], "dtype": "float32"},
        "output": {"name": "probs", "shape": ["batch", len(meta["classes"])], "dtype": "float32",
                   "meaning": "class probabilities (softmax inside the graph)"},
        "labels": list(meta["classes"]),
        "label_space": meta.get("label_space"),
        "rate_hz": w.rate_hz,
        "window": w.window,
        "stride": w.stride,
        "window_seconds": w.window / w.rate_hz,
        "channels": list(meta.get("channels") or CHANNELS[w.channels]),
        "units": {"acc": "m/s^2 including gravity", "gyro": "rad/s"},
        "sign_convention": ("android: a device lying still, screen up, reads about +9.81 m/s^2 on z "
                            "(iOS CoreMotion reports -1 g: negate and multiply by 9.80665)"),
        "normalization": norm,
        "input_scaling": meta.get("scaling"),
        "head": meta.get("head"),
        "encoder": meta.get("encoder"),
        # test-time views inside the graph: probabilities averaged over replays and turns of each window
        "views": {"cadence": int(meta.get("cadence_views", 1)), "cadence_span": meta.get("cadence_span"),
                  "heading": int(meta.get("heading_views", 1))},
        "opset": opset,
        "source": meta.get("source"),
        "metrics": meta.get("metrics", {}),
        "sha256": sha256_file(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "crosshar_version": __version__,
        **extra,
    }, sidecar_path(onnx_path))
