"""`crosshar export` and `crosshar bench`: typer command functions registered on the root app."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from crosshar.clitools import CadenceViews, DataDir, console, err_console, friendly
from crosshar.errors import CrossharError


def _resolve_run(run: Path | None) -> Path:
    if run is not None:
        return run
    from crosshar.train.runs import latest_run

    found = latest_run("finetune")
    if found is None:
        raise CrossharError("no finetuned run found under runs/finetune; pass --run PATH (a best.pt or its run folder)")
    return found


def _check_writable(paths: list[Path], option: str) -> None:
    """Refuse, before any work, an output that cannot be written, naming it: a folder in its place, or a place where
    no file can be created (read-only, /proc, a file where a folder should be). The atomic write, at the end of the
    work, raised a bare OSError there, a traceback. Its folder is created, as the write would create it."""
    for p in paths:
        if p.is_dir():
            raise CrossharError(f"{p}: is a directory; {option} names a file")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=p.parent).close()
        except (FileExistsError, NotADirectoryError):
            raise CrossharError(f"{p}: cannot be written ({option}): a file stands where a folder of its path "
                                "should be") from None
        except OSError as e:
            raise CrossharError(f"{p}: cannot be written ({option}): {e.strerror or e}") from None


def _check_data(meta: dict[str, Any], data_dir: Path | None, run: Path, random_windows: bool,
                max_windows: int) -> dict[str, Any] | None:
    """Source validation / calibration windows, or None (random windows) with a note why."""
    from crosshar.export import source_windows

    if random_windows:
        console.print("[yellow]checking on random physical-looking windows (--random-windows)[/]")
        return None
    try:
        data = source_windows(meta, data_dir, run, max_windows=max_windows)
    except CrossharError as e:
        console.print(f"[yellow]source windows unavailable ({e}); checking on random physical-looking windows[/]",
                      highlight=False, soft_wrap=True)
        return None
    console.print(f"checking on {data['note']}", highlight=False, soft_wrap=True)
    return data


def _target_table(meta: dict[str, Any], target: str, data_dir: Path | None, models: list[tuple[str, str]]) -> dict:
    """Accuracy and macro-F1 of the exported models on an unseen target (same label mapping as `crosshar cross`)."""
    from crosshar.inference import score
    from crosshar.export import ort_probabilities, ort_session
    from crosshar.runtime.session import quantization_mode
    from crosshar.runtime.sidecar import read_sidecar

    tws = _target_windows(meta, target, data_dir)
    t = Table(title=f"on the unseen target {target} ({len(tws):,} windows)", title_justify="left")
    for col in ("model", "accuracy", "macro-F1"):
        t.add_column(col, justify="left" if col == "model" else "right")
    out = {}
    for name, path in models:
        sess = ort_session(path, quantization=quantization_mode(read_sidecar(path)))
        rep, *_ = score(None, meta, tws, logits_fn=lambda X, s=sess: ort_probabilities(s, X))
        out[name] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "classes": rep["classes"]}
        t.add_row(name, _pct(rep["accuracy"]), _pct(rep["macro_f1"]))
    console.print(t)
    return out


def _target_windows(meta: dict[str, Any], target: str, data_dir: Path | None):
    """Every window of an unseen target (never one of the model's sources), as `crosshar cross` reads it."""
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare
    from crosshar import guard

    guard.check_names(list(meta["source"]), target)
    return prepare(target, data_dir, WindowConfig.from_dict(meta["window"]))


def _target_scorer(meta: dict[str, Any], target: str, data_dir: Path | None):
    """probability function -> macro-F1 on every window of an unseen target (as `crosshar cross` scores)."""
    from crosshar.inference import score

    tws = _target_windows(meta, target, data_dir)
    console.print(f"scoring every model on the unseen target {target} ({len(tws):,} windows)", highlight=False)
    return lambda probs: score(None, meta, tws, logits_fn=probs)[0]["macro_f1"]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


@friendly
def export_cmd(
    run: Annotated[Optional[list[Path]], typer.Option("--run", help="Finetuned checkpoint (best.pt) or its run folder; default: the latest finetune run. Repeat to export several runs as one model averaging their probabilities (same source and classes).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output .onnx file (default: model.onnx in the (first) run folder, ensemble.onnx for several runs). The sidecar is written next to it as .json.")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also write an int8 model <out>.int8.onnx (the one to deploy when it is smaller and as fast as fp32).")] = True,
    int8_mode: Annotated[Optional[str], typer.Option("--int8-mode", help="'auto' (the default: each of the others written, checked and timed on this CPU; the fastest that keeps the float model's answers is kept; name a mode for the same file every time), 'weights' (int8 weights, float activations: smallest, float speed), 'static' (calibrated QDQ; recurrent heads fall back to dynamic) or 'dynamic'.")] = None,
    data_dir: DataDir = None,
    random_windows: Annotated[bool, typer.Option("--random-windows", help="Check on random physical-looking windows instead of the source validation windows.")] = False,
    max_windows: Annotated[int, typer.Option("--max-windows", help="Most validation windows used for the checks.")] = 512,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset, 14..20 (attention needs 14; 20 is the newest the exporter supports).")] = 17,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write the export report as JSON here.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-td", help="Also score fp32 and int8 on every window of this unseen target dataset.")] = None,
    cadence_views: CadenceViews = None,
) -> None:
    """Export a finetuned classifier to ONNX (raw windows in, probabilities out) and check it against PyTorch."""
    from crosshar.atomic import atomic_write_json
    from crosshar.export import export_model
    from crosshar.export.checks import check_options
    from crosshar.models import classifier

    # before any model is loaded or file written: opset, window count, int8 mode, the target's name
    if int8_mode is not None and not int8:  # the mode of an int8 model that is not written: a typo, never ignored
        raise CrossharError(f"--int8-mode {int8_mode} with --no-int8: no int8 model is written; drop one of the two")
    from crosshar.export.quantize import INT8_MODES

    int8_mode = int8_mode or INT8_MODES[0]
    check_options(opset=opset, max_windows=max_windows, int8_mode=int8_mode, target=target, data_dir=data_dir)
    runs = [_resolve_run(r) for r in run] if run else [_resolve_run(None)]
    if out is None:
        out = (runs[0] if runs[0].is_dir() else runs[0].parent) / ("model.onnx" if len(runs) == 1 else "ensemble.onnx")
    if out.suffix != ".onnx":
        raise CrossharError(f"--out must end in .onnx, got {out}")
    q_out = out.with_name(out.stem + ".int8.onnx")
    _check_writable([out, out.with_suffix(".json")] + ([q_out, q_out.with_suffix(".json")] if int8 else []), "--out")
    _check_writable([report] if report is not None else [], "--report")
    model, meta, _ = classifier.load_runs(runs)
    if target is not None:  # a target the model must not have seen: refused before anything is written
        from crosshar import guard

        guard.check_run(meta, target)
    if cadence_views is not None:
        meta = classifier.with_cadence_views(model, meta, cadence_views)
    run = runs[0]
    data = _check_data(meta, data_dir, run, random_windows, max_windows)
    rep = export_model(
        model, meta, out, int8=int8, calib_windows=None if data is None else data["calib"], opset=opset,
        int8_mode=int8_mode, windows=None if data is None else data["windows"],
        labels=None if data is None else data["labels"], windows_source="source validation",
        exported_from=", ".join(str(r) for r in runs),
    )
    f, q = rep["fp32"], rep["int8"]
    t = Table(title=f"{run}: checked on {f['n_windows']} {f['windows']} windows", title_justify="left")
    for col in ("model", "size (kB)", "compared with", "max |dp|", "top-1 agree", "accuracy", "macro-F1"):
        t.add_column(col, justify="left" if col in ("model", "compared with") else "right")
    fm = f.get("metrics", {})
    t.add_row("fp32", f"{f['size_bytes'] / 1e3:.1f}", f"PyTorch (tol {f['tolerance']:g})",
              f"{f['vs_torch_max_abs_diff']:.1e}", f"{100 * f['vs_torch_top1_agreement']:.1f}%",
              _pct(fm.get("accuracy")), _pct(fm.get("macro_f1")))
    if q is not None:
        qm = q.get("metrics", {})
        t.add_row(f"int8 {q['mode']}", f"{q['size_bytes'] / 1e3:.1f}", "fp32", f"{q['max_abs_diff_vs_fp32']:.3f}",
                  f"{100 * q['top1_agreement_vs_fp32']:.1f}%", _pct(qm.get("accuracy")), _pct(qm.get("macro_f1")))
    console.print(t)
    for r in (f, q):
        if r is not None:
            console.print(f"wrote {r['path']} + {Path(r['sidecar']).name}", highlight=False, soft_wrap=True)
    if q is not None and q.get("reason"):
        console.print(f"int8: {q['mode']} quantisation: {q['reason']}", highlight=False, soft_wrap=True)
    if q is not None and q.get("auto"):
        a = q["auto"]
        skipped = "".join(f"; {m} not tried: {why}" for m, why in a["skipped"].items())
        console.print(f"int8 auto: {a['chosen']}, {a['reason']}{skipped}", highlight=False, soft_wrap=True)
    if q is not None and q["top1_agreement_vs_fp32"] < 0.9:
        err_console.print(f"[yellow]warning:[/] the int8 model agrees with the float one on only "
                          f"{100 * q['top1_agreement_vs_fp32']:.0f}% of the windows; prefer the float model or try "
                          f"--int8-mode {'dynamic' if q['mode'] == 'static' else 'static'}")
    deploy = f
    if q is not None:
        deploy = _faster_of(meta, f, q)
    if target is not None:
        rep["target"] = _target_table(meta, target, data_dir, [("fp32", f["path"])] + ([(f"int8 {q['mode']}", q["path"])] if q else []))
    console.print(f"run it without torch: crosshar-run {deploy['path']} recording.csv", highlight=False)
    if report is not None:
        atomic_write_json(report, rep)


def _faster_of(meta: dict[str, Any], f: dict[str, Any], q: dict[str, Any]) -> dict[str, Any]:
    """Time fp32 and int8 here (one thread, CPU time) and say which one to deploy, and why: int8 only where it pays,
    that is where its file is smaller and it runs no slower; otherwise fp32 (a tiny head's int8 file can be the larger:
    the quantisation scales outweigh the bytes saved). The verdict is recorded in `q` (deploy, deploy_reason).

    A weight-only int8 model runs the float graph once loaded: within SAME_SPEED of fp32 it counts as no slower.
    """
    from crosshar.runtime.timing import ort_latency_ms
    from crosshar.config import WindowConfig
    from crosshar.export import physical_windows

    if q.get("auto"):  # timed interleaved by the automatic choice already
        f["latency_ms"] = q["auto"]["fp32_latency_ms"]
        q["latency_ms"] = q["auto"]["candidates"][q["mode"]]["latency_ms"]
    else:
        w = WindowConfig.from_dict(meta["window"])
        x1 = physical_windows(1, w.window, w.n_channels, w.rate_hz, seed=3)
        f["latency_ms"] = ort_latency_ms(f["path"], x1)
        q["latency_ms"] = ort_latency_ms(q["path"], x1, quantization=q["mode"])
    slack = SAME_SPEED if q["mode"] == "weights" else 1.0
    size = f"{q['size_bytes'] / 1e3:.1f} kB against {f['size_bytes'] / 1e3:.1f} kB for fp32"
    speed = (f"{q['latency_ms']:.2f} ms per window against {f['latency_ms']:.2f} ms for fp32 "
             "(batch 1, one thread, CPU time)")
    against = []
    if q["size_bytes"] >= f["size_bytes"]:
        against.append(f"its file is not smaller ({size})")
    if q["latency_ms"] >= slack * f["latency_ms"]:
        against.append(f"it runs {'slower' if q['latency_ms'] > f['latency_ms'] else 'no faster'} on this CPU ({speed})")
    if against:
        q["deploy"], q["deploy_reason"] = "fp32", "int8 does not pay: " + "; ".join(against)
        console.print(f"[yellow]deploy the fp32 model[/]: {q['deploy_reason']}", highlight=False, soft_wrap=True)
        return f
    q["deploy"], q["deploy_reason"] = "int8", f"smaller ({size}) and no slower ({speed})"
    console.print(f"deploy int8 ({q['mode']}): {q['deploy_reason']}", highlight=False, soft_wrap=True)
    return q


SAME_SPEED = 1.15  # a weight-only int8 model within 15 % of fp32's latency counts as equally fast (timing noise)


@friendly
def bench_cmd(
    head: Annotated[Optional[list[str]], typer.Option("--head", help="Head to benchmark (repeat the option; default: every registered head).")] = None,
    raw: Annotated[bool, typer.Option("--raw/--no-raw", help="Also benchmark each head directly on raw windows (no encoder).")] = False,
    encoder_config: Annotated[Optional[Path], typer.Option("--encoder-config", help="Encoder TOML (default: configs/encoder.toml).")] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="Benchmark this finetuned checkpoint or run folder instead; adds macro-F1 float vs int8 on its source validation windows.")] = None,
    data_dir: DataDir = None,
    repeats: Annotated[int, typer.Option("--repeats", min=3, help="Timed batch-1 calls per backend (the median is reported).")] = 50,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size of the throughput measurement.")] = 64,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Measure peak RSS of the runtime in a fresh process per ONNX model.")] = True,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the results: FILE.json, FILE.md, or a stem for both.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-td", help="With --run: macro-F1 of every model on every window of this unseen target dataset.")] = None,
    cadence_views: CadenceViews = None,
) -> None:
    """Size, single-thread latency, throughput and memory: PyTorch eager vs ONNX fp32 vs ONNX int8."""
    from crosshar.tools import bench
    from crosshar.config import load
    from crosshar.models import classifier

    windows = labels = calib = target_f1 = None
    if target is not None and run is None:
        raise CrossharError("--target needs --run (a finetuned model to score on the target)")
    if cadence_views is not None and run is None:
        raise CrossharError("--cadence-views needs --run (a finetuned model whose cadence range the views span)")
    if out is not None:  # before minutes of benchmarking
        _check_writable(bench.result_paths(out), "--out")
    if run is not None:
        _, meta = classifier.load(run)
        data = _check_data(meta, data_dir, run, False, 512)
        if data is not None:
            windows, labels, calib = data["windows"], data["labels"], data["calib"]
        if target is not None:
            target_f1 = _target_scorer(meta, target, data_dir)
    enc = load("encoder", encoder_config)
    with console.status("benchmarking...") as status:
        rows = bench.run_bench(head or None, encoder=enc, raw=raw, run=run, cadence_views=cadence_views, windows=windows, labels=labels,
                               calib_windows=calib, target_f1=target_f1, repeats=repeats, batch=batch, memory=memory,
                               log=lambda s: status.update(s))
    t = Table(title=f"one thread: latency per window at batch 1 (median), throughput at batch {batch}, "
                    "peak RSS of a fresh numpy + onnxruntime process", title_justify="left")
    for col in ("head", "encoder", "backend", "kB", "ms b1", "speed-up", "win/s", "RSS MB", "F1", "target F1"):
        left = col in ("head", "encoder", "backend")
        t.add_column(col, justify="left" if left else "right", no_wrap=left)
    for r in rows:
        c = bench.row_cells(r)
        backend = {"pytorch": "torch", "onnx-fp32": "fp32"}.get(r["backend"], f"int8 {r.get('quantization', '')}")
        t.add_row(c[0], c[1], backend, c[3], c[4], c[5], c[6], c[7], c[9], c[10])
    console.print(t)
    targets = bench.check_targets(rows, None if run is None else rows[0]["head"])
    if not targets:
        console.print("deployment targets: judged for the default head on an encoder; not benchmarked here",
                      highlight=False)
    else:
        judged = rows[0]["head"] if run is not None else "default encoder + default head"
        tt = Table(title=f"deployment targets ({judged})", title_justify="left")
        for col in ("model", "target", "value", "met"):
            tt.add_column(col)
        for x in targets:
            mark = {True: "[green]yes[/]", False: "[red]no[/]", None: "n/a"}[x["ok"]]
            tt.add_row(x["model"], x["target"], x["value"], mark)
        console.print(tt)
    env = bench.environment()
    console.print(f"{env['processor']}, Python {env['python']}, torch {env['torch']}, onnxruntime {env['onnxruntime']}",
                  highlight=False)
    if out is not None:
        import shlex
        import sys

        command = "crosshar bench " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else None
        for p in bench.write_results(out, rows, targets, command):
            console.print(f"wrote {p}", highlight=False)


__all__ = ["export_cmd", "bench_cmd"]
