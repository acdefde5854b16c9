"""How crosshar times a model call: thread CPU time, models interleaved (crosshar.runtime.timing)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crosshar.runtime import timing


def test_latency_is_thread_cpu_time():
    """Sleeping costs no CPU: a wall-clock timer would report it, thread CPU time does not."""
    assert timing.time_calls(lambda: time.sleep(0.02), repeats=3, warmup=0) < 0.01


def test_models_are_timed_interleaved_and_the_least_disturbed_round_kept():
    order = []
    spin = {"a": [0.02, 0.0], "b": [0.0, 0.0]}  # a is disturbed in its first round only

    def make(name):
        def fn():
            order.append(name)
            t0 = time.thread_time()
            while time.thread_time() - t0 < spin[name][0 if len(order) <= 2 * 6 else 1]:
                pass
        return fn

    a, b = timing.interleaved([make("a"), make("b")], repeats=6, rounds=2)
    assert order[:6] == ["a"] * 6 and order[6:12] == ["b"] * 6 and order[12:18] == ["a"] * 6  # round by round
    assert a < 0.01  # the disturbed first round of a is not the one reported


def _exported(tmp_path, window=None):
    """A small random classifier exported as fp32 and weight-only int8: (fp32 path, int8 path)."""
    import torch

    from crosshar.config import EncoderConfig, WindowConfig
    from crosshar.export import export_int8, export_model
    from crosshar.models import classifier

    meta = {"window": (window or WindowConfig()).to_dict(), "channels": ["acc_x", "acc_y", "acc_z", "gyro_x",
            "gyro_y", "gyro_z"], "classes": ["walking", "sitting"], "label_space": "crosshar4",
            "encoder": EncoderConfig(n_layers=1, d_model=16, d_ff=32, n_heads=2).to_dict(), "head": "linear",
            "head_cfg": {}, "scaling": "physical", "source": ["uci"], "metrics": {}}
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    export_model(classifier.build(meta).eval(), meta, path)
    return path, Path(export_int8(path, tmp_path / "m.int8.onnx", meta, mode="weights")["path"])


def test_crosshar_time_times_each_exported_model_on_this_cpu(tmp_path, capsys):
    """`crosshar-time a.onnx b.onnx` on the device: each model opened as the runtime opens it (its sidecar's
    quantisation), timed interleaved; a line per model with its precision, size, time and speed against the
    first."""
    fp32, int8 = _exported(tmp_path)
    rows = timing.time_models([fp32, int8], repeats=10)
    assert [r["mode"] for r in rows] == [None, "weights"] and rows[0]["vs_first"] == 1.0
    assert all(r["latency_ms"] > 0 and r["size_bytes"] == Path(r["path"]).stat().st_size for r in rows)
    assert timing.main([str(fp32), str(int8), "--repeats", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("batch 1, one thread, thread CPU time") and len(out) == 3
    assert str(fp32) in out[1] and " fp32 " in out[1] and str(int8) in out[2] and "int8 weights" in out[2]


@pytest.mark.parametrize("args, message", [
    (["nosuch.onnx"], "model file not found"),
    (["{fp32}", "--repeats", "0"], "--repeats must be in 5..100000, got 0"),
    (["{fp32}", "{other}"], "the models take windows of different shapes"),
])
def test_crosshar_time_errors_are_one_line(tmp_path, capsys, args, message):
    from crosshar.config import WindowConfig

    fp32, _ = _exported(tmp_path)
    other, _ = _exported(tmp_path / "other", WindowConfig(window=100))
    assert timing.main([a.format(fp32=fp32, other=other) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crosshar-time: error: ") and message in err and len(err.strip().splitlines()) == 1
