"""The one home for onnxruntime sessions: runtime, export checks and `crosshar bench` all open models here.

A model's quantisation (recorded in its sidecar by `crosshar export`) can need session settings:
a weight-only int8 model ("weights": int8 weights behind DequantizeLinear, float activations) asks
onnxruntime not to apply its QDQ rewrites (`session.disable_quant_qdq`), so that the constant
DequantizeLinear nodes are folded into float weights when the session loads: the file keeps int8
weights, the running graph is the float graph. Without it, onnxruntime turns each
DequantizeLinear -> MatMul into an 8-bit MatMulNBits kernel, which is slower on x86 CPUs without
VNNI (see results/bench.md). onnxruntime may turn an Add + LayerNormalization into
SkipLayerNormalization, which runs slower here, in the folded graph or in the float one (since
attention is fused, in the float graphs of models on device-frame windows), so that fusion is
switched off for both (SESSION_DISABLED): the running graph of a weight-only model then has the
float graph's operators. numpy + onnxruntime only (the runtime deploys without torch).

The exported graphs hold onnxruntime contrib operators (`com.microsoft::MultiHeadAttention`, written
by crosshar.export.graph_surgery.fuse_attention): every standard onnxruntime build has them, on x86
and on ARM (the Raspberry Pi wheels) alike, so a plain CPU session runs them; nothing to set here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# session config entries per quantisation mode (the sidecar's quantization.mode)
SESSION_CONFIG: dict[str, dict[str, str]] = {"weights": {"session.disable_quant_qdq": "1"}}
# graph optimisers switched off per quantisation mode ("": a float model). "weights": with SkipLayerNormFusion
# the folded int8 model ran 0.728 ms per window against 0.692 without it (fp32: 0.653; one thread, thread CPU
# time, 5 x 200 calls, the bench model of results/bench.md). Float: the fused graph of an encoder on
# device-frame windows, without the fusion over with it, median 0.899 (linear head, 1 layer) and 0.971 (DIN,
# default encoder) (one thread, thread CPU time, 30 paired rounds of 150 calls)
SESSION_DISABLED: dict[str, list[str]] = {"": ["SkipLayerNormFusion"], "weights": ["SkipLayerNormFusion"]}


def quantization_mode(meta: dict[str, Any] | None) -> str | None:
    """The quantisation mode a sidecar records (None for a float model or no sidecar)."""
    q = (meta or {}).get("quantization")
    return q.get("mode") if isinstance(q, dict) else None


def ort_session(path: str | Path, threads: int | None = 1, quantization: str | None = None):
    """An onnxruntime CPU session for an exported model.

    Args:
        path: the .onnx file.
        threads: intra-op threads (one inter-op thread); None = onnxruntime's default (all cores).
            One thread by default: predictable latency and polite on shared CPUs.
        quantization: the model's quantisation mode (`quantization_mode(sidecar)`), which selects
            the session settings it needs (SESSION_CONFIG).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    for key, value in SESSION_CONFIG.get(quantization or "", {}).items():
        so.add_session_config_entry(key, value)
    disabled = SESSION_DISABLED.get(quantization or "")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"],
                                **({"disabled_optimizers": disabled} if disabled else {}))


__all__ = ["ort_session", "quantization_mode", "SESSION_CONFIG", "SESSION_DISABLED"]
