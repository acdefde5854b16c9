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

int8 (`quantize`, `export_int8`): three modes. "weights": int8 weights per output channel for the
weight-carrying ops, activations in float, written by onnxruntime's static QDQ quantiser with the
activations' quantise/dequantise pairs removed; the session helper (crosshar.runtime.session) folds
the weights back to float when it loads the model, because the sidecar records the mode: the
smallest file, at float speed and nearly float accuracy. "static" is full QDQ (uint8 activations
calibrated with min/max on windows of the source training subjects; recurrent graphs, which static
quantisation leaves in float, get dynamic instead and the report says so); "dynamic" quantises
activations on the fly. The default, "auto", writes and checks each applicable mode, times them on
the exporting CPU (batch 1, one thread, thread CPU time: crosshar.runtime.timing) and keeps the
fastest that keeps the float model's answers (`choose_mode`); its sidecar says what each measured.
Which is fastest depends on the CPU and the head: on this project's x86 machines, static for the
default DIN model; on an ARM board, export with each `--int8-mode` and time them there.
"""

from crosshar.export.checks import (MAX_OPSET, MIN_OPSET, check_opset, check_options, ort_probabilities,
                                    physical_windows, source_windows)
from crosshar.export.graph_surgery import fold_static_dims
from crosshar.export.graph import FP32_TOL, ExportCheckError, export_model, export_onnx, torch_probabilities
from crosshar.export.quantize import FIXED_MODES, INT8_MODES, choose_mode, export_int8, quantize
from crosshar.runtime.session import ort_session

__all__ = [
    "export_onnx", "export_model", "export_int8", "quantize", "source_windows", "fold_static_dims",
    "physical_windows", "torch_probabilities", "ort_session", "ort_probabilities", "ExportCheckError", "FP32_TOL",
    "INT8_MODES", "FIXED_MODES", "choose_mode", "MIN_OPSET", "MAX_OPSET", "check_opset", "check_options",
]
