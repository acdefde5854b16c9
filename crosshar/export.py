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

int8 (`quantize`): by default onnxruntime static quantisation in QDQ format (int8 weights per
output channel, uint8 activations calibrated with min/max on windows of the source training
subjects); graphs with recurrent layers (LSTM, GRU), which static quantisation leaves in float, get
dynamic quantisation instead (int8 weights, activations quantised on the fly), and the report says
which one was used. `int8_mode="dynamic"` asks for dynamic quantisation everywhere: on x86 CPUs
without VNNI it was the faster of the two for the transformer heads (see `crosshar bench`); which one
is faster on a given ARM board is for the benchmark to tell there.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from crosshar import __version__
from crosshar.config import WindowConfig
from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.data.windows import CHANNELS
from crosshar.errors import CrossharError
from crosshar.models import classifier
from crosshar.limits import GRAVITY
from crosshar.runtime.sidecar import SIDECAR_FORMAT, sha256_file, sidecar_path, validate

FP32_TOL = 1e-4  # max |p_onnx - p_torch| over all windows and classes for the float model
RECURRENT_OPS = {"LSTM", "GRU", "RNN"}
# Ops quantised by static QDQ: the weight-carrying ones. Quantising the element-wise ops, layer norms
# and softmaxes as well saves no weight and costs accuracy for these small models.
QUANT_OPS = ("Conv", "MatMul", "Gemm")


class ExportCheckError(CrossharError):
    """The exported graph does not reproduce the PyTorch model within the stated tolerance."""


class _Probabilities(nn.Module):
    """The classifier with the softmax inside, as exported: window (B, T, C) -> probs (B, K)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(window), dim=-1)


def physical_windows(n: int, window: int = 120, n_channels: int = 6, rate_hz: float = 20.0,
                     seed: int = 0) -> np.ndarray:
    """Random windows that look like phone IMU data, for checks when no real windows are at hand.

    Gravity (9.81 m/s^2) along a random direction, a periodic movement of 0.5-3 Hz with up to
    4 m/s^2 on each acc axis and up to 2 rad/s on each gyro axis, and sensor noise.

    Returns:
        (n, window, n_channels) float32.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(window) / rate_hz
    up = rng.normal(size=(n, 1, 3))
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    f = rng.uniform(0.5, 3.0, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, n_channels))
    amp = rng.uniform(0, 1, size=(n, 1, n_channels)) * np.where(np.arange(n_channels) < 3, 4.0, 2.0)
    x = amp * np.sin(2 * np.pi * f * t[None, :, None] + phase)
    x[..., :3] += GRAVITY * up
    x += rng.normal(scale=np.where(np.arange(n_channels) < 3, 0.05, 0.01), size=x.shape)
    return x.astype(np.float32)


def torch_probabilities(model: nn.Module, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, T, C) windows -> (N, K) softmax probabilities of the PyTorch model (eval mode)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            out.append(torch.softmax(model(torch.from_numpy(windows[i:i + batch])), -1).numpy())
    return np.concatenate(out)


def ort_session(path: str | Path, threads: int | None = 1):
    """An onnxruntime CPU session (one intra-op thread by default: checks stay polite on shared CPUs)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_probabilities(sess, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([sess.run(["probs"], {"window": windows[i:i + batch]})[0]
                           for i in range(0, len(windows), batch)])


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


def fold_static_dims(model_bytes: bytes) -> bytes:
    """Fold what the fixed window length makes constant, for a smaller and faster graph.

    The TorchScript exporter records `x.shape[1]` as Shape -> Gather even though T is fixed, so
    slices of position tables (`pe[:T]`) and attention scales stay computed at run time and whole
    tables (a 512-row sinusoidal table) are stored. Gather(Shape(x), i) is replaced by a constant
    where ONNX shape inference knows dimension i, then onnxscript's optimizer folds what follows
    (the batch dimension stays dynamic). The parity check afterwards covers this rewrite.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnxscript import optimizer

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    g = model.graph
    dims = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if vi.type.tensor_type.HasField("shape"):
            dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts.update({n.output[0]: numpy_helper.to_array(a.t) for a in n.attribute if a.name == "value"})
    shape_of = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Shape" and not n.attribute}
    nodes = []
    for n in g.node:
        if n.op_type == "Gather" and n.input[0] in shape_of and n.input[1] in consts:
            d, idx = dims.get(shape_of[n.input[0]]), consts[n.input[1]]
            vals = [d[int(i)] for i in np.atleast_1d(idx)] if d is not None else [None]
            if all(v is not None and v > 0 for v in vals):
                value = numpy_helper.from_array(np.array(vals, dtype=np.int64).reshape(idx.shape))
                nodes.append(helper.make_node("Constant", [], [n.output[0]], value=value, name=n.name + "_static"))
                continue
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    model = optimizer.optimize(model, num_iterations=1, input_size_limit=1 << 20, output_size_limit=1 << 20)
    del model.graph.value_info[:]  # intermediate shape annotations are optional; stale ones upset tools
    return model.SerializeToString()


def _unshare_gemm_weights(path: Path) -> int:
    """Give every Gemm its own copy of a weight it shares with another node; returns the count.

    onnxruntime's dynamic quantiser rewrites Gemm(transB=1) into MatMulInteger by transposing the
    weight, and breaks a weight shared by two Gemms (DanHAR's channel attention applies one MLP
    to the mean and to the max), producing a graph that does not load.
    """
    import collections

    import onnx

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    uses = collections.Counter(i for n in g.node for i in n.input if i in inits)
    k = 0
    for n in g.node:
        if n.op_type != "Gemm":
            continue
        for j, name in enumerate(n.input[1:], 1):
            if name in inits and uses[name] > 1:
                uses[name] -= 1
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__gemm{k}"
                g.initializer.append(copy)
                n.input[j] = copy.name
                k += 1
    if k:
        onnx.save(model, str(path))
    return k


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
        "opset": opset,
        "source": meta.get("source"),
        "metrics": meta.get("metrics", {}),
        "sha256": sha256_file(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "crosshar_version": __version__,
        **extra,
    }, sidecar_path(onnx_path))


def _check_windows(windows: np.ndarray | None, w: WindowConfig, what: str) -> np.ndarray | None:
    if windows is None:
        return None
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1:] != (w.window, w.n_channels) or len(windows) == 0:
        raise CrossharError(f"{what} must be (N, {w.window}, {w.n_channels}) windows, got {windows.shape}")
    if not np.isfinite(windows).all():
        raise CrossharError(f"{what} contain NaN or infinite values")
    return windows


def export_onnx(
    run_or_ckpt_path: str | Path,
    out_path: str | Path,
    int8: bool = False,
    calib_windows: np.ndarray | None = None,
    opset: int = 17,
    *,
    int8_mode: str = "static",
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
    int8_mode: str = "static",
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
        opset: ONNX opset.
        int8_mode: "static" (calibrated QDQ; recurrent graphs fall back to dynamic) or "dynamic".
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
    import onnx

    say = log or (lambda s: None)
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise CrossharError(f"the output must end in .onnx, got {out_path}")
    if int8_mode not in ("static", "dynamic"):
        raise CrossharError(f"int8 mode must be 'static' or 'dynamic', got {int8_mode!r}")
    w = WindowConfig.from_dict(meta["window"])
    windows = _check_windows(windows, w, "check windows")
    win_src = windows_source
    if windows is None:
        windows = physical_windows(64, w.window, w.n_channels, w.rate_hz, seed=0)
        win_src = "random physical-looking"
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(windows):
            raise CrossharError(f"{len(labels)} labels for {len(windows)} check windows")
    model = model.eval()

    raw = onnx_bytes(model, w.window, w.n_channels, opset)
    try:
        raw, graph_note = fold_static_dims(raw), "static window dimensions folded (onnxscript optimizer)"
    except Exception as e:  # noqa: BLE001  (an optimisation: the plain export is still correct)
        graph_note = f"not optimised ({type(e).__name__}: {e})"
    atomic_write_bytes(out_path, raw)
    side = sidecar_path(out_path)
    try:
        onnx.checker.check_model(str(out_path))
        p_torch = torch_probabilities(model, windows)
        p_fp32 = ort_probabilities(ort_session(out_path), windows)
        diff = float(np.abs(p_fp32 - p_torch).max())
        if not diff <= tol:
            raise ExportCheckError(
                f"{out_path}: onnxruntime and PyTorch probabilities differ by up to {diff:.3g} on "
                f"{len(windows)} windows, more than the tolerance {tol:g}; the export is not usable")
    except BaseException:
        out_path.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        raise
    checks = {"vs_torch_max_abs_diff": diff, "tolerance": tol,
              "vs_torch_top1_agreement": float((p_fp32.argmax(1) == p_torch.argmax(1)).mean()),
              "n_windows": len(windows), "windows": win_src}
    if labels is not None:
        checks["metrics"] = _metrics(labels, p_fp32.argmax(1), meta["classes"])
    atomic_write_json(side, sidecar(meta, out_path, opset, exported_from=exported_from, precision="fp32",
                                    quantization=None, graph=graph_note, checks=checks))
    fp32 = {"path": str(out_path), "sidecar": str(side), "size_bytes": out_path.stat().st_size,
            "sha256": sha256_file(out_path), "graph": graph_note, **checks}
    say(f"wrote {out_path} ({fp32['size_bytes'] / 1e3:.1f} kB); onnxruntime vs PyTorch: max |dp| = {diff:.1e} "
        f"(tolerance {tol:g}) on {len(windows)} {win_src} windows")
    report: dict[str, Any] = {"fp32": fp32, "int8": None, "head": meta.get("head"),
                              "encoder": meta.get("encoder") is not None, "labels": list(meta["classes"])}
    if int8:
        q_path = out_path.with_name(out_path.stem + ".int8.onnx")
        report["int8"] = export_int8(out_path, q_path, meta, mode=int8_mode, calib_windows=calib_windows,
                                     windows=windows, labels=labels, opset=opset, exported_from=exported_from,
                                     windows_source=win_src, p_fp32=p_fp32)
        q = report["int8"]
        say(f"wrote {q_path} ({q['size_bytes'] / 1e3:.1f} kB, {q['mode']} int8); top-1 agreement with float "
            f"{q['top1_agreement_vs_fp32']:.1%}, max |dp| = {q['max_abs_diff_vs_fp32']:.3f}")
    return report


def export_int8(
    fp32_path: str | Path,
    q_path: str | Path,
    meta: dict[str, Any],
    *,
    mode: str = "static",
    calib_windows: np.ndarray | None = None,
    windows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    opset: int = 17,
    exported_from: str | None = None,
    windows_source: str = "given",
    p_fp32: np.ndarray | None = None,
) -> dict[str, Any]:
    """Quantise an exported float model, compare it with the float one, write its sidecar.

    Returns:
        {path, size_bytes, sha256, mode, ..., top1_agreement_vs_fp32, max_abs_diff_vs_fp32,
        [metrics: accuracy and macro-F1 on labelled windows]}.
    """
    import onnx

    fp32_path, q_path = Path(fp32_path), Path(q_path)
    w = WindowConfig.from_dict(meta["window"])
    calib_windows = _check_windows(calib_windows, w, "calibration windows")
    windows = _check_windows(windows, w, "check windows")
    if windows is None:
        windows = physical_windows(64, w.window, w.n_channels, w.rate_hz, seed=0)
        windows_source = "random physical-looking"
    calib_src = "given (source training subjects)"
    if calib_windows is None:
        calib_windows = physical_windows(128, w.window, w.n_channels, w.rate_hz, seed=1)
        calib_src = "random physical-looking: calibrate on real windows for a faithful int8 model"
    info = quantize(fp32_path, q_path, calib_windows, mode=mode)
    if info["mode"] == "static":
        info["calibration"] = {"n_windows": len(calib_windows), "windows": calib_src, "method": "MinMax"}
    try:
        onnx.checker.check_model(str(q_path))
        if p_fp32 is None:
            p_fp32 = ort_probabilities(ort_session(fp32_path), windows)
        p_int8 = ort_probabilities(ort_session(q_path), windows)
    except BaseException:
        q_path.unlink(missing_ok=True)
        raise
    checks: dict[str, Any] = {
        "top1_agreement_vs_fp32": float((p_int8.argmax(1) == p_fp32.argmax(1)).mean()),
        "max_abs_diff_vs_fp32": float(np.abs(p_int8 - p_fp32).max()),
        "n_windows": len(windows), "windows": windows_source,
    }
    if labels is not None:
        checks["metrics"] = _metrics(labels, p_int8.argmax(1), meta["classes"])
        checks["metrics_fp32"] = _metrics(labels, p_fp32.argmax(1), meta["classes"])
    q_side = sidecar_path(q_path)
    atomic_write_json(q_side, sidecar(meta, q_path, opset, exported_from=exported_from, precision="int8",
                                      quantization=info, checks=checks))
    return {"path": str(q_path), "sidecar": str(q_side), "size_bytes": q_path.stat().st_size,
            "sha256": sha256_file(q_path), "size_ratio": q_path.stat().st_size / fp32_path.stat().st_size,
            **info, **checks}


def source_windows(meta: dict[str, Any], data_dir: str | Path | None = None, run_path: str | Path | None = None,
                   max_windows: int = 512, max_calib: int = 256, seed: int = 0) -> dict[str, Any]:
    """Real windows of the checkpoint's source datasets for the export checks and int8 calibration.

    Validation subjects (labelled, for the parity check and float vs int8 metrics) and training
    subjects (for calibration) follow the split recorded with the run (the pretraining split in the
    meta, else `run.json` next to the checkpoint); without one, the finetuning default split
    (FinetuneConfig().val_fraction and seed) is re-derived. Never target data.

    Returns:
        {"windows": (N, T, C), "labels": (N,) class indices, "calib": (M, T, C), "note": str}.

    Raises:
        CrossharError (MissingDataError...) when the datasets cannot be read.
    """
    import json

    from crosshar.config import FinetuneConfig
    from crosshar.data.labels import LabelSpace
    from crosshar.data.sources import apply_split, load_sources, split_by_subject

    if not meta.get("source"):
        raise CrossharError("the checkpoint names no source dataset")
    w = WindowConfig.from_dict(meta["window"])
    ws = load_sources(list(meta["source"]), data_dir, w)
    split, how = meta.get("pretrain_split"), "the pretraining run's subject split"
    if split is None and run_path is not None:
        rp = Path(run_path)
        info = (rp if rp.is_dir() else rp.parent) / "run.json"
        try:
            split, how = json.loads(info.read_text()).get("split"), f"the subject split in {info}"
        except (OSError, ValueError):
            split = None
    if split:
        train, val = apply_split(ws, split)
    else:
        ft = FinetuneConfig()
        train, val, _ = split_by_subject(ws, ft.val_fraction, ft.seed)
        how = f"a re-derived subject split (val_fraction {ft.val_fraction}, seed {ft.seed})"
    y = LabelSpace(tuple(meta["classes"]), meta.get("label_space") or "").encode(val.labels)
    keep = np.flatnonzero(y >= 0)
    if len(keep) == 0 or len(train) == 0:
        raise CrossharError(f"no labelled validation windows or no training windows in {'+'.join(meta['source'])}")
    rng = np.random.default_rng(seed)
    if len(keep) > max_windows:
        keep = np.sort(rng.choice(keep, max_windows, replace=False))
    ci = np.arange(len(train))
    if len(ci) > max_calib:
        ci = np.sort(rng.choice(ci, max_calib, replace=False))
    note = (f"{len(keep)} validation windows of {len(set(val.subjects[keep].tolist()))} source subjects and "
            f"{len(ci)} calibration windows of the training subjects of {'+'.join(meta['source'])} ({how})")
    return {"windows": val.X[keep], "labels": y[keep], "calib": train.X[ci], "note": note}


def _metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    from crosshar.metrics import classification_report

    keep = y >= 0
    r = classification_report(y[keep], pred[keep], list(classes))
    return {"n": r["n"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}


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
             mode: str = "static") -> dict[str, Any]:
    """Quantise an exported model to int8; returns what was done (mode, reason, options).

    static: QDQ format, weights int8 per output channel (symmetric), activations uint8
        (asymmetric, min/max over `calib_windows`), for the weight-carrying ops (QUANT_OPS), which
        hold nearly all weights and time; the rest, the output softmax included, stays float
        (probabilities keep their resolution). A graph with recurrent
        ops, which static quantisation leaves in float, or one it fails on, goes dynamic instead.
    dynamic: int8 weights per output channel; activations quantised on the fly per tensor.
    Both use 7-bit weights (reduce_range): x86 CPUs without VNNI saturate the uint8 x int8 products
    of full-range weights; the cost is one bit of weight precision.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    ops = {n.op_type for n in onnx.load(str(fp32_path)).graph.node}
    recurrent = sorted(ops & RECURRENT_OPS)
    info: dict[str, Any] = {"requested": mode}
    with tempfile.TemporaryDirectory() as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        try:  # shape inference for the quantiser (graph optimisation is left to the runtime session)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(fp32_path), str(pre), skip_optimization=True)
            info["preprocess"] = "quant_pre_process (shape inference)"
        except Exception as e:  # noqa: BLE001  (pre-processing helps the quantiser but is optional)
            pre, info["preprocess"] = fp32_path, f"none ({type(e).__name__}: {e})"
        if mode == "static" and not recurrent:
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
        elif mode == "static":
            info["reason"] = f"recurrent op(s) {', '.join(recurrent)}: static quantisation would leave them in float"
        if not out.is_file():
            if pre == fp32_path:
                pre = Path(tmp) / "pre.onnx"
                pre.write_bytes(fp32_path.read_bytes())
            _unshare_gemm_weights(pre)
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
        left = sorted({n.op_type for n in onnx.load(str(out)).graph.node} & (RECURRENT_OPS - {"LSTM"}))
        if left:
            info["float_ops"] = left  # GRU / RNN have no int8 kernel in onnxruntime
        atomic_write_bytes(int8_path, out.read_bytes())
    return info


__all__ = [
    "export_onnx", "export_model", "export_int8", "quantize", "source_windows", "fold_static_dims",
    "physical_windows", "torch_probabilities", "ort_session", "ort_probabilities", "ExportCheckError", "FP32_TOL",
]
