"""The one home for onnxruntime sessions: the runtime, the export checks and `crosshar bench` all
open models here (numpy + onnxruntime only: the runtime deploys without torch)."""

from __future__ import annotations

from pathlib import Path


def ort_session(path: str | Path, threads: int | None = 1):
    """An onnxruntime CPU session for an exported model.

    Args:
        path: the .onnx file.
        threads: intra-op threads (one inter-op thread); None = onnxruntime's default (all cores).
            One thread by default: predictable latency and polite on shared CPUs.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


__all__ = ["ort_session"]
