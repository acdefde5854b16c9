"""The deployment benchmark, on a tiny model: rows, targets, files and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import typer
from typer.testing import CliRunner

from crosshar.tools import bench
from crosshar.tools.cli import bench_cmd
from crosshar.config import EncoderConfig
from crosshar.export import physical_windows

TINY = EncoderConfig(n_layers=1, d_model=16, d_ff=32, n_heads=2)


def test_rows_cover_every_backend_and_targets_are_judged(tmp_path):
    X = physical_windows(16, seed=0)
    y = np.arange(16) % 4
    rows = bench.run_bench(["linear"], encoder=TINY, windows=X, labels=y, repeats=3, batch=4, memory=False)
    assert [r["backend"] for r in rows] == ["pytorch", "onnx-fp32", "onnx-int8", "onnx-int8"]
    assert [r.get("quantization") for r in rows[2:]] == ["static", "dynamic"]
    assert all(r["latency_ms"] > 0 and r["throughput"] > 0 and r["head"] == "linear" for r in rows)
    assert rows[0]["speedup_vs_pytorch"] == 1.0 and rows[0]["size_bytes"] is None
    assert all(r["size_bytes"] > 0 for r in rows[1:])
    assert all(0 <= r["macro_f1"] <= 1 for r in rows)  # labelled windows given: F1 for every backend
    targets = bench.check_targets(rows, "linear")
    assert len(targets) == 5 and all(t["ok"] in (True, False) for t in targets)
    fastest_int8 = min(rows[2:], key=lambda r: r["latency_ms"])  # the targets judge the faster int8 model
    assert targets[0]["ok"] == (rows[1]["speedup_vs_pytorch"] >= bench.TARGET_SPEEDUP)  # fp32
    assert targets[1]["ok"] == (fastest_int8["latency_ms"] < rows[1]["latency_ms"])  # does int8 pay here?
    assert targets[2]["ok"] == (fastest_int8["size_bytes"] <= bench.TARGET_INT8_BYTES)
    assert targets[3]["ok"] == (fastest_int8["speedup_vs_pytorch"] >= bench.TARGET_SPEEDUP)
    md = bench.to_markdown(rows, targets)
    assert md.count("\n| linear |") == 4 and "| target | value | met |" in md
    paths = bench.write_results(tmp_path / "bench", rows, targets)
    assert [p.name for p in paths] == ["bench.json", "bench.md"]
    doc = json.loads(paths[0].read_text())
    assert len(doc["rows"]) == 4 and "onnxruntime" in doc["environment"]


def test_bench_times_the_graph_export_writes_for_the_default_pipeline():
    """Without --run, every head gets the input pipeline finetuning gives it: the default encoder's
    (gravity frame), and for a head on raw windows the configured default too (`--no-pretrain`)."""
    from crosshar.models import classifier
    from crosshar.models.scaling import InputPipeline
    from crosshar.train.finetune import FinetuneJob, build_model
    from synthdata import AUGMENT, TINY_FINETUNE, WINDOW

    enc = EncoderConfig()
    assert classifier.build(bench.bench_meta("linear", enc)).scaler.frame == enc.input_frame == "gravity"
    raw = classifier.build(bench.bench_meta("linear", None)).scaler
    assert (raw.mode, raw.frame) == (InputPipeline.default().scaling, InputPipeline.default().frame) == ("physical", "gravity")
    _, meta = build_model(FinetuneJob(("uci",), WINDOW, TINY_FINETUNE.replace(head="linear"), AUGMENT, ("walking", "sitting")))
    assert InputPipeline.of_meta(meta) == InputPipeline.of_meta(bench.bench_meta("linear", None))


def test_latency_is_thread_cpu_time(monkeypatch):
    """Sleeping costs no CPU: a wall-clock timer would report it, thread CPU time does not."""
    import time

    assert bench._time_calls(lambda: time.sleep(0.02), repeats=3, warmup=0) < 0.01


def test_memory_is_measured_in_a_fresh_runtime_process(tmp_path):
    from crosshar.export import export_model
    from crosshar.models import classifier

    meta = bench.bench_meta("linear", TINY)
    export_model(classifier.build(meta), meta, tmp_path / "m.onnx")
    rss, model_rss = bench._memory(tmp_path / "m.onnx", 120, 6)
    assert rss is not None and 10 < rss < 2000  # MB: numpy + onnxruntime, not this torch process
    assert 0 <= model_rss < rss


def test_bench_command(tmp_path):
    (tmp_path / "enc.toml").write_text("d_model = 16\nd_ff = 32\nn_heads = 2\nn_layers = 1\n")
    app = typer.Typer()
    app.command("bench")(bench_cmd)
    app.command("other")(lambda: None)
    res = CliRunner().invoke(app, ["bench", "--head", "linear", "--encoder-config", str(tmp_path / "enc.toml"),
                                   "--repeats", "3", "--batch", "2", "--no-memory", "--out", str(tmp_path / "b.md")])
    assert res.exit_code == 0, res.output
    assert "int8 static" in res.output and "int8 dynamic" in res.output and "deployment targets" in res.output
    md = (tmp_path / "b.md").read_text()
    assert md.startswith("| head |") and md.count("onnx-int8") == 2
    res = CliRunner().invoke(app, ["bench", "--head", "nope", "--no-memory"])
    assert res.exit_code == 2 and "unknown head 'nope'" in res.output
