"""The ONNX graph of a finetuned classifier, written and checked against PyTorch (see crosshar.export)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.config import WindowConfig
from crosshar.errors import CrossharError
from crosshar.export.checks import check_opset, check_windows, metrics, ort_probabilities, physical_windows
from crosshar.export.graph_surgery import attention_softmaxes, convs_as_2d, fold_static_dims, fuse_attention
from crosshar.export.quantize import INT8_MODES, export_int8
from crosshar.export.sidecar import sidecar
from crosshar.inference import in_batches
from crosshar.models import classifier
from crosshar.runtime.session import ort_session
from crosshar.runtime.sidecar import sha256_file, sidecar_path

FP32_TOL = 1e-4  # max |p_onnx - p_torch| over all windows and classes for the float model


class ExportCheckError(CrossharError):
    """The exported graph does not reproduce the PyTorch model within the stated tolerance."""


class _Probabilities(nn.Module):
    """The classifier with the softmax inside, as exported: window (B, T, C) -> probs (B, K)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(window), dim=-1)


def torch_probabilities(model: nn.Module, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, T, C) windows -> (N, K) softmax probabilities of the PyTorch model (eval mode)."""
    model.eval()
    with torch.inference_mode():
        out = in_batches(lambda x: torch.softmax(model(x), -1), windows, torch.device("cpu"), batch)
    return torch.cat(out).numpy()


def onnx_bytes(model: nn.Module, window: int, n_channels: int, opset: int = 17) -> bytes:
    """The TorchScript-based ONNX export (dynamo=False) of model + softmax, dynamic batch."""
    wrapped = _Probabilities(model).eval()
    example = torch.zeros(2, window, n_channels)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(
            wrapped, (example,), buf, input_names=["window"], output_names=["probs"],
            dynamic_axes={"window": {0: "batch"}, "probs": {0: "batch"}},
            opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    return buf.getvalue()


def export_onnx(
    run_or_ckpt_path: str | Path,
    out_path: str | Path,
    int8: bool = False,
    calib_windows: np.ndarray | None = None,
    opset: int = 17,
    *,
    int8_mode: str = INT8_MODES[0],
    windows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    windows_source: str = "given",
    tol: float = FP32_TOL,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export a finetuned checkpoint (file or run folder) to ONNX and check it; see export_model."""
    model, meta = classifier.load(run_or_ckpt_path)
    return export_model(model, meta, out_path, int8=int8, calib_windows=calib_windows, opset=opset,
                        int8_mode=int8_mode, windows=windows, labels=labels, windows_source=windows_source,
                        tol=tol, log=log, exported_from=str(run_or_ckpt_path))


def export_model(
    model: nn.Module,
    meta: dict[str, Any],
    out_path: str | Path,
    int8: bool = False,
    calib_windows: np.ndarray | None = None,
    opset: int = 17,
    *,
    int8_mode: str = INT8_MODES[0],
    windows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    windows_source: str = "given",
    tol: float = FP32_TOL,
    log: Callable[[str], None] | None = None,
    exported_from: str | None = None,
) -> dict[str, Any]:
    """Write `out_path` (float32 ONNX) and its sidecar; with `int8`, also `<stem>.int8.onnx`.

    Args:
        model: a HARClassifier (any module mapping (B, T, C) physical windows to logits).
        meta: the checkpoint meta (window, channels, classes, source, metrics, ...).
        int8: also write a quantised model.
        calib_windows: (N, T, C) windows of the source training subjects to calibrate int8
            activations; None = random physical-looking windows (the report says so).
        opset: ONNX opset, MIN_OPSET..MAX_OPSET (crosshar.export.checks).
        int8_mode: "auto" (the default: the fastest of the three below on this CPU that keeps the float
            model's answers; export_int8), "weights" (int8 weights, float activations: the smallest file
            at float speed), "static" (calibrated QDQ; recurrent graphs fall back to dynamic) or "dynamic".
        windows: (N, T, C) windows to compare ONNX with PyTorch (ideally the source validation
            windows); None = 64 random physical-looking windows.
        labels: (N,) class indices (into meta["classes"], -1 = ignore) of `windows`: adds accuracy
            and macro-F1 of float and int8 to the report.
        windows_source: what `windows` are, for the report and sidecar ("source validation").
        tol: largest allowed |p_onnx - p_torch| of the float model.

    Returns:
        The report: {"fp32": {...}, "int8": {...} or None, ...} with paths, sizes, hashes, checks.

    Raises:
        ExportCheckError: onnxruntime and PyTorch disagree by more than `tol` (the files are
            removed in that case).
    """
    say = log or (lambda s: None)
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise CrossharError(f"the output must end in .onnx, got {out_path}")
    if int8_mode not in INT8_MODES:
        raise CrossharError(f"int8 mode must be one of {', '.join(INT8_MODES)}, got {int8_mode!r}")
    check_opset(opset, "opset")  # before anything is written
    w = WindowConfig.from_dict(meta["window"])
    windows = check_windows(windows, w, "check windows")
    win_src = windows_source
    if windows is None:
        windows = physical_windows(64, w.window, w.n_channels, w.rate_hz, seed=0)
        win_src = "random physical-looking"
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(windows):
            raise CrossharError(f"{len(labels)} labels for {len(windows)} check windows")
    model = model.eval()
    graph_note = _write_graph(model, w, out_path, opset)
    p_fp32, checks = _check_fp32(model, out_path, windows, tol)
    checks["windows"] = win_src
    if labels is not None:
        checks["metrics"] = metrics(labels, p_fp32.argmax(1), meta["classes"])
    side = sidecar_path(out_path)
    atomic_write_json(side, sidecar(meta, out_path, opset, exported_from=exported_from, precision="fp32",
                                    quantization=None, graph=graph_note, checks=checks))
    fp32 = {"path": str(out_path), "sidecar": str(side), "size_bytes": out_path.stat().st_size,
            "sha256": sha256_file(out_path), "graph": graph_note, **checks}
    say(f"wrote {out_path} ({fp32['size_bytes'] / 1e3:.1f} kB); onnxruntime vs PyTorch: max |dp| = "
        f"{checks['vs_torch_max_abs_diff']:.1e} (tolerance {tol:g}) on {len(windows)} {win_src} windows")
    report: dict[str, Any] = {"fp32": fp32, "int8": None, "head": meta.get("head"),
                              "encoder": meta.get("encoder") is not None, "labels": list(meta["classes"])}
    q_path = out_path.with_name(out_path.stem + ".int8.onnx")
    if not int8:  # an int8 pair an earlier export left under this name belongs to another model: never deployed by mistake
        stale = [f for f in (q_path, sidecar_path(q_path)) if f.exists()]
        for f in stale:
            f.unlink()
        if stale:
            say(f"removed {q_path.name} (and its sidecar): an earlier export's int8 model, not this one's")
    if int8:
        report["int8"] = q = export_int8(out_path, q_path, meta, mode=int8_mode, calib_windows=calib_windows,
                                         windows=windows, labels=labels, opset=opset, exported_from=exported_from,
                                         windows_source=win_src, p_fp32=p_fp32)
        say(f"wrote {q_path} ({q['size_bytes'] / 1e3:.1f} kB, {q['mode']} int8); top-1 agreement with float "
            f"{q['top1_agreement_vs_fp32']:.1%}, max |dp| = {q['max_abs_diff_vs_fp32']:.3f}")
    return report


def _write_graph(model: nn.Module, w: WindowConfig, out_path: Path, opset: int) -> str:
    """Export, fold the static dimensions (when the optimiser manages), fuse attention and run 1-D
    convolutions as 2-D (crosshar.export.graph_surgery), write; returns what was done."""
    raw = onnx_bytes(model, w.window, w.n_channels, opset)
    try:
        raw, graph_note = fold_static_dims(raw), "static window dimensions folded (onnxscript optimizer)"
    except Exception as e:  # noqa: BLE001  (an optimisation: the plain export is still correct)
        graph_note = f"not optimised ({type(e).__name__}: {e})"
    raw, fused_note = _fuse(raw)
    atomic_write_bytes(out_path, raw)
    return "; ".join(n for n in (graph_note, fused_note) if n)


def _fuse(raw: bytes) -> tuple[bytes, str]:
    """fuse_attention and convs_as_2d on the serialised graph; (graph, what was done). The parity
    check that follows covers both; a rewrite that raises leaves the graph as it was, and says so."""
    import onnx

    model = onnx.load_from_string(raw)
    try:
        found = attention_softmaxes(model)
        fused, convs = fuse_attention(model), convs_as_2d(model)
    except Exception as e:  # noqa: BLE001  (an optimisation: the unfused graph is still correct)
        return raw, f"attention and convolutions not rewritten ({type(e).__name__}: {e})"
    notes = []
    if found or fused:
        left = f" ({found - fused} did not match the pattern and stay unfused)" if found > fused else ""
        notes.append(f"{fused} of {found} attentions fused into MultiHeadAttention (com.microsoft){left}")
    if convs:
        notes.append(f"{convs} 1-D convolutions run as 2-D")
    return (model.SerializeToString() if fused or convs else raw), "; ".join(notes)


def _check_fp32(model: nn.Module, out_path: Path, windows: np.ndarray, tol: float) -> tuple[np.ndarray, dict]:
    """(onnxruntime probabilities, checks): onnx.checker, then onnxruntime against PyTorch within `tol`.
    On any failure the graph (and a sidecar left from before) is removed."""
    import onnx

    try:
        onnx.checker.check_model(str(out_path))
        p_torch = torch_probabilities(model, windows)
        if not np.isfinite(p_torch).all():  # a model whose weights overflowed: nothing to export, whatever onnx gives
            n = int((~np.isfinite(p_torch)).any(1).sum())
            raise ExportCheckError(f"the model gives non-finite probabilities for {n:,} of {len(windows):,} windows: its "
                                   "weights are damaged or its training diverged; nothing is exported")
        p_fp32 = ort_probabilities(ort_session(out_path), windows)
        diff = float(np.abs(p_fp32 - p_torch).max())
        if not diff <= tol:
            raise ExportCheckError(
                f"{out_path}: onnxruntime and PyTorch probabilities differ by up to {diff:.3g} on "
                f"{len(windows)} windows, more than the tolerance {tol:g}; the export is not usable")
    except BaseException:
        out_path.unlink(missing_ok=True)
        sidecar_path(out_path).unlink(missing_ok=True)
        raise
    return p_fp32, {"vs_torch_max_abs_diff": diff, "tolerance": tol,
                    "vs_torch_top1_agreement": float((p_fp32.argmax(1) == p_torch.argmax(1)).mean()),
                    "n_windows": len(windows)}
