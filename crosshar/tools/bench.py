"""Deployment benchmark: size, single-thread latency, throughput and memory of each head, in
PyTorch eager, ONNX float32 and ONNX int8 (weight-only, static and dynamic), for a Raspberry Pi-class
budget. Every ONNX model is the file `crosshar export` writes, opened by the runtime's session helper
(crosshar.runtime.session, with the settings its quantisation needs).

Latency is per window at batch 1 on ONE thread (torch.set_num_threads(1); onnxruntime with one
intra-op and one inter-op thread), in CPU time of the calling thread (time.thread_time: other
processes on a shared machine do not inflate it), over `repeats` timed calls after warm-up, the models
interleaved in 5 rounds and the least disturbed round's median kept (crosshar.runtime.timing): a Pi
classifying one stream does exactly this. Without a run, each head is benchmarked on exactly
the graph `crosshar export` writes for the default pipeline (the default encoder, input scaling and
input frame). Throughput is windows per second at batch 64, also on
one thread. Memory is the peak resident set size (VmHWM) of a fresh Python process that imports
numpy, onnxruntime and crosshar.runtime.session, loads the model and classifies one window: what the torch-free runtime
needs on the device (`rss_mb`), and the part of it due to the model (`model_rss_mb`, the increase
over the same process before loading the model). PyTorch's memory is not measured (torch is not
deployed).

Targets for the default encoder + the default head (FinetuneConfig().head), judged for every ONNX
model: file <= 1 MB, >= 3x faster than PyTorch eager at batch 1 on one thread, macro-F1 within 1
point of PyTorch on an unseen target (with a finetuned run and a target; on the source validation
windows when only the run is given).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from crosshar.config import EncoderConfig, FinetuneConfig, WindowConfig
from crosshar.data.windows import CHANNELS
from crosshar.export import (FIXED_MODES, export_int8, export_model, ort_probabilities, physical_windows,
                             torch_probabilities)
from crosshar.runtime.timing import interleaved, time_calls
from crosshar.runtime.session import ort_session
from crosshar.models import classifier
from crosshar.models.scaling import InputPipeline

TARGET_INT8_BYTES = 1_000_000
TARGET_SPEEDUP = 3.0
TARGET_F1_DROP = 0.01  # macro-F1, as a fraction (1 point)
CLASSES = ["walking", "upstairs", "downstairs", "sitting&standing"]

_MEMORY_PROBE = r"""
import resource, sys
import numpy as np, onnxruntime as ort

def peak_kib():  # VmHWM: this process's own peak RSS (ru_maxrss can carry the parent's over exec)
    try:
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = peak_kib()
from crosshar.runtime.session import ort_session
s = ort_session(sys.argv[1], 1, sys.argv[4] or None)
x = np.zeros((1, int(sys.argv[2]), int(sys.argv[3])), np.float32)
for _ in range(3):
    s.run(None, {"window": x})
print(base, peak_kib())
"""


def bench_meta(head: str, encoder: EncoderConfig | None, window: WindowConfig | None = None) -> dict[str, Any]:
    """The checkpoint meta of an untrained classifier, for architecture benchmarks: the input pipeline
    a model trained now would get (its encoder's, or the configured default for a head on raw
    windows, as `crosshar finetune --no-pretrain` builds it)."""
    w = window or WindowConfig()
    pipeline = InputPipeline.default() if encoder is None else InputPipeline.of_encoder(encoder)
    return {"window": w.to_dict(), "channels": list(CHANNELS[w.channels]), "classes": CLASSES,
            "label_space": "crosshar4", "encoder": None if encoder is None else encoder.to_dict(),
            "head": head, "head_cfg": {}, "source": [], "metrics": {}, **pipeline.to_meta()}


def _memory(path: Path, T: int, C: int, quantization: str | None = None) -> tuple[float | None, float | None]:
    """(peak RSS MB, model's share MB) of a fresh numpy + onnxruntime process running the model."""
    try:
        r = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), str(T), str(C), quantization or ""],
                           capture_output=True, text=True, timeout=120, check=True)
        base, peak = (int(v) for v in r.stdout.split())
    except (subprocess.SubprocessError, ValueError, OSError):
        return None, None
    return peak / 1024, (peak - base) / 1024  # KiB -> MiB


def bench_model(model: torch.nn.Module, meta: dict[str, Any], workdir: Path, *, repeats: int = 50,
                batch: int = 64, memory: bool = True, windows: np.ndarray | None = None,
                labels: np.ndarray | None = None, calib_windows: np.ndarray | None = None,
                target_f1: Callable[[Callable[[np.ndarray], np.ndarray]], float] | None = None,
                name: str = "model") -> list[dict[str, Any]]:
    """Rows for one classifier: pytorch, onnx-fp32 and the int8 models, each timed exactly as written
    by `export` and opened by the runtime's session helper: the one `export` writes by default (its
    "auto" mode, timed on this CPU; the row's `export_default`) and each other mode beside it: weights,
    static (not on recurrent heads, where it falls back to dynamic) and dynamic; see the module docstring.

    `target_f1` maps a probability function ((N, T, C) windows -> (N, K)) to the macro-F1 on an unseen
    target; given, each row gets `target_macro_f1`.
    """
    w = WindowConfig.from_dict(meta["window"])
    T, C = w.window, w.n_channels
    x1 = physical_windows(1, T, C, w.rate_hz, seed=3)
    xb = physical_windows(batch, T, C, w.rate_hz, seed=4)
    n_tp = max(2, repeats // 10)
    head, enc = meta["head"], ("none" if meta.get("encoder") is None else _enc_name(meta["encoder"]))
    base = {"head": head, "encoder": enc, "encoder_config": meta.get("encoder"),
            "params": sum(p.numel() for p in model.parameters())}
    if calib_windows is None:  # random weights: the physical-looking windows calibrate, so that static int8 is a
        calib_windows = physical_windows(128, T, C, w.rate_hz, seed=1)  # candidate of "auto" as with a real run
    rep = export_model(model, meta, workdir / f"{name}.onnx", int8=True, int8_mode="auto",
                       calib_windows=calib_windows, windows=windows, labels=labels)
    chosen, int8s = rep["int8"], []
    for mode in FIXED_MODES:  # the export default's choice, and every other mode beside it
        r = chosen if mode == chosen["mode"] else export_int8(
            rep["fp32"]["path"], workdir / f"{name}.{mode}.int8.onnx", meta, mode=mode,
            calib_windows=calib_windows, windows=windows, labels=labels)
        if r["mode"] == mode:  # (static falls back to dynamic on recurrent heads: dynamic comes next)
            int8s.append(r)
    onnx = [(r, ort_session(Path(r["path"]), 1, r.get("mode"))) for r in [rep["fp32"]] + int8s]
    model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            t1x, tbx = torch.from_numpy(x1), torch.from_numpy(xb)
            lats = interleaved([lambda: model(t1x)] + [lambda s=s: s.run(None, {"window": x1}) for _, s in onnx],
                                repeats)
            tb = time_calls(lambda: model(tbx), n_tp, warmup=1)
        torch_row = {**base, "backend": "pytorch", "size_bytes": None, "latency_ms": lats[0] * 1e3,
                     "throughput": batch / tb, "rss_mb": None, "model_rss_mb": None}
        if labels is not None and windows is not None:
            torch_row["macro_f1"] = _macro_f1(labels, torch_probabilities(model, windows).argmax(1), meta["classes"])
        if target_f1 is not None:
            torch_row["target_macro_f1"] = target_f1(lambda X: torch_probabilities(model, X))
    finally:
        torch.set_num_threads(threads)
    rows = [torch_row]
    for (r, sess), lat in zip(onnx, lats[1:]):
        path, mode = Path(r["path"]), r.get("mode")
        tb = time_calls(lambda: sess.run(None, {"window": xb}), n_tp, warmup=1)
        rss, model_rss = _memory(path, T, C, mode) if memory else (None, None)
        row = {**base, "backend": "onnx-fp32" if mode is None else "onnx-int8", "size_bytes": r["size_bytes"],
               "latency_ms": lat * 1e3, "throughput": batch / tb, "rss_mb": rss, "model_rss_mb": model_rss}
        if mode is not None:
            row["quantization"] = mode
            row["export_default"] = r is chosen
            row["top1_agreement_vs_fp32"] = r["top1_agreement_vs_fp32"]
        if "metrics" in r:
            row["macro_f1"] = r["metrics"]["macro_f1"]
        if target_f1 is not None:
            row["target_macro_f1"] = target_f1(lambda X, s=sess: ort_probabilities(s, X))
        rows.append(row)
    for row in rows:
        row["speedup_vs_pytorch"] = rows[0]["latency_ms"] / row["latency_ms"]
    return rows


def _enc_name(enc: dict[str, Any]) -> str:
    """"default" for EncoderConfig(), else "custom" (the row's encoder_config has the details)."""
    return "default" if enc == EncoderConfig().to_dict() else "custom"


def _macro_f1(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> float:
    from crosshar.metrics import classification_report

    keep = y >= 0
    return classification_report(y[keep], pred[keep], list(classes))["macro_f1"]


def run_bench(
    heads: list[str] | None = None,
    *,
    encoder: EncoderConfig | None = None,
    raw: bool = False,
    run: str | Path | None = None,
    cadence_views: int | None = None,
    windows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    calib_windows: np.ndarray | None = None,
    target_f1: Callable[[Callable[[np.ndarray], np.ndarray]], float] | None = None,
    repeats: int = 50,
    batch: int = 64,
    memory: bool = True,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark heads (random weights, architecture speed) or one finetuned run.

    Args:
        heads: registered head names (default: all) on the encoder `encoder`
            (default EncoderConfig()); ignored when `run` is given.
        raw: also benchmark each head directly on raw windows (no encoder).
        run: a finetuned checkpoint file or run folder: benchmark that model instead.
        cadence_views: with `run`, K fixed cadence views in the model and its export
            (classifier.with_cadence_views); None: the model's own.
        windows, labels: labelled (N, T, C) windows (class indices; -1 = ignore), for macro-F1
            float vs int8 (and as the export's check windows).
        calib_windows: source training windows to calibrate int8 (default: random windows).
        target_f1: probability function -> macro-F1 on an unseen target (see bench_model).
        repeats: timed batch-1 calls per backend (median reported).
        batch: batch size of the throughput measurement.
        memory: measure peak RSS in a fresh process per ONNX model (about a second each).

    Returns:
        One dict per (model, backend): head, encoder, backend, params, size_bytes, latency_ms,
        throughput (windows/s), rss_mb, model_rss_mb, speedup_vs_pytorch, [macro_f1, quantization].
    """
    from crosshar.models.heads import list_heads

    say = log or (lambda s: None)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="crosshar-bench-") as tmp:
        work = Path(tmp)
        if run is not None:
            model, meta = classifier.load(run)
            if cadence_views is not None:
                meta = classifier.with_cadence_views(model, meta, cadence_views)
            say(f"benchmarking {run} (head {meta['head']})")
            rows += bench_model(model, meta, work, repeats=repeats, batch=batch, memory=memory,
                                windows=windows, labels=labels, calib_windows=calib_windows,
                                target_f1=target_f1, name="run")
            return rows
        enc = encoder if encoder is not None else EncoderConfig()
        for head in heads or list_heads():
            for e in ([enc, None] if raw else [enc]):
                torch.manual_seed(seed)
                meta = bench_meta(head, e)
                model = classifier.build(meta).eval()
                say(f"benchmarking {head} ({'raw windows' if e is None else 'encoder'})")
                rows += bench_model(model, meta, work, repeats=repeats, batch=batch, memory=memory,
                                    windows=windows, labels=labels, calib_windows=calib_windows,
                                    target_f1=target_f1, name=f"{head}-{'raw' if e is None else 'enc'}")
    return rows


def check_targets(rows: list[dict[str, Any]], head: str | None = None) -> list[dict[str, Any]]:
    """The deployment targets for `head` (default FinetuneConfig().head) on an encoder, judged for
    every ONNX model (fp32 and each int8 mode).

    Macro-F1 is compared with PyTorch on the unseen target when it was measured (`target_macro_f1`),
    else on the labelled source windows (`macro_f1`), and the value says which.

    Returns:
        [{"model", "target", "value", "ok"}]; ok is None when the value was not measured.
    """
    head = head or FinetuneConfig().head
    sel = [r for r in rows if r["head"] == head and r["encoder"] != "none"]
    torch_row = next((r for r in sel if r["backend"] == "pytorch"), None)
    out = []
    for r in sel:
        if r["backend"] == "pytorch":
            continue
        model = _model_name(r)
        out += [{"model": model, "target": f"<= {TARGET_INT8_BYTES / 1e6:g} MB",
                 "value": f"{r['size_bytes'] / 1e6:.3f} MB", "ok": r["size_bytes"] <= TARGET_INT8_BYTES},
                {"model": model, "target": f">= {TARGET_SPEEDUP:g}x faster than PyTorch eager (batch 1, 1 thread)",
                 "value": f"{r['speedup_vs_pytorch']:.2f}x", "ok": r["speedup_vs_pytorch"] >= TARGET_SPEEDUP}]
        key = "target_macro_f1" if "target_macro_f1" in r else "macro_f1"
        where = "unseen target" if key == "target_macro_f1" else "source validation windows, not an unseen target"
        if torch_row is not None and key in r and key in torch_row:
            drop = torch_row[key] - r[key]
            out.append({"model": model, "target": "macro-F1 within 1 point of PyTorch",
                        "value": f"{100 * torch_row[key]:.1f} -> {100 * r[key]:.1f} ({where})",
                        "ok": drop <= TARGET_F1_DROP})
        else:
            out.append({"model": model, "target": "macro-F1 within 1 point of PyTorch",
                        "value": "not measured (needs --run, and --target for an unseen target)", "ok": None})
    return out


def _model_name(r: dict[str, Any]) -> str:
    """"onnx-int8 (static, export default)": the backend, the int8 mode, and whether `crosshar export` chose it."""
    mode = ", ".join(([r["quantization"]] if r.get("quantization") else []) + (["export default"] if r.get("export_default") else []))
    return r["backend"] + (f" ({mode})" if mode else "")


def environment() -> dict[str, str]:
    import onnxruntime

    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "threads": "1"}


def to_markdown(rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> str:
    """The rows and targets as markdown tables."""
    lines = ["| head | encoder | backend | size (kB) | latency b1 (ms) | speed-up | throughput b64 (win/s) "
             "| peak RSS (MB) | model RSS (MB) | macro-F1 | target macro-F1 |", "|" + "---|" * 11]
    for r in rows:
        lines.append("| " + " | ".join(row_cells(r)) + " |")
    if targets:
        lines += ["", "| model | target | value | met |", "|---|---|---|---|"]
        lines += [f"| {t['model']} | {t['target']} | {t['value']} | {_ok(t['ok'])} |" for t in targets]
    return "\n".join(lines) + "\n"


def row_cells(r: dict[str, Any]) -> list[str]:
    """A result row as the table cells of to_markdown (and of `crosshar bench`)."""
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    def pct(v):
        return f(None if v is None else 100 * v, ".1f")

    return [r["head"], r["encoder"], _model_name(r),
            f(None if r["size_bytes"] is None else r["size_bytes"] / 1e3, ".1f"), f(r["latency_ms"], ".3f"),
            f(r["speedup_vs_pytorch"], ".1f") + "x", f(r["throughput"], ".0f"), f(r["rss_mb"], ".1f"),
            f(r["model_rss_mb"], ".1f"), pct(r.get("macro_f1")), pct(r.get("target_macro_f1"))]


def _ok(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def result_paths(out: str | Path) -> list[Path]:
    """The files write_results writes for `out`: `out` itself (.json or .md), else `<out>.json` and `<out>.md`."""
    out = Path(out)
    if out.suffix in (".json", ".md"):
        return [out]
    return [out.with_name(out.name + ".json"), out.with_name(out.name + ".md")]


def write_results(out: str | Path, rows: list[dict[str, Any]], targets: list[dict[str, Any]],
                  command: str | None = None) -> list[Path]:
    """`out` as JSON (.json) or markdown (.md); any other suffix writes both `<out>.json` and `<out>.md`.

    `command`: the command line that regenerates the files, written into both."""
    from crosshar.atomic import atomic_write_bytes, atomic_write_json

    doc = {"command": command, "rows": rows, "targets": targets, "environment": environment(),
           "method": __doc__.split("\n\n")[1].replace("\n", " ")}
    paths = []
    for p in result_paths(out):
        if p.suffix == ".json":
            atomic_write_json(p, doc)
        else:
            head = f"Regenerate: `{command}`\n\n" if command else ""
            atomic_write_bytes(p, (head + to_markdown(rows, targets)).encode())
        paths.append(p)
    return paths


__all__ = ["run_bench", "bench_model", "bench_meta", "check_targets", "to_markdown", "row_cells", "write_results",
           "result_paths",
           "environment", "TARGET_INT8_BYTES", "TARGET_SPEEDUP", "TARGET_F1_DROP"]
