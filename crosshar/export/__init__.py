"""ONNX export of a finetuned classifier, with a numerical self-check and optional int8 quantisation.

The exported graph is the whole deployable model: raw windows `window: (B, T, C)` float32 in
physical units (acc in m/s^2 including gravity, Android sign convention; gyro in rad/s) ->
input scaling -> encoder -> head -> softmax -> `probs: (B, K)`. The batch dimension is dynamic.
A JSON sidecar next to it (`model.onnx` -> `model.json`) says what the graph expects, so that the
torch-free runtime (crosshar.runtime) can feed it from a live sensor stream.

Every export checks itself, as timm's `utils/onnx.py` does: onnx.checker, then onnxruntime against
PyTorch on the same windows; a float model that differs by more than FP32_TOL in any probability
is an error. The int8 model is compared with the float one and the agreement is reported (int8
changes the numbers by design, so it is measured rather than bounded).

int8 (`quantize`): by default weight-only ("weights"): int8 weights per output channel for the
weight-carrying ops, activations in float, written by onnxruntime's static QDQ quantiser with the
activations' quantise/dequantise pairs removed. The session helper (crosshar.runtime.session) folds
the weights back to float when it loads the model, because the sidecar records the mode: the
smallest file, at float speed and nearly float accuracy. "static" is full QDQ (uint8 activations
calibrated with min/max on windows of the source training subjects; recurrent graphs, which static
quantisation leaves in float, get dynamic instead and the report says so); "dynamic" quantises
activations on the fly. On x86 CPUs without VNNI the integer kernels of static and dynamic are
slower than float (see `crosshar bench`); which one is faster on a given ARM board is for the
benchmark to tell there.
"""

from crosshar.export.checks import (MAX_OPSET, MIN_OPSET, check_opset, check_options, ort_probabilities,
                                    physical_windows, source_windows)
from crosshar.export.graph_surgery import fold_static_dims
from crosshar.export.graph import FP32_TOL, ExportCheckError, export_model, export_onnx, torch_probabilities
from crosshar.export.quantize import INT8_MODES, export_int8, quantize
from crosshar.runtime.session import ort_session

__all__ = [
    "export_onnx", "export_model", "export_int8", "quantize", "source_windows", "fold_static_dims",
    "physical_windows", "torch_probabilities", "ort_session", "ort_probabilities", "ExportCheckError", "FP32_TOL",
    "INT8_MODES", "MIN_OPSET", "MAX_OPSET", "check_opset", "check_options",
]
