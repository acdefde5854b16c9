"""On-device inference with numpy and onnxruntime only (no torch, no scipy): for a Raspberry Pi.

    from crosshar.runtime import Recognizer
    rec = Recognizer("model.onnx")          # reads model.json, the sidecar written by crosshar export
    for event in rec.feed_many(ts, X):      # ts: (n,) seconds, X: (n, 6) m/s^2 and rad/s
        print(event)

Names are imported lazily, so `import crosshar.runtime` costs nothing until one is used.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Recognizer": "crosshar.runtime.recognizer",
    "Activity": "crosshar.runtime.recognizer",
    "Notice": "crosshar.runtime.recognizer",
    "Smoother": "crosshar.runtime.recognizer",
    "OnnxModel": "crosshar.runtime.model",
    "read_sidecar": "crosshar.runtime.sidecar",
    "sidecar_path": "crosshar.runtime.sidecar",
    "StreamResampler": "crosshar.runtime.resample",
    "ort_session": "crosshar.runtime.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'crosshar.runtime' has no attribute {name!r}")
