"""An exported model: the ONNX file plus its JSON sidecar, run with onnxruntime (no torch).

The sidecar (written by crosshar.export) says what the graph expects: sampling rate, window length,
channel order, units, sign convention, labels. The graph itself takes raw windows in physical units
`window: (B, T, C)` float32 and returns class probabilities `probs: (B, K)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosshar.errors import DataError
from crosshar.runtime.session import ort_session, quantization_mode
from crosshar.runtime.sidecar import SIDECAR_FORMAT, check_graph, read_sidecar, sha256_file, sidecar_path

__all__ = ["OnnxModel", "SIDECAR_FORMAT", "read_sidecar", "sha256_file", "sidecar_path"]


class OnnxModel:
    """An exported classifier in an onnxruntime session.

    Args:
        model_path: the .onnx file; its sidecar `<stem>.json` must lie next to it.
        threads: intra-op threads (None: onnxruntime's default, all cores; 1 for predictable latency).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None):
        self.path = Path(model_path)
        self.meta = read_sidecar(self.path)
        self.quantization = quantization_mode(self.meta)
        try:
            self.session = ort_session(self.path, threads, self.quantization)
        except Exception as e:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise DataError(f"onnxruntime cannot load the model ({str(e).strip().splitlines()[0] if str(e).strip() else e})",
                            self.path) from None
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        check_graph(self.meta, [(i.name, i.shape) for i in ins], [(o.name, o.shape) for o in outs],
                    sidecar_path(self.path))
        # what check_graph cannot see from names and shapes: a graph that takes more than the window, or
        # other numbers than float32 (a double input failed only at the first window, an int64 output
        # printed `walking 0.00`)
        if len(ins) != 1:
            raise DataError(f"the graph takes {len(ins)} inputs ({', '.join(i.name for i in ins)}), not the one "
                            "'window' a crosshar model takes: not a model exported by crosshar", self.path)
        for node, what in ((ins[0], "input 'window'"), (next(o for o in outs if o.name == "probs"), "output 'probs'")):
            if node.type != "tensor(float)":
                raise DataError(f"the graph's {what} is a {node.type}, not float32 (tensor(float)): not a model "
                                "exported by crosshar", self.path)
        self.labels: list[str] = list(self.meta["labels"])
        self.rate_hz = float(self.meta["rate_hz"])
        self.window = int(self.meta["window"])
        self.stride = int(self.meta["stride"])
        self.channels: list[str] = list(self.meta["channels"])

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """windows: (B, T, C) physical units -> probabilities (B, K) float32.

        Raises DataError when the graph returns another number of classes than the sidecar's labels.
        Non-finite probabilities are returned as they are: the caller says which window gave them.
        """
        x = np.ascontiguousarray(windows, dtype=np.float32)
        p = self.session.run(["probs"], {"window": x})[0]
        if p.ndim != 2 or p.shape[1] != len(self.labels):
            raise DataError(f"the graph returned probabilities of shape {p.shape}, but the sidecar names "
                            f"{len(self.labels)} labels", self.path)
        return p
