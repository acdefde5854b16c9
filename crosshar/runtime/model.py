"""An exported model: the ONNX file plus its JSON sidecar, run with onnxruntime (no torch).

The sidecar (written by crosshar.export) says what the graph expects: sampling rate, window length,
channel order, units, sign convention, labels. The graph itself takes raw windows in physical units
`window: (B, T, C)` float32 and returns class probabilities `probs: (B, K)`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from crosshar.errors import DataError

SIDECAR_FORMAT = "crosshar-onnx/1"


def sidecar_path(model_path: str | Path) -> Path:
    """`model.onnx` -> `model.json` (`model.int8.onnx` -> `model.int8.json`)."""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sidecar(model_path: str | Path, verify: bool = True) -> dict[str, Any]:
    """The sidecar of `model_path`, checked for format and (when `verify`) for the model's sha256."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise DataError("model file not found", model_path)
    side = sidecar_path(model_path)
    if not side.is_file():
        raise DataError(f"no sidecar {side.name} next to the model; the runtime needs it for the sampling "
                        f"rate, window, channel order and labels (export with `crosshar export`)", model_path)
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"not a readable JSON sidecar ({e})", side) from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"not a crosshar model sidecar (format {got!r}, expected {SIDECAR_FORMAT!r})", side)
    if verify and meta.get("sha256") and sha256_file(model_path) != meta["sha256"]:
        raise DataError(f"the model file does not match its sidecar {side.name} (sha256 differs): "
                        f"re-export both together", model_path)
    return meta


class OnnxModel:
    """An exported classifier in an onnxruntime session.

    Args:
        model_path: the .onnx file; its sidecar `<stem>.json` must lie next to it.
        threads: intra-op threads (None: onnxruntime's default, all cores; 1 for predictable latency).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(model_path)
        self.meta = read_sidecar(self.path)
        so = ort.SessionOptions()
        if threads is not None:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise DataError(f"onnxruntime cannot load the model ({e})", self.path) from None
        self.labels: list[str] = list(self.meta["labels"])
        self.rate_hz = float(self.meta["rate_hz"])
        self.window = int(self.meta["window"])
        self.stride = int(self.meta["stride"])
        self.channels: list[str] = list(self.meta["channels"])

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """windows: (B, T, C) physical units -> probabilities (B, K) float32."""
        x = np.ascontiguousarray(windows, dtype=np.float32)
        return self.session.run(["probs"], {"window": x})[0]
