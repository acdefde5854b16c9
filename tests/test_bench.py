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
    scored = []

    def target_f1(probs):  # stands in for the unseen target: every model is scored through it
        scored.append(probs(X[:4]).shape)
        return 0.5

    rows = bench.run_bench(["linear"], encoder=TINY, windows=X, labels=y, target_f1=target_f1, repeats=3, batch=4,
                           memory=False)
    assert [r["backend"] for r in rows] == ["pytorch", "onnx-fp32", "onnx-int8", "onnx-int8", "onnx-int8"]
    assert [r.get("quantization") for r in rows[2:]] == ["weights", "static", "dynamic"]
    default = [r for r in rows[2:] if r["export_default"]]  # the one `crosshar export` writes (its auto choice)
    assert len(default) == 1 and bench._model_name(default[0]).endswith(", export default)")
    assert scored == [(4, 4)] * 5 and all(r["target_macro_f1"] == 0.5 for r in rows)
    assert all(r["latency_ms"] > 0 and r["throughput"] > 0 and r["head"] == "linear" for r in rows)
    assert rows[0]["speedup_vs_pytorch"] == 1.0 and rows[0]["size_bytes"] is None
    assert all(r["size_bytes"] > 0 for r in rows[1:])
    assert all(0 <= r["macro_f1"] <= 1 for r in rows)  # labelled windows given: F1 for every backend
    targets = bench.check_targets(rows, "linear")
    assert len(targets) == 3 * 4 and all(t["ok"] in (True, False) for t in targets)  # 3 targets x 4 ONNX models
    for r, (size, speed, f1) in zip(rows[1:], zip(*[iter(targets)] * 3)):
        assert size["model"] == speed["model"] == f1["model"] == bench._model_name(r)
        assert size["ok"] == (r["size_bytes"] <= bench.TARGET_INT8_BYTES)
        assert speed["ok"] == (r["speedup_vs_pytorch"] >= bench.TARGET_SPEEDUP)
        assert f1["ok"] and "unseen target" in f1["value"]  # 0.5 everywhere: no drop
    md = bench.to_markdown(rows, targets)
    assert md.count("\n| linear |") == 5 and "| model | target | value | met |" in md
    paths = bench.write_results(tmp_path / "bench", rows, targets)
    assert [p.name for p in paths] == ["bench.json", "bench.md"]
    doc = json.loads(paths[0].read_text())
    assert len(doc["rows"]) == 5 and "onnxruntime" in doc["environment"]


def test_the_f1_target_compares_with_pytorch():
    rows = [{"head": "din", "encoder": "default", "backend": b, "quantization": q, "size_bytes": 1, "speedup_vs_pytorch": 3,
             "macro_f1": f1} for b, q, f1 in (("pytorch", None, 0.80), ("onnx-fp32", None, 0.80),
                                               ("onnx-int8", "static", 0.785))]
    f1 = [t for t in bench.check_targets(rows, "din") if t["target"].startswith("macro-F1")]
    assert [t["ok"] for t in f1] == [True, False] and "not an unseen target" in f1[0]["value"]


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
    assert "int8 weights" in res.output and "int8 static" in res.output and "int8 dynamic" in res.output
    assert "deployment targets" in res.output
    md = (tmp_path / "b.md").read_text()
    assert md.startswith("| head |") and md.count("onnx-int8") == 3  # linear is not the default head: no targets
    res = CliRunner().invoke(app, ["bench", "--head", "nope", "--no-memory"])
    assert res.exit_code == 2 and "unknown head 'nope'" in res.output
    res = CliRunner().invoke(app, ["bench", "--target", "motion", "--no-memory"])
    assert res.exit_code == 2 and "--target needs --run" in res.output
    res = CliRunner().invoke(app, ["bench", "--cadence-views", "3", "--no-memory"])
    assert res.exit_code == 2 and "--cadence-views needs --run" in res.output


def test_a_run_is_benchmarked_with_the_cadence_views_it_is_given(tmp_path, monkeypatch):
    """--cadence-views: every backend times (and the export writes) the model with its views in the graph."""
    from crosshar.models import classifier

    meta = bench.bench_meta("linear", None) | {"augment": {"cadence": 0.1}}
    classifier.save(tmp_path / "run" / "best.pt", classifier.build(meta), meta)
    seen = []
    real = bench.bench_model
    monkeypatch.setattr(bench, "bench_model", lambda model, meta, *a, **k: seen.append((model.cadence, meta)) or real(model, meta, *a, **k))
    rows = bench.run_bench(run=tmp_path / "run", cadence_views=3, repeats=3, batch=2, memory=False)
    (cadence, used), = seen
    assert cadence.k == 3 and used["cadence_views"] == 3 and {r["backend"] for r in rows} >= {"pytorch", "onnx-fp32"}


def test_an_out_that_cannot_be_written_is_refused_before_benchmarking(tmp_path, monkeypatch):
    """An --out that names a folder, or lies below a file, ended in an OSError traceback after the whole benchmark."""
    app = typer.Typer()
    app.command("bench")(bench_cmd)
    app.command("other")(lambda: None)
    ran = []
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: ran.append(1) or [])
    (tmp_path / "b.json").mkdir()
    (tmp_path / "stem.md").mkdir()
    (tmp_path / "afile").write_text("")
    for out, message in ((tmp_path / "b.json", "b.json: is a directory; --out names a file"),
                         (tmp_path / "stem", "stem.md: is a directory; --out names a file"),
                         (tmp_path / "afile" / "b", "b.json: cannot be written (--out): a file stands where a folder")):
        res = CliRunner().invoke(app, ["bench", "--head", "linear", "--no-memory", "--out", str(out)])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert res.output.startswith("error: ") and message in res.output, res.output
    assert not ran and bench.result_paths(tmp_path / "x") == [tmp_path / "x.json", tmp_path / "x.md"]
