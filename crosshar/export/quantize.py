"""int8 quantisation of an exported float graph with onnxruntime's quantiser (weight-only, static QDQ or
dynamic), the int8 model's check against the float one, and the automatic choice of the mode that is fastest
on this CPU ("auto", the default)."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.config import WindowConfig
from crosshar.errors import CrossharError
from crosshar.export.checks import check_windows, metrics, ort_probabilities, physical_windows
from crosshar.export.graph_surgery import drop_activation_qdq, drop_shape_annotations, unshare_gemm_weights
from crosshar.export.sidecar import sidecar
from crosshar.runtime.session import ort_session
from crosshar.runtime.sidecar import sha256_file, sidecar_path

RECURRENT_OPS = {"LSTM", "GRU", "RNN"}
# Ops quantised by static QDQ: the weight-carrying ones. Quantising the element-wise ops, layer norms
# and softmaxes as well saves no weight and costs accuracy for these small models.
QUANT_OPS = ("Conv", "MatMul", "Gemm")
INT8_MODES = ("auto", "weights", "static", "dynamic")  # the first is the default (see export_int8)
FIXED_MODES = INT8_MODES[1:]  # what "auto" picks from, in order of preference (the first is the closest to float)
# "auto": a mode whose batch-1 latency is within AUTO_TIE of the fastest counts as fast (timing noise), and the first
# such mode in FIXED_MODES is kept; a mode that agrees with the float model on fewer than AUTO_MIN_AGREEMENT of the
# check windows, or loses more than AUTO_MAX_F1_DROP of macro-F1 on labelled ones, is not a candidate
AUTO_TIE = 0.03
AUTO_MIN_AGREEMENT = 0.98
AUTO_MAX_F1_DROP = 0.01  # macro-F1, as a fraction (1 point), crosshar bench's target
AUTO_TIMING = {"repeats": 100, "rounds": 5}  # interleaved batch-1 calls per model (crosshar.runtime.timing)


def export_int8(
    fp32_path: str | Path,
    q_path: str | Path,
    meta: dict[str, Any],
    *,
    mode: str = INT8_MODES[0],
    calib_windows: np.ndarray | None = None,
    windows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    opset: int = 17,
    exported_from: str | None = None,
    windows_source: str = "given",
    p_fp32: np.ndarray | None = None,
) -> dict[str, Any]:
    """Quantise an exported float model, compare it with the float one, write its sidecar.

    mode: one of FIXED_MODES (see quantize), or "auto" (the default): each applicable mode is written and checked,
    then timed on this CPU at batch 1 on one thread (thread CPU time, interleaved with the float model), and the
    fastest that keeps the float model's answers is kept (choose_mode); the report's and sidecar's `auto` say what
    each candidate measured. Static int8 is a candidate only with real calibration windows (random ones would set
    its activation ranges), and not for recurrent graphs (which it would leave in float). Which mode is fastest
    depends on the CPU: on this project's x86 machine static int8 for the default DIN model (results/bench_auto.md),
    weight-only or dynamic for other heads (results/bench_heads.md); on an ARM board, `crosshar-time` (the
    runtime's, crosshar.runtime.timing) times files written with each `--int8-mode` there.

    Returns:
        {path, size_bytes, sha256, mode, ..., top1_agreement_vs_fp32, max_abs_diff_vs_fp32,
        [metrics: accuracy and macro-F1 on labelled windows], [auto]}.
    """
    fp32_path, q_path = Path(fp32_path), Path(q_path)
    w = WindowConfig.from_dict(meta["window"])
    calib_windows = check_windows(calib_windows, w, "calibration windows")
    windows = check_windows(windows, w, "check windows")
    if windows is None:
        windows = physical_windows(64, w.window, w.n_channels, w.rate_hz, seed=0)
        windows_source = "random physical-looking"
    real_calib = calib_windows is not None
    calib_src = "given (source training subjects)"
    if calib_windows is None:
        calib_windows = physical_windows(128, w.window, w.n_channels, w.rate_hz, seed=1)
        calib_src = "random physical-looking: calibrate on real windows for a faithful int8 model"
    if p_fp32 is None:
        p_fp32 = ort_probabilities(ort_session(fp32_path), windows)
    check = dict(windows=windows, labels=labels, classes=meta["classes"], p_fp32=p_fp32)
    if mode != "auto":
        info, checks = _quantize_checked(fp32_path, q_path, calib_windows, mode, **check)
    else:
        info, checks = _auto(fp32_path, q_path, calib_windows, real_calib, w, **check)
    if info["mode"] == "static":
        info["calibration"] = {"n_windows": len(calib_windows), "windows": calib_src, "method": "MinMax"}
    checks.update(n_windows=len(windows), windows=windows_source)
    q_side = sidecar_path(q_path)
    atomic_write_json(q_side, sidecar(meta, q_path, opset, exported_from=exported_from, precision="int8",
                                      quantization=info, checks=checks))
    return {"path": str(q_path), "sidecar": str(q_side), "size_bytes": q_path.stat().st_size,
            "sha256": sha256_file(q_path), "size_ratio": q_path.stat().st_size / fp32_path.stat().st_size,
            **info, **checks}


def _quantize_checked(fp32_path: Path, q_path: Path, calib_windows: np.ndarray, mode: str, *, windows: np.ndarray,
                      labels: np.ndarray | None, classes: list[str], p_fp32: np.ndarray
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """quantize() into `q_path`, then the int8 model against the float one on `windows`: (info, checks)."""
    import onnx

    info = quantize(fp32_path, q_path, calib_windows, mode=mode)
    try:
        onnx.checker.check_model(str(q_path))
        p_int8 = ort_probabilities(ort_session(q_path, quantization=info["mode"]), windows)
    except BaseException:
        q_path.unlink(missing_ok=True)
        raise
    checks: dict[str, Any] = {
        "top1_agreement_vs_fp32": float((p_int8.argmax(1) == p_fp32.argmax(1)).mean()),
        "max_abs_diff_vs_fp32": float(np.abs(p_int8 - p_fp32).max()),
    }
    if labels is not None:
        checks["metrics"] = metrics(labels, p_int8.argmax(1), classes)
        checks["metrics_fp32"] = metrics(labels, p_fp32.argmax(1), classes)
    return info, checks


def _auto(fp32_path: Path, q_path: Path, calib_windows: np.ndarray, real_calib: bool, w: WindowConfig,
          **check: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every applicable mode written and checked in a scratch folder, timed on this CPU, the chosen one moved to
    `q_path`: (its info with `requested` "auto" and `auto`, its checks)."""
    import onnx

    from crosshar.runtime.timing import ort_latencies_ms

    recurrent = sorted({n.op_type for n in onnx.load(str(fp32_path)).graph.node} & RECURRENT_OPS)
    skipped = {}
    if recurrent:
        skipped["static"] = f"recurrent op(s) {', '.join(recurrent)}, which static quantisation leaves in float"
    elif not real_calib:
        skipped["static"] = "no real calibration windows (random ones would set its activation ranges)"
    with tempfile.TemporaryDirectory() as tmp:
        done: dict[str, tuple[dict[str, Any], dict[str, Any], Path]] = {}
        for m in FIXED_MODES:
            if m in skipped:
                continue
            path = Path(tmp) / f"{m}.onnx"
            info, checks = _quantize_checked(fp32_path, path, calib_windows, m, **check)
            if info["mode"] != m:  # static that fell back: dynamic is a candidate of its own
                skipped[m] = f"fell back to {info['mode']}" + (f" ({info['reason']})" if info.get("reason") else "")
                continue
            done[m] = (info, checks, path)
        x1 = physical_windows(1, w.window, w.n_channels, w.rate_hz, seed=3)
        lat = ort_latencies_ms([(fp32_path, None)] + [(p, m) for m, (_, _, p) in done.items()], x1, **AUTO_TIMING)
        cands = {m: {"latency_ms": t, "size_bytes": p.stat().st_size, "top1_agreement_vs_fp32":
                     c["top1_agreement_vs_fp32"], "macro_f1": c.get("metrics", {}).get("macro_f1"),
                     "macro_f1_fp32": c.get("metrics_fp32", {}).get("macro_f1")}
                 for (m, (_, c, p)), t in zip(done.items(), lat[1:])}
        chosen, why = choose_mode(cands)
        info, checks, path = done[chosen]
        atomic_write_bytes(q_path, path.read_bytes())
    info = {**info, "requested": "auto"}
    info["auto"] = {"chosen": chosen, "reason": why, "fp32_latency_ms": lat[0], "candidates": cands,
                    "skipped": skipped, "timing": "batch 1, one thread, thread CPU time, interleaved "
                                                  f"({AUTO_TIMING['rounds']} rounds of "
                                                  f"{AUTO_TIMING['repeats'] // AUTO_TIMING['rounds']} calls, "
                                                  "the least disturbed round's median), on the exporting CPU"}
    return info, checks


def choose_mode(cands: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The int8 mode "auto" keeps, and why: of the candidates that keep the float model's answers (top-1 agreement
    >= AUTO_MIN_AGREEMENT, macro-F1 at most AUTO_MAX_F1_DROP below float where labels were given), the first in
    FIXED_MODES order whose latency is within AUTO_TIE of the fastest. When none keeps them, the one that agrees
    most (on a tie, the first in order).

    cands: mode -> {latency_ms, top1_agreement_vs_fp32, macro_f1, macro_f1_fp32} (the F1s may be None).
    """
    order = [m for m in FIXED_MODES if m in cands]
    if not order:
        raise CrossharError("no int8 mode to choose from")

    def faithful(c: dict[str, Any]) -> bool:
        f1, f1_fp32 = c.get("macro_f1"), c.get("macro_f1_fp32")
        return (c["top1_agreement_vs_fp32"] >= AUTO_MIN_AGREEMENT
                and (f1 is None or f1_fp32 is None or f1 >= f1_fp32 - AUTO_MAX_F1_DROP))

    ok = [m for m in order if faithful(cands[m])]
    if not ok:
        best = max(order, key=lambda m: cands[m]["top1_agreement_vs_fp32"])
        return best, (f"no mode keeps the float model's answers (top-1 agreement >= {AUTO_MIN_AGREEMENT:.0%}, "
                      f"macro-F1 within {100 * AUTO_MAX_F1_DROP:g} point): the one that agrees most")
    fastest = min(cands[m]["latency_ms"] for m in ok)
    chosen = next(m for m in ok if cands[m]["latency_ms"] <= (1 + AUTO_TIE) * fastest)
    times = ", ".join(f"{m} {cands[m]['latency_ms']:.3f} ms" for m in order)
    return chosen, f"the fastest here that keeps the float model's answers ({times}; within {AUTO_TIE:.0%} the " \
                   f"first of {', '.join(FIXED_MODES)})"


class _WindowReader:
    """onnxruntime CalibrationDataReader over (N, T, C) windows, in batches."""

    def __init__(self, windows: np.ndarray, batch: int = 32):
        self.windows, self.batch = windows, batch
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.windows):
            return None
        x = self.windows[self._i:self._i + self.batch]
        self._i += self.batch
        return {"window": x}

    def rewind(self) -> None:
        self._i = 0


def quantize(fp32_path: str | Path, int8_path: str | Path, calib_windows: np.ndarray,
             mode: str = FIXED_MODES[0]) -> dict[str, Any]:
    """Quantise an exported model to int8 in one of FIXED_MODES; returns what was done (mode, reason, options).

    static: QDQ format, weights int8 per output channel (symmetric), activations uint8
        (asymmetric, min/max over `calib_windows`), for the weight-carrying ops (QUANT_OPS), which
        hold nearly all weights and time; the rest, the output softmax included, stays float
        (probabilities keep their resolution). A graph with recurrent
        ops, which static quantisation leaves in float, or one it fails on, goes dynamic instead.
    weights: int8 weights per output channel (symmetric, full range) of QUANT_OPS, activations in
        float: onnxruntime's static QDQ quantiser, then the activations' QuantizeLinear ->
        DequantizeLinear pairs removed (drop_activation_qdq). The file is the smallest; loaded with
        crosshar.runtime.session.ort_session, the weights are dequantised once, so it runs at float
        speed and nearly float accuracy (the fastest int8 model on x86 before the export fused attention:
        results/bench.md).
    dynamic: int8 weights per output channel; activations quantised on the fly per tensor.
    static and dynamic use 7-bit weights (reduce_range): x86 CPUs without VNNI saturate the uint8 x int8 products
    of full-range weights; the cost is one bit of weight precision.
    """
    import onnx

    if mode not in FIXED_MODES:
        raise CrossharError(f"int8 mode must be one of {', '.join(FIXED_MODES)}, got {mode!r}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    ops = {n.op_type for n in onnx.load(str(fp32_path)).graph.node}
    recurrent = sorted(ops & RECURRENT_OPS)
    info: dict[str, Any] = {"requested": mode}
    with tempfile.TemporaryDirectory() as tmp, _no_preprocess_advice():
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        try:  # shape inference for the quantiser (graph optimisation is left to the runtime session)
            info["preprocess"] = _pre_process(fp32_path, pre)
        except Exception as e:  # noqa: BLE001  (pre-processing helps the quantiser but is optional)
            pre, info["preprocess"] = fp32_path, f"none ({type(e).__name__}: {e})"
        if mode == "weights":
            _quantize_weights(pre, out, calib_windows)
            info.update(mode="weights", format="QDQ, weights only", per_channel=True, weights="int8 (symmetric)",
                        activations="float32", op_types=list(QUANT_OPS),
                        session="session.disable_quant_qdq = 1: the DequantizeLinear of each weight is folded "
                                "into a float weight when the session loads (crosshar.runtime.session)")
            if recurrent:
                info["float_ops"] = recurrent  # static QDQ leaves recurrent weights in float
        elif mode == "static" and not recurrent:
            _static(pre, out, calib_windows, info)
        elif mode == "static":
            info["reason"] = f"recurrent op(s) {', '.join(recurrent)}: static quantisation would leave them in float"
        if not out.is_file():
            if pre == fp32_path:
                pre = Path(tmp) / "pre.onnx"
                pre.write_bytes(fp32_path.read_bytes())
            _dynamic(pre, out, fp32_path, info)
        left = [] if mode == "weights" else sorted({n.op_type for n in onnx.load(str(out)).graph.node}
                                                   & (RECURRENT_OPS - {"LSTM"}))
        if left:
            info["float_ops"] = left  # GRU / RNN have no int8 kernel in onnxruntime
        model = onnx.load(str(out))
        drop_shape_annotations(model)  # the quantiser's shape inference annotated every tensor: slower
        atomic_write_bytes(int8_path, model.SerializeToString())
    return info


def _pre_process(src: Path, dst: Path) -> str:
    """onnxruntime's quant_pre_process of `src` into `dst` (shape inference, no optimisation); says which ran.

    Its symbolic shape inference fails on some graphs (a head on raw windows at opset 20: a TypeError inside it);
    ONNX's own shape inference then does for these graphs, and the quantiser gets a pre-processed model."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            quant_pre_process(str(src), str(dst), skip_optimization=True)
            return "quant_pre_process (shape inference)"
        except Exception as e:  # noqa: BLE001  (onnxruntime's own exception types)
            quant_pre_process(str(src), str(dst), skip_optimization=True, skip_symbolic_shape=True)
            return f"quant_pre_process (ONNX shape inference; the symbolic one failed: {type(e).__name__}: {e})"


class _NoPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocess_advice():
    """Without onnxruntime's "Please consider (to run) pre-processing before quantization", which its quantiser
    logs to the root logger twice per call when the model lacks pre-processing. It is noise here: quantize() runs
    that pre-processing itself, and where it fails the report's `preprocess` says why."""
    advice, root = _NoPreprocessAdvice(), logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _quantize_weights(src: Path, dst: Path, calib_windows: np.ndarray) -> None:
    """Weight-only int8 QDQ of `src` into `dst` (see quantize); CrossharError if onnxruntime fails."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    # the activation ranges are discarded, so a few windows calibrate enough for the quantiser to run
    reader = type("Reader", (_WindowReader, CalibrationDataReader), {})(calib_windows[:8])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(QUANT_OPS), per_channel=True, reduce_range=False,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            extra_options={"WeightSymmetric": True, "QuantizeBias": False})
    except Exception as e:  # noqa: BLE001  (onnxruntime's own exception types)
        raise CrossharError(f"{src}: weight-only int8 quantisation failed ({type(e).__name__}: {e})") from None
    drop_activation_qdq(dst)


def _static(pre: Path, out: Path, calib_windows: np.ndarray, info: dict[str, Any]) -> None:
    """Static QDQ quantisation of the weight-carrying ops; on failure `out` is absent and `info` says why."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader = type("Reader", (_WindowReader, CalibrationDataReader), {})(calib_windows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(
                str(pre), str(out), reader, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANT_OPS), per_channel=True, reduce_range=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )
        info.update(mode="static", format="QDQ", per_channel=True, weights="int8 (7-bit range)",
                    activations="uint8, calibrated", op_types=list(QUANT_OPS))
    except Exception as e:  # noqa: BLE001  (fall back, and say why)
        info["reason"] = f"static quantisation failed ({type(e).__name__}: {e})"
        out.unlink(missing_ok=True)


def _dynamic(pre: Path, out: Path, fp32_path: Path, info: dict[str, Any]) -> None:
    """Dynamic quantisation (int8 weights, activations on the fly); a CrossharError when it fails."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    unshare_gemm_weights(pre)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(pre), str(out), per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    except Exception as e:  # noqa: BLE001  (onnxruntime's own exception types)
        raise CrossharError(f"{fp32_path}: int8 quantisation failed ({type(e).__name__}: {e})") from None
    info.update(mode="dynamic", format="QOperator", per_channel=True, weights="int8 (7-bit range)",
                activations="uint8, quantised on the fly")
