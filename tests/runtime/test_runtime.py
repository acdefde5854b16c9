"""The torch-free runtime: same labels as PyTorch, honest resampling, clear messages for bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crosshar.config import EncoderConfig, WindowConfig
from crosshar.data.windows import resample
from crosshar.errors import DataError
from crosshar.export import export_int8, export_model
from crosshar.models import classifier
from crosshar.runtime.cli import main
from crosshar.runtime.recognizer import Activity, Notice, Recognizer, RunningZScore, Smoother
from crosshar.runtime.resample import StreamResampler

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
CLASSES = ["walking", "upstairs", "downstairs", "sitting&standing"]
HEADER = "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"


def activity_windows(n: int, seed: int) -> np.ndarray:
    """(n, 120, 6) windows at 20 Hz: gravity on a class-specific axis plus sinusoids plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(120) / 20.0
    f = rng.uniform(0.0, 3.0, (n, 1, 1))
    x = rng.uniform(0, 4, (n, 1, 6)) * np.sin(2 * np.pi * f * t[None, :, None] + rng.uniform(0, 6.3, (n, 1, 6)))
    x[..., :3] += 9.81 * np.eye(3)[rng.integers(0, 3, n)][:, None, :]
    return (x + rng.normal(0, 0.1, x.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(torch model, exported .onnx path) of a small random classifier at 20 Hz, windows of 120."""
    torch.manual_seed(0)
    m = classifier.build(META).eval()
    path = tmp_path_factory.mktemp("model") / "har.onnx"
    export_model(m, META, path)
    return m, path


META = {"window": WindowConfig().to_dict(), "channels": CHANNELS, "classes": CLASSES, "label_space": "crosshar4",
        "encoder": EncoderConfig(n_layers=1, d_model=24, d_ff=48, n_heads=2).to_dict(), "head": "linear",
        "head_cfg": {}, "scaling": "physical", "source": ["uci"], "metrics": {}}


def write_csv(path: Path, t: np.ndarray, X: np.ndarray, header: bool = True, extra: dict[int, str] | None = None) -> Path:
    """One sample per line, full float precision; `extra` inserts raw lines before sample i."""
    lines = [HEADER] if header else []
    for i, (ti, row) in enumerate(zip(t, X)):
        if extra and i in extra:
            lines.append(extra[i])
        lines.append(",".join(repr(float(v)) for v in (ti, *row)))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def activities(stdout: str) -> list[tuple[float, str, float]]:
    """Parse `12.00s walking 0.93` lines (gap lines are skipped)."""
    rows = []
    for line in stdout.splitlines():
        t, label, *rest = line.split()
        if label != "gap:":
            rows.append((float(t.rstrip("s")), label, float(rest[-1])))
    return rows


def test_labels_match_pytorch_on_the_same_windows(tmp_path, capsys, model):
    m, path = model
    X = activity_windows(6, seed=1)
    with torch.no_grad():
        p_torch = torch.softmax(m(torch.from_numpy(X)), -1).numpy()
    sig = X.reshape(-1, 6)  # consecutive windows = one continuous recording at the model's 20 Hz
    t = 100.0 + np.arange(len(sig)) / 20.0
    csv = write_csv(tmp_path / "rec.csv", t, sig)
    rc, out, err = run_cli(capsys, path, csv)  # hop = window (the sidecar's stride), smoothing off
    assert rc == 0, err
    got = activities(out)
    assert [g[1] for g in got] == [CLASSES[k] for k in p_torch.argmax(1)]
    np.testing.assert_allclose([g[0] for g in got], 100.0 + (np.arange(6) * 120 + 119) / 20.0)  # window ends
    np.testing.assert_allclose([g[2] for g in got], p_torch.max(1), atol=0.006)  # printed with 2 decimals
    # the library gives the same, with full probabilities
    rec = Recognizer(path)
    evs = [e for e in rec.feed_many(t, sig) + rec.flush() if isinstance(e, Activity)]
    np.testing.assert_allclose([e.probs for e in evs], p_torch, atol=1e-5)


def test_jsonl_hop_and_stdin(tmp_path, capsys, monkeypatch, model):
    _, path = model
    sig = activity_windows(2, seed=2).reshape(-1, 6)  # 240 samples
    csv = write_csv(tmp_path / "rec.csv", np.arange(240) / 20.0, sig, header=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(csv.read_text()))
    rc, out, _ = run_cli(capsys, path, "-", "--format", "jsonl", "--hop-seconds", "3")
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["t"] for r in rows] == [5.95, 8.95, 11.95]  # first full window, then every 60 samples
    assert all(r["label"] in CLASSES and 0 < r["prob"] <= 1 for r in rows)


def test_units_sign_and_column_order_are_converted(tmp_path, capsys, model):
    _, path = model
    sig = activity_windows(2, seed=3).reshape(-1, 6)
    t = np.arange(len(sig)) / 20.0
    _, ref, _ = run_cli(capsys, path, write_csv(tmp_path / "a.csv", t, sig))
    ios = sig.copy()
    ios[:, :3] = -ios[:, :3] / 9.80665  # CoreMotion: g, opposite sign
    ios = ios[:, [3, 4, 5, 0, 1, 2]]  # gyro columns first, named in the header
    lines = ["gyro_x,gyro_y,gyro_z,acc_x,acc_y,acc_z,t"] + [
        ",".join(repr(float(v)) for v in (*row, ti)) for ti, row in zip(t, ios)]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    _, out, _ = run_cli(capsys, path, tmp_path / "b.csv", "--units", "g", "--sign", "ios")
    assert activities(out) == activities(ref) and len(activities(ref)) == 2


def test_gyroscope_in_degrees_per_second(tmp_path, capsys, model):
    """--gyro-units deg/s reads a logger's degrees as the radians the model was trained on: the same output, and
    the probabilities printed to 2 decimals equal; read as rad/s they would be 57x too large."""
    _, path = model
    sig = activity_windows(2, seed=4).reshape(-1, 6)
    t = np.arange(len(sig)) / 20.0
    _, ref, _ = run_cli(capsys, path, write_csv(tmp_path / "a.csv", t, sig))
    deg = sig.copy()
    deg[:, 3:] = np.degrees(deg[:, 3:])
    rc, out, err = run_cli(capsys, path, write_csv(tmp_path / "b.csv", t, deg), "--gyro-units", "deg/s")
    assert rc == 0, err
    assert activities(out) == activities(ref) and len(activities(ref)) == 2
    _, wrong, _ = run_cli(capsys, path, tmp_path / "b.csv")
    assert activities(wrong) != activities(ref)
    with pytest.raises(ValueError, match="gyro_units must be"):
        Recognizer(path, gyro_units="rpm")


def test_bad_lines_are_named_and_skipped_or_fatal_with_strict(tmp_path, capsys, model):
    _, path = model
    sig = activity_windows(1, seed=4).reshape(-1, 6)
    t = np.arange(120) / 20.0
    bad = {3: "0.11,1,2,abc,4,5,6", 6: "0.31,1,2,3", 9: "0.46,1,2,3,nan,5,6", 12: "0.2,1,2,3,4,5,6"}
    csv = write_csv(tmp_path / "bad.csv", t, sig, extra=bad)  # header = line 1, so bad lines are 5, 9, 13, 17
    rc, out, err = run_cli(capsys, path, csv)
    assert rc == 0 and len(activities(out)) == 1  # the good samples still make a window
    assert "line 5: field 4 ('abc') is not a number" in err
    assert "line 9: expected 7 comma-separated fields" in err
    assert "line 13: field 5 is 'nan'" in err
    assert "line 17: timestamp 0.2 s is not after the previous one" in err
    assert "4 bad line(s) skipped" in err
    rc, out, err = run_cli(capsys, path, csv, "--strict")
    assert rc == 2 and out == ""
    assert err.startswith("crosshar-run: error: ") and "bad.csv, line 5" in err and "Traceback" not in err


def test_a_gap_resets_the_buffer(tmp_path, capsys, model):
    _, path = model
    sig = activity_windows(3, seed=5).reshape(-1, 6)
    t = np.arange(360) / 20.0
    t[180:] += 3.0  # 3 s without samples after 8.95 s
    rc, out, _ = run_cli(capsys, path, write_csv(tmp_path / "gap.csv", t, sig))
    assert rc == 0
    assert "gap of 3.05 s after t = 8.95 s" in out and "buffer reset" in out
    # one window before the gap; after it the buffer refills: the next window ends 6 s after the gap
    assert [a[0] for a in activities(out)] == pytest.approx([5.95, 12.0 + 5.95])


def test_an_unusable_rate_is_refused_and_a_low_one_warned(tmp_path, capsys, model):
    _, path = model
    sig = activity_windows(1, seed=6).reshape(-1, 6)
    rc, out, err = run_cli(capsys, path, write_csv(tmp_path / "slow.csv", np.arange(120) / 8.0, sig))
    assert rc == 2 and "about 8 Hz, below half the model's 20 Hz" in err and "Traceback" not in err
    rc, out, err = run_cli(capsys, path, write_csv(tmp_path / "low.csv", np.arange(120) / 15.0, sig))
    assert rc == 0 and "about 15 Hz" in err and "upsampled" in err
    assert len(activities(out)) == 1  # 8 s at 15 Hz -> 160 grid samples -> one window


def test_timestamps_in_bursts_are_read_at_their_average_rate(model):
    """A phone that batches its samples (here 5 samples 1 ms apart every 250 ms, 20 Hz on average) was read at
    the 1 kHz of the median step: a 16-second anti-alias filter then erased the motion and every window came out
    as another class, without a word. The rate is now the mean step of the probe, and the windows come at the times
    written (the samples are placed there: a burst is not re-timed; its last one ends 0.2 s before the even ones)."""
    from crosshar.runtime.recognizer import Activity, Recognizer

    _, path = model
    sig = activity_windows(4, seed=7).reshape(-1, 6)
    even = np.arange(len(sig)) / 20.0
    burst = np.repeat(np.arange(len(sig) // 5) * 0.25, 5) + np.tile(np.arange(5) * 0.001, len(sig) // 5)
    out = {}
    for name, t in (("even", even), ("burst", burst)):
        rec = Recognizer(path)
        res = rec.feed_many(t, sig) + rec.flush()
        out[name] = [a.label for a in res if isinstance(a, Activity)]
        assert not [n for n in res if not isinstance(n, Activity)], name  # no notice: no gap, no low rate
        assert rec.rate_in == pytest.approx(20.0, rel=0.1), name
    assert len(out["even"]) == 4 and len(out["burst"]) == 3


def test_model_and_input_errors_are_one_line(tmp_path, capsys, model):
    _, path = model
    rc, _, err = run_cli(capsys, path, tmp_path / "missing.csv")
    assert rc == 2 and "input file not found" in err
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(path.read_bytes())
    rc, _, err = run_cli(capsys, lone, tmp_path / "missing.csv")
    assert rc == 2 and "no sidecar lone.json" in err
    (tmp_path / "lone.json").write_text(path.with_suffix(".json").read_text())
    lone.write_bytes(path.read_bytes() + b"\0")
    rc, _, err = run_cli(capsys, lone, tmp_path / "missing.csv")
    assert rc == 2 and "does not match its sidecar" in err


def test_a_pipe_is_read_as_an_input_file_and_a_directory_refused(tmp_path, capsys, model):
    """`crosshar-run m.onnx <(zcat x.gz)` (/dev/fd/63), a named pipe or /dev/stdin: each was refused as "input file
    not found" (not a regular file); a directory was "not found" too, now it is named as one."""
    import gzip
    import threading

    _, path = model
    csv = write_csv(tmp_path / "rec.csv", np.arange(120) / 20.0, activity_windows(1, seed=9).reshape(-1, 6))
    rc, want, err = run_cli(capsys, path, csv)
    assert rc == 0 and len(activities(want)) == 1, err
    for data in (csv.read_bytes(), gzip.compress(csv.read_bytes())):
        fifo = tmp_path / "fifo"
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)  # waits for a reader
        writer.start()
        try:
            assert run_cli(capsys, path, fifo) == (0, want, "")
        finally:
            if writer.is_alive():  # the fifo was never opened: open it here, so that the writer does not hang
                fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                writer.join(timeout=30)
                os.close(fd)
        r, w = os.pipe()  # what the shell's process substitution hands over: /dev/fd/N
        try:
            os.write(w, data)  # fits the pipe's buffer: written before the reader starts
            os.close(w)
            assert run_cli(capsys, path, f"/dev/fd/{r}") == (0, want, "")
        finally:
            os.close(r)
    rc, out, err = run_cli(capsys, path, tmp_path)
    assert (rc, out) == (2, "") and err == f"crosshar-run: error: {tmp_path}: is a directory, not a recording; " \
                                          "name a CSV file in it\n"
    rc, _, err = run_cli(capsys, path, tmp_path / "missing.csv")
    assert rc == 2 and err == f"crosshar-run: error: {tmp_path / 'missing.csv'}: input file not found\n"


def test_a_closed_stdin_is_a_one_line_error(model, capsys, monkeypatch):
    """`crosshar-run m.onnx - <&-` (sys.stdin is None) printed "error: AttributeError: 'NoneType' object has no
    attribute 'readline'"."""
    monkeypatch.setattr(sys, "stdin", None)
    assert run_cli(capsys, model[1], "-") == (2, "", "crosshar-run: error: stdin is closed: nothing to read\n")


def test_resampler_matches_scipy_and_removes_aliases():
    t = np.arange(1000) / 50.0
    slow = np.stack([9.81 + np.sin(2 * np.pi * 1.5 * t), 2 * np.cos(2 * np.pi * 2.5 * t), np.zeros_like(t)], 1)
    fast = slow + np.stack([np.sin(2 * np.pi * 15 * t)] * 3, 1)  # 15 Hz: above the 20 Hz grid's Nyquist
    r = StreamResampler(50.0, 20.0, 3)
    parts = [r.push(ti, xi) for ti, xi in zip(t, fast)] + [r.flush()]
    tg = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    assert len(y) == 400 and np.allclose(tg, np.arange(400) / 20.0)
    ref = resample(slow, 50.0, 20.0)  # the offline path the training windows took
    inner = slice(20, -20)  # away from the edges, where both pad differently
    assert np.abs(y[inner] - ref[inner]).max() < 0.05  # same signal (linear interpolation error ~0.02)
    assert np.abs(y[inner, 2]).max() < 0.01  # the 15 Hz tone (alone on z) is gone, not folded to 5 Hz


def test_resampler_passes_grid_samples_through_and_keeps_gravity():
    r = StreamResampler(20.0, 20.0, 2)
    x = np.random.default_rng(0).normal(size=(50, 2))
    out = np.concatenate([r.push(i / 20.0, xi)[1] for i, xi in enumerate(x)])
    np.testing.assert_array_equal(out, x)
    r = StreamResampler(100.0, 20.0, 1)
    y = np.concatenate([r.push(i / 100.0, [9.81])[1] for i in range(300)] + [r.flush()[1]])
    np.testing.assert_allclose(y, 9.81, rtol=1e-9)


def test_smoothing():
    p = lambda k: np.eye(3)[k] * 0.6 + 0.4 / 3  # noqa: E731
    maj = Smoother(majority=3)
    assert [maj(p(k))[0] for k in (0, 1, 0, 2, 2, 1)] == [0, 0, 0, 0, 2, 2]
    ema = Smoother(ema=0.5)
    assert [ema(p(k))[0] for k in (0, 1, 1)] == [0, 0, 1]  # one window of class 1 only ties, two win
    off = Smoother()
    assert [off(p(k))[0] for k in (0, 1, 2)] == [0, 1, 2]
    with pytest.raises(ValueError, match="not both"):
        Smoother(majority=3, ema=0.5)


def test_running_zscore_matches_batch_statistics():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(500, 6))
    z = RunningZScore(6)
    z.update(x[:200])
    z.update(x[200:])
    np.testing.assert_allclose(z(x), (x - x.mean(0)) / x.std(0), atol=1e-9)


def test_library_strict_mode_and_notices(model):
    _, path = model
    rec = Recognizer(path)
    assert rec.feed(0.0, [0.0] * 5) and rec.n_skipped == 1
    n = rec.feed(0.0, [0.0, 0.0, 9.8, 0.0, 0.0, 0.0])
    assert n == [] and rec.n_samples == 1
    (skip,) = rec.feed(0.0, [0.0, 0.0, 9.8, 0.0, 0.0, 0.0])
    assert isinstance(skip, Notice) and skip.kind == "skipped" and "not after" in skip.message
    strict = Recognizer(path, strict=True, source="live")
    with pytest.raises(DataError, match="live, line 1: expected 6 values"):
        strict.feed(0.0, [1.0, 2.0])


@pytest.mark.parametrize("precision", ["fp32", "weights", "static"])
def test_runtime_imports_and_runs_without_torch(model, tmp_path, precision):
    """The runtime and `crosshar-time` on a device without torch (or scipy), for the float model and the int8 ones
    `crosshar export` chooses between by default (each sidecar tells the runtime how to open its model)."""
    _, path = model
    if precision != "fp32":
        path = Path(export_int8(path, tmp_path / "har.int8.onnx", META, mode=precision)["path"])
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now fails
sys.modules["scipy"] = None
import numpy as np
import crosshar.runtime as rt
from crosshar.runtime import Recognizer
rec = Recognizer({str(path)!r})
t = np.arange(300) / 50.0
X = np.tile([0.0, 0.0, 9.81, 0.0, 0.0, 0.0], (300, 1))
ev = rec.feed_many(t, X) + rec.flush()
print(sum(isinstance(e, rt.Activity) for e in ev))
from crosshar.runtime.timing import time_models
assert time_models([{str(path)!r}], repeats=5)[0]["latency_ms"] > 0
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"  # 6 s at 50 Hz -> one window


@pytest.mark.parametrize("mode", ["weights", "static"])
def test_the_recognizer_runs_the_default_models_fused_graph(tmp_path, mode):
    """The default deployable (encoder + DIN head), float and int8 (the two modes `export` chooses between for it):
    its attentions are onnxruntime's contrib MultiHeadAttention nodes, which the runtime (numpy + onnxruntime) runs,
    matching PyTorch."""
    import onnx

    meta = {**META, "encoder": EncoderConfig().to_dict(), "head": "din"}
    torch.manual_seed(0)
    m = classifier.build(meta).eval()
    rep = export_model(m, meta, tmp_path / "din.onnx", int8=True, int8_mode=mode, calib_windows=activity_windows(64, 5))
    X = activity_windows(3, seed=4)
    with torch.no_grad():
        p_torch = torch.softmax(m(torch.from_numpy(X)), -1).numpy()
    sig = X.reshape(-1, 6)
    t = np.arange(len(sig)) / 20.0
    for path, tol in ((rep["fp32"]["path"], 1e-5), (rep["int8"]["path"], 0.02)):
        assert any(n.op_type == "MultiHeadAttention" for n in onnx.load(path).graph.node)
        rec = Recognizer(path)
        evs = [e for e in rec.feed_many(t, sig) + rec.flush() if isinstance(e, Activity)]
        np.testing.assert_allclose([e.probs for e in evs], p_torch, atol=tol)


def test_the_fixture_model_has_fused_attention(model):
    """So that the runtime tests on it (without torch, too) run onnxruntime's contrib attention."""
    import onnx

    nodes = onnx.load(str(model[1])).graph.node
    assert any(n.op_type == "MultiHeadAttention" and n.domain == "com.microsoft" for n in nodes)


def test_accelerometer_only_models_take_acc_columns(tmp_path, capsys):
    meta = {"window": WindowConfig(channels="acc").to_dict(), "channels": CHANNELS[:3], "classes": CLASSES,
            "label_space": "crosshar4", "encoder": None, "head": "linear", "head_cfg": {}, "scaling": "physical",
            "source": [], "metrics": {}}
    torch.manual_seed(0)
    m = classifier.build(meta).eval()
    export_model(m, meta, tmp_path / "acc.onnx")
    X = activity_windows(2, seed=7)
    with torch.no_grad():
        want = [CLASSES[k] for k in m(torch.from_numpy(X[..., :3])).argmax(1)]
    t = np.arange(240) / 20.0
    for name, header in (("six.csv", True), ("six_nohdr.csv", False)):  # 7-field rows: gyro ignored
        _, out, err = run_cli(capsys, tmp_path / "acc.onnx", write_csv(tmp_path / name, t, X.reshape(-1, 6), header))
        assert [a[1] for a in activities(out)] == want, err
    three = "\n".join(",".join(repr(float(v)) for v in (ti, *row)) for ti, row in zip(t, X.reshape(-1, 6)[:, :3]))
    (tmp_path / "three.csv").write_text("t,acc_x,acc_y,acc_z\n" + three + "\n")
    _, out, _ = run_cli(capsys, tmp_path / "acc.onnx", tmp_path / "three.csv")
    assert [a[1] for a in activities(out)] == want
    rc, out, err = run_cli(capsys, tmp_path / "acc.onnx", tmp_path / "three.csv", "--gyro-units", "deg/s")
    assert rc == 2 and not out and "reads no gyroscope" in err and len(err.strip().splitlines()) == 1


def test_library_rejects_non_numbers_without_crashing(model):
    _, path = model
    rec = Recognizer(path)
    (n,) = rec.feed("soon", [0.0] * 6)
    assert n.kind == "skipped" and "not numbers" in n.message and rec.n_skipped == 1


def test_zscore_models_are_fed_running_per_stream_normalisation(tmp_path):
    meta = {"window": WindowConfig(normalize="zscore_subject").to_dict(), "channels": CHANNELS, "classes": CLASSES,
            "label_space": "crosshar4", "encoder": None, "head": "linear", "head_cfg": {}, "scaling": "physical",
            "source": [], "metrics": {}}
    torch.manual_seed(0)
    m = classifier.build(meta).eval()
    export_model(m, meta, tmp_path / "z.onnx")
    sig = activity_windows(3, seed=8).reshape(-1, 6).astype(np.float64)
    rec = Recognizer(tmp_path / "z.onnx")
    evs = [e for e in rec.feed_many(np.arange(360) / 20.0, sig) if isinstance(e, Activity)]
    # the last window ends with the stream, so its statistics are the whole stream's (as for a subject)
    z = ((sig - sig.mean(0)) / (sig.std(0) + 1e-8))[-120:].astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(m(torch.from_numpy(z[None])), -1).numpy()[0]
    assert len(evs) == 3
    np.testing.assert_allclose(evs[-1].probs, want, atol=1e-5)


# ---- trust (issue 10): the sidecar is validated, the model verified, nothing non-finite printed


def model_copy(tmp_path: Path, path: Path, onnx_bytes: bytes | None = None, **changes) -> Path:
    """har.onnx + har.json copied into tmp_path; `changes` edit the sidecar (None deletes a key)."""
    out = tmp_path / "m" / "har.onnx"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(path.read_bytes() if onnx_bytes is None else onnx_bytes)
    side = json.loads(path.with_suffix(".json").read_text())
    for k, v in changes.items():
        side.pop(k) if v is None else side.__setitem__(k, v)
    out.with_suffix(".json").write_text(json.dumps(side))
    return out


def one_window_csv(tmp_path: Path, extra: dict[int, str] | None = None) -> Path:
    return write_csv(tmp_path / "in.csv", np.arange(120) / 20.0, activity_windows(1, seed=9).reshape(-1, 6), extra=extra)


@pytest.mark.parametrize("changes, message", [
    ({"labels": None}, "sidecar lacks the key(s) 'labels'"),
    ({"sha256": None}, "sidecar lacks the key(s) 'sha256'"),
    ({"rate_hz": 0}, "sidecar key 'rate_hz': must be a positive number of Hz, got 0"),
    ({"rate_hz": -20}, "sidecar key 'rate_hz': must be a positive number"),
    # a rate no IMU has: 1e-300 ended in numpy's bare "Maximum allowed size exceeded" (the resampler's filter),
    # 1e300 in an error blaming the recording's rate
    ({"rate_hz": 1e-300}, "sidecar key 'rate_hz': must be an IMU's sampling rate, 0.5 to 40000 Hz, got 1e-300"),
    ({"rate_hz": 1e300}, "sidecar key 'rate_hz': must be an IMU's sampling rate, 0.5 to 40000 Hz, got 1e+300"),
    ({"stride": 0}, "sidecar key 'stride': must be an integer >= 1"),
    ({"window": 1}, "sidecar key 'window': must be an integer > 1"),
    ({"labels": CLASSES + ["jogging"]}, "sidecar key 'output': shape ['batch', 4] disagrees with the 5 labels"),
    ({"labels": CLASSES + ["jogging"], "output": None}, "the graph's 'probs' has shape ['batch', 4]"),
    ({"window": 100, "input": None}, "the graph's 'window' has shape ['batch', 120, 6]"),
    ({"channels": ["acc_x", "acc_y"]}, "sidecar key 'channels'"),
    ({"labels": ["walking", "walking", "a", "b"]}, "sidecar key 'labels': names a class twice"),
    # an edited name with a line break printed a forged line: `5.95s sit` then `99.00s walking 1.00 0.83`
    ({"labels": CLASSES[:3] + ["sit\n99.00s walking 1.00"]}, "sidecar key 'labels': the class name 'sit\\n99.00s"),
    ({"labels": CLASSES[:3] + ["sit\x1b[2K"]}, "holds a control character"),
])
def test_the_sidecar_is_validated_naming_file_and_key(tmp_path, capsys, model, changes, message):
    p = model_copy(tmp_path, model[1], **changes)
    rc, out, err = run_cli(capsys, p, one_window_csv(tmp_path))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert message in err and ("har.json" in err or "har.onnx" in err), err


def test_a_sidecar_that_is_not_an_object_is_refused(tmp_path, capsys, model):
    p = model_copy(tmp_path, model[1])
    p.with_suffix(".json").write_text("[1, 2]")
    rc, _, err = run_cli(capsys, p, one_window_csv(tmp_path))
    assert rc == 2 and "har.json: not a crosshar model sidecar (a JSON list" in err


def test_corrupt_weights_never_print_a_label(tmp_path, capsys, model):
    """NaN weights with the sidecar's sha256 updated to match: the runtime used to print `walking nan`."""
    import onnx
    from onnx import numpy_helper

    from crosshar.runtime.sidecar import sha256_file

    m = onnx.load(str(model[1]))
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.full_like(a, np.nan), init.name))
    p = model_copy(tmp_path, model[1], onnx_bytes=m.SerializeToString())
    side = json.loads(p.with_suffix(".json").read_text())
    p.with_suffix(".json").write_text(json.dumps(side | {"sha256": sha256_file(p)}))
    rc, out, err = run_cli(capsys, p, one_window_csv(tmp_path))
    assert rc == 2 and "nan" not in out.lower() and "non-finite probabilities" in err


@pytest.mark.parametrize("value", ["1e39", "1e300", "-3e38", "600"])
def test_values_beyond_any_imu_are_bad_lines(tmp_path, capsys, model, value):
    """1e39 is finite in float64 but inf in float32: it made every window NaN."""
    csv = one_window_csv(tmp_path, extra={50: f"2.48,0.1,{value},9.8,0,0,0"})
    rc, out, err = run_cli(capsys, model[1], csv)
    assert rc == 0 and "nan" not in out.lower() and len(activities(out)) == 1
    assert "line 52: acc_y = " in err and "beyond any IMU's range" in err
    rc, out, err = run_cli(capsys, model[1], csv, "--strict")
    assert rc == 2 and out == "" and "in.csv, line 52" in err


def test_an_overlong_line_is_an_error_naming_it(tmp_path, capsys, model):
    csv = one_window_csv(tmp_path, extra={3: "1," * 50_000})
    rc, out, err = run_cli(capsys, model[1], csv)
    assert rc == 2 and "in.csv, line 5: longer than 4,096 characters" in err


# ---- input files as they come (gzip, a BOM), t in seconds only, every option checked


def test_gzip_and_bom_recordings_read_like_plain_csv(tmp_path, capsys, monkeypatch, model):
    """.csv.gz used to be read as text (its bytes printed as 'unknown column(s)'), a BOM as part of 't'."""
    import gzip

    plain = one_window_csv(tmp_path)
    rc, want, err = run_cli(capsys, model[1], plain)
    assert rc == 0 and len(activities(want)) == 1, err
    text = plain.read_bytes()
    bom = b"\xef\xbb\xbf" + text  # as Excel writes "CSV UTF-8"
    files = {"rec.csv.gz": gzip.compress(text), "bom.csv": bom, "bom.csv.gz": gzip.compress(bom),
             "gzipped_anyway.csv": gzip.compress(text), "unpacked_by_a_browser.csv.gz": text}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert run_cli(capsys, model[1], tmp_path / name) == (0, want, ""), name
    for data in (gzip.compress(bom), bom):  # stdin: `cat rec.csv.gz | crosshar-run model.onnx -`
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
        assert run_cli(capsys, model[1], "-") == (0, want, "")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(text)[:-100])
    rc, _, err = run_cli(capsys, model[1], tmp_path / "cut.csv.gz")
    assert rc == 2 and err.count("\n") == 1 and "cut.csv.gz, line " in err and "cannot be read" in err, err


def test_utf16_recordings_with_a_bom_read_like_plain_csv(tmp_path, capsys, monkeypatch, model):
    """Excel's "Unicode Text" and Notepad's UTF-16 (a BOM FF FE or FE FF) were read as UTF-8 with undecodable bytes
    replaced: 'unknown column(s) '��t\\x00', '\\x00a\\x00c\\x00c...' in the header'."""
    import gzip

    plain = one_window_csv(tmp_path)
    rc, want, err = run_cli(capsys, model[1], plain)
    assert rc == 0 and len(activities(want)) == 1, err
    text = plain.read_text().replace("\n", "\r\n")  # as Windows writes it
    le, be = b"\xff\xfe" + text.encode("utf-16-le"), b"\xfe\xff" + text.encode("utf-16-be")
    files = {"le.csv": le, "be.csv": be, "le.csv.gz": gzip.compress(le), "be.csv.gz": gzip.compress(be),
             "utf32.csv": text.encode("utf-32")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert run_cli(capsys, model[1], tmp_path / name) == (0, want, ""), name
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
        assert run_cli(capsys, model[1], "-") == (0, want, ""), f"{name} on stdin"


@pytest.mark.parametrize("name", ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"])
def test_stdin_named_by_its_path_when_closed_is_a_one_line_error(model, capsys, monkeypatch, name):
    """`crosshar-run m.onnx /dev/stdin <&-` read nothing and exited 0: fd 0, closed, had been reused for /dev/null by
    the time the input was opened. Now it is the error `-` with a closed stdin gets, naming the input."""
    want = f"crosshar-run: error: {name}: stdin is closed: nothing to read\n"
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when fd 0 is closed at its start
    assert run_cli(capsys, model[1], name) == (2, "", want)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-m", "crosshar.runtime.cli", str(model[1]),
                        name], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", want)


def _latin1_csv(tmp_path, name: str, data) -> None:
    """The one-window recording saved in Latin-1 with `data` inserted: a str as line 1, {i: line} at line i + 1."""
    import gzip

    lines = one_window_csv(tmp_path).read_text().splitlines(keepends=True)
    if isinstance(data, str):
        lines.insert(0, data)
    else:
        for i, line in sorted(data.items(), reverse=True):
            lines.insert(i, line + "\n")
    raw = "".join(lines).encode("latin-1")
    (tmp_path / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)


@pytest.mark.parametrize("name, data, message", [
    # a Latin-1 (Windows-1252) file whose header holds a byte that is not UTF-8: before, the byte was replaced and
    # the header read as 'unknown column(s)' with a replacement character
    ("header.csv", {0: "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,\xe9tat"},
     "header.csv, line 1: byte 0xE9 (character 42) is not UTF-8"),
    ("header_first_field.csv", {0: "\xe9t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"},
     "header_first_field.csv, line 1: byte 0xE9 (character 1) is not UTF-8"),
])
def test_a_byte_that_does_not_decode_is_an_error_naming_its_line(tmp_path, capsys, monkeypatch, model, name, data,
                                                                  message):
    """A header with a byte that is not UTF-8: the file is in another encoding, and its columns cannot be trusted;
    an error with or without --strict. Re-saving it is one step, and the message says which."""
    _latin1_csv(tmp_path, name, data)
    monkeypatch.chdir(tmp_path)
    want = f"crosshar-run: error: {message}; save the file as UTF-8, or as UTF-16 with its byte-order mark\n"
    for args in ([name], [name, "--strict"]):
        rc, _, err = run_cli(capsys, model[1], *args)
        assert (rc, err) == (2, want), err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO((tmp_path / name).read_bytes()))))
    rc, _, err = run_cli(capsys, model[1], "-")
    assert (rc, err) == (2, want.replace(name, "<stdin>")), err


@pytest.mark.parametrize("name, header, line", [
    ("data.csv", True, 5),  # after the header
    ("first.csv.gz", False, 1),  # no header: the first line, a sample (its t is a number), not a header
])
def test_a_byte_that_does_not_decode_on_a_sample_line_is_a_bad_line(tmp_path, capsys, monkeypatch, model, name,
                                                                    header, line):
    """A sample line with a byte that is not UTF-8 stopped the whole stream (exit 2) even without --strict, while
    every other bad sample line is warned about and skipped: now it is one of them, an error only with --strict."""
    import gzip

    rc, want, err = run_cli(capsys, model[1], one_window_csv(tmp_path))
    assert rc == 0 and len(activities(want)) == 1, err
    lines = one_window_csv(tmp_path).read_text().splitlines(keepends=True)[0 if header else 1:]
    lines.insert(line - 1, "0.2,1,2,3\xb0,4,5,6\n")  # a Latin-1 (Windows-1252) degree sign
    raw = "".join(lines).encode("latin-1")
    (tmp_path / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    monkeypatch.chdir(tmp_path)
    problem = (f"line {line}: byte 0xB0 (character 10) is not UTF-8; save the file as UTF-8, or as UTF-16 with its "
               "byte-order mark")
    skipped = "crosshar-run: warning: 1 bad line(s) skipped (use --strict to stop at the first)\n"
    assert run_cli(capsys, model[1], name) == (0, want, f"crosshar-run: warning: {name}, {problem}; skipped\n{skipped}")
    assert run_cli(capsys, model[1], name, "--strict") == (2, "", f"crosshar-run: error: {name}, {problem}\n")
    data = (tmp_path / name).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert run_cli(capsys, model[1], "-") == (0, want, f"crosshar-run: warning: <stdin>, {problem}; skipped\n{skipped}")


@pytest.mark.parametrize("first, col", [("\xff1.0", 1), ("1.0\xff", 4), ("\xff", 1)])
def test_a_byte_that_does_not_decode_in_the_first_lines_time_is_a_bad_line(tmp_path, capsys, monkeypatch, model,
                                                                            first, col):
    """Without a header, a first line whose time field held a byte that is not UTF-8 was taken for a header (its
    first field not a number) and stopped the stream as a header error; it is a sample line whose other fields are
    numbers, bad like a later one: warned about and skipped, an error naming line 1 with --strict."""
    body = one_window_csv(tmp_path).read_bytes().split(b"\n", 1)[1]  # the samples, no header
    rc, want, err = run_cli(capsys, model[1], one_window_csv(tmp_path))
    assert rc == 0 and len(activities(want)) == 1, err
    (tmp_path / "rec.csv").write_bytes(first.encode("latin-1") + b",0.1,0.2,9.8,0,0,0\n" + body)
    monkeypatch.chdir(tmp_path)
    problem = (f"line 1: byte 0xFF (character {col}) is not UTF-8; save the file as UTF-8, or as UTF-16 with its "
               "byte-order mark")
    skipped = "crosshar-run: warning: 1 bad line(s) skipped (use --strict to stop at the first)\n"
    assert run_cli(capsys, model[1], "rec.csv") == (0, want, f"crosshar-run: warning: rec.csv, {problem}; skipped\n"
                                                              f"{skipped}")
    assert run_cli(capsys, model[1], "rec.csv", "--strict") == (2, "", f"crosshar-run: error: rec.csv, {problem}\n")
    data = (tmp_path / "rec.csv").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert run_cli(capsys, model[1], "-") == (0, want, f"crosshar-run: warning: <stdin>, {problem}; skipped\n{skipped}")


@pytest.mark.parametrize("name, data", [
    ("comment.csv", "# Messung M\xfcnchen\n"),
    ("units.csv", "# gyro in \xb0/s\n"),
    ("last.csv.gz", {121: "# fin \xfc"}),
])
def test_a_comment_in_another_encoding_is_skipped_like_any_comment(tmp_path, capsys, monkeypatch, model, name, data):
    """Nothing in a comment is read, so its bytes cannot change a result: the recording reads as without it."""
    rc, want, err = run_cli(capsys, model[1], one_window_csv(tmp_path))
    assert rc == 0 and len(activities(want)) == 1, err
    _latin1_csv(tmp_path, name, data)
    for args in ([tmp_path / name], [tmp_path / name, "--strict"]):
        assert run_cli(capsys, model[1], *args) == (0, want, ""), args


def test_utf16_that_cannot_be_text_is_an_error_naming_its_line(tmp_path, capsys, monkeypatch, model):
    text = one_window_csv(tmp_path).read_text()
    lines = text.splitlines(keepends=True)
    lone = "".join(lines[:9]) + "0.4\ud800,1,2,3,4,5,6\n" + "".join(lines[9:])  # half a surrogate pair: no character
    (tmp_path / "lone.csv").write_bytes(b"\xff\xfe" + lone.encode("utf-16-le", "surrogatepass"))
    (tmp_path / "nobom.csv").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "odd.csv").write_bytes(b"\xfe\xff" + text.encode("utf-16-be")[:-1])  # cut in a character
    monkeypatch.chdir(tmp_path)
    lone_message = ("lone.csv, line 10: character 4 is half of a UTF-16 surrogate pair (U+D800), not text; save the "
                    "file as UTF-8, or as UTF-16 with its byte-order mark")
    for name, message in (("lone.csv", lone_message),
                          ("nobom.csv", "nobom.csv, line 1: a NUL byte every other byte: UTF-16 without its "
                                        "byte-order mark? save the file as UTF-8"),
                          ("odd.csv", f"odd.csv, line {len(lines)}: cannot be read")):
        rc, _, err = run_cli(capsys, model[1], name, "--strict")
        assert rc == 2 and err.startswith(f"crosshar-run: error: {message}") and err.count("\n") == 1, err
    # a sample line that is not text is a bad line like any other: without --strict, warned about and skipped
    rc, out, err = run_cli(capsys, model[1], "lone.csv")
    assert rc == 0 and len(activities(out)) == 1 and err.startswith(f"crosshar-run: warning: {lone_message}; skipped\n")
    for name in ("nobom.csv", "odd.csv"):  # the stream itself cannot be read: an error in both modes
        rc, _, err = run_cli(capsys, model[1], name)
        assert rc == 2 and err.startswith(f"crosshar-run: error: {name}, line ") and err.count("\n") == 1, err


def test_stdin_is_read_as_it_comes_whatever_its_encoding(model):
    """The first bytes are read to tell gzip and UTF-16 apart: that must not hold back a live stream until it ends,
    even when its byte-order mark arrives one byte at a time."""
    import threading
    import time

    text = "".join(f"{i / 20},0.1,0.2,9.8,0,0,0\n" for i in range(120))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for data in (text.encode("utf-8-sig"), text.encode("utf-16")):
        p = subprocess.Popen([sys.executable, "-m", "crosshar.runtime.cli", str(model[1]), "-", "--format", "jsonl"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        watchdog = threading.Timer(60, p.kill)  # a stream held back until its end: fail, don't hang
        watchdog.start()
        try:
            for i in range(3):
                p.stdin.write(data[i:i + 1])
                p.stdin.flush()
                time.sleep(0.05)
            p.stdin.write(data[3:])
            p.stdin.flush()
            first = p.stdout.readline()  # the stream is still open: this line came as the window filled
            assert json.loads(first)["t"] == 5.95, p.stderr.read() if not first else first
        finally:
            watchdog.cancel()
            p.stdin.close()
            p.wait(timeout=60)
        assert p.returncode == 0


@pytest.mark.parametrize("scale, implied, hint", [
    (1e3, "0.05 Hz", "in milliseconds? that would be 50 Hz"),
    (1e9, "5e-08 Hz", "in nanoseconds? that would be 50 Hz"),
    (1 / 3600, "1.8e+05 Hz", "in hours? that would be 50 Hz"),
])
def test_a_time_column_not_in_seconds_is_refused(tmp_path, capsys, model, scale, implied, hint):
    """t in milliseconds used to make every step a gap: 2999 gap lines, then 'no activity' and exit 0."""
    t = np.arange(3000) / 50.0 * scale
    csv = write_csv(tmp_path / "ms.csv", t, activity_windows(25, seed=10).reshape(-1, 6))
    rc, out, err = run_cli(capsys, model[1], csv)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert f"ms.csv: t must be in seconds: its median step of {1 / 50 * scale:g} between samples would mean {implied}" \
           in err and hint in err


def test_gaps_among_the_first_samples_and_a_max_gap_below_the_step(tmp_path, capsys, model):
    _, path = model
    sig = activity_windows(3, seed=11).reshape(-1, 6)[:243]
    t = np.arange(243) / 20.0
    t[3:] += 5.0  # a gap while the rate is being estimated: announced, the 3 samples before it dropped
    rc, out, err = run_cli(capsys, path, write_csv(tmp_path / "g.csv", t, sig))
    assert rc == 0 and out.splitlines()[0].startswith("5.15s gap: gap of 5.05 s after t = 0.10 s"), out + err
    assert [a[0] for a in activities(out)] == pytest.approx([5.15 + 5.95, 5.15 + 11.95])
    rc, out, err = run_cli(capsys, path, write_csv(tmp_path / "g.csv", np.arange(243) / 20.0, sig), "--max-gap", "0.04")
    assert rc == 2 and out == "" and "g.csv: the median step between samples, 0.05 s, is longer than the largest " \
                                     "gap allowed (0.04 s, --max-gap)" in err


@pytest.mark.parametrize("option, message", [
    (["--hop-seconds", "inf"], "--hop-seconds must be a finite number of seconds > 0 and <= 86400, got inf"),
    (["--hop-seconds", "1e308"], "--hop-seconds must be a finite number of seconds > 0 and <= 86400, got 1e+308"),
    (["--hop-seconds", "0"], "--hop-seconds must be a finite number of seconds > 0"),
    (["--max-gap", "nan"], "--max-gap must be a finite number of seconds > 0, got nan"),
    (["--max-gap=-inf"], "--max-gap must be a finite number of seconds > 0, got -inf"),
    (["--threads", "-3"], "--threads must be an integer from 1 to 1024, got -3"),
    (["--threads", "0"], "--threads must be an integer from 1 to 1024, got 0"),
    (["--smooth", "0"], "--smooth must be an integer from 1 to 1000, got 0"),
    (["--smooth", "1" + "0" * 22], "--smooth must be an integer from 1 to 1000, got 1" + "0" * 22),
    (["--ema", "nan"], "--ema must be a weight in (0, 1], got nan"),
    (["--ema", "1.5"], "--ema must be a weight in (0, 1], got 1.5"),
    (["--ema", "0.5", "--smooth", "3"], "--ema and --smooth K > 1 are two smoothings: choose one"),
])
def test_options_are_checked_naming_the_option(tmp_path, capsys, model, option, message):
    rc, out, err = run_cli(capsys, model[1], one_window_csv(tmp_path), *option)
    assert rc == 2 and out == "" and err.startswith(f"crosshar-run: error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("args, message", [
    (["--smooth", "x"], "argument --smooth: invalid int value: 'x'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--units"], "argument --units: expected one argument"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_argparse_errors_are_one_line_naming_the_option(tmp_path, capsys, model, args, message):
    """argparse printed its usage block before the error and exited from inside main(); now one line, exit 2."""
    rc, out, err = run_cli(capsys, model[1], one_window_csv(tmp_path), *args)
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"crosshar-run: error: {message}") and "usage:" not in err, err
    rc, out, err = run_cli(capsys)
    assert rc == 2 and err == "crosshar-run: error: the following arguments are required: model, input; " \
                              "see crosshar-run --help\n"
    with pytest.raises(SystemExit) as e:  # --help still prints the usage and the options
        main(["--help"])
    assert e.value.code == 0 and "usage: crosshar-run" in capsys.readouterr().out


def test_library_options_are_checked(model):
    for kwargs in ({"max_gap": float("nan")}, {"max_gap": float("inf")}, {"hop_seconds": float("inf")},
                   {"hop_seconds": 1e308}, {"threads": 0}):
        with pytest.raises(ValueError, match="must be"):
            Recognizer(model[1], **kwargs)


def test_an_unreadable_input_file_is_one_line_naming_it(tmp_path, capsys, monkeypatch, model):
    """No read permission ended in a bare "[Errno 13] Permission denied: 'x.csv'" (simulated: tests may run as root)."""
    import builtins

    path = one_window_csv(tmp_path)
    real = builtins.open

    def refused(file, *a, **k):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", refused)
    rc, _, err = run_cli(capsys, model[1], path)
    assert rc == 2 and err == f"crosshar-run: error: {path}: cannot be read (Permission denied)\n", err


# ---- QA: graphs that are not crosshar's, API misuse


def _tiny_graph(tmp_path: Path, sidecar_of: Path, name: str, *, in_type=None, out_type=None, extra_input=False,
                shift: float = 0.0) -> Path:
    """A hand-made graph window (B, 120, 6) -> probs (B, 4): softmax of the mean of the first 4 channels, minus
    `shift`; `in_type` / `out_type` cast its input / output to another ONNX type, `extra_input` adds a second
    input. Its sidecar is `sidecar_of`'s with the sha256 updated (what someone who rebuilt a model would write)."""
    from onnx import TensorProto as TP, helper as h

    from crosshar.runtime.sidecar import sha256_file

    src, nodes = "window", []
    if in_type is not None:
        nodes.append(h.make_node("Cast", ["window"], ["wf"], to=TP.FLOAT))
        src = "wf"
    nodes += [h.make_node("ReduceMean", [src], ["m"], axes=[1], keepdims=0),
              h.make_node("Slice", ["m", "st", "en", "ax"], ["s"]),
              h.make_node("Softmax", ["s"], ["p"], axis=-1),
              h.make_node("Sub", ["p", "shift"], ["q"])]
    inits = [h.make_tensor("st", TP.INT64, [1], [0]), h.make_tensor("en", TP.INT64, [1], [4]),
             h.make_tensor("ax", TP.INT64, [1], [1]), h.make_tensor("shift", TP.FLOAT, [1], [shift])]
    nodes.append(h.make_node("Cast", ["q"], ["probs"], to=out_type) if out_type is not None
                 else h.make_node("Identity", ["q"], ["probs"]))
    inputs = [h.make_tensor_value_info("window", in_type or TP.FLOAT, ["batch", 120, 6])]
    if extra_input:
        inputs.append(h.make_tensor_value_info("extra", TP.FLOAT, ["batch", 4]))
    graph = h.make_graph(nodes, name, inputs, [h.make_tensor_value_info("probs", out_type or TP.FLOAT, ["batch", 4])],
                         initializer=inits)
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / f"{name}.onnx"
    p.write_bytes(m.SerializeToString())
    side = json.loads(sidecar_of.with_suffix(".json").read_text()) | {"sha256": sha256_file(p)}
    p.with_suffix(".json").write_text(json.dumps(side))
    return p


@pytest.mark.parametrize("kwargs, message", [
    # each failed only at the first window, 6 s into the stream, in onnxruntime's words without the file
    ({"in_type": 11}, "the graph's input 'window' is a tensor(double), not float32"),
    ({"extra_input": True}, "the graph takes 2 inputs (window, extra), not the one 'window'"),
    # printed `walking 0.00` for every window
    ({"out_type": 7}, "the graph's output 'probs' is a tensor(int64), not float32"),
])
def test_a_graph_of_other_types_or_inputs_is_refused_when_loaded(tmp_path, capsys, model, kwargs, message):
    p = _tiny_graph(tmp_path, model[1], "other", **kwargs)
    rc, out, err = run_cli(capsys, p, one_window_csv(tmp_path))
    assert rc == 2 and out == "" and err == f"crosshar-run: error: {p}: {message}" + err.split(message)[1], err
    assert len(err.splitlines()) == 1
    with pytest.raises(DataError, match="not a model exported by crosshar"):
        Recognizer(p)


def test_outputs_that_are_not_probabilities_never_print_a_label(tmp_path, capsys, model):
    """A graph whose outputs are scores (here probabilities - 0.5) printed `downstairs 0.50` for every window."""
    ok = _tiny_graph(tmp_path, model[1], "probs")
    rc, out, _ = run_cli(capsys, ok, one_window_csv(tmp_path))
    assert rc == 0 and len(activities(out)) == 1
    p = _tiny_graph(tmp_path, model[1], "scores", shift=0.5)
    rc, out, err = run_cli(capsys, p, one_window_csv(tmp_path))
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert f"{p}: the model returned [" in err and "which are not probabilities" in err, err


def test_a_directory_named_as_the_model_is_refused_as_one(tmp_path, capsys, model):
    d = tmp_path / "model.onnx"
    d.mkdir()
    rc, _, err = run_cli(capsys, d, one_window_csv(tmp_path))
    assert rc == 2 and err == f"crosshar-run: error: {d}: is a directory, not a model file; name the .onnx file in it\n"


def test_feed_many_refuses_times_that_do_not_match_the_samples(model):
    """ts shorter than X classified only the first len(ts) samples, without a word (zip)."""
    X = activity_windows(2, seed=3).reshape(-1, 6)
    ts = np.arange(len(X)) / 20.0
    for bad in (ts[:120], np.r_[ts, ts[-1] + 1], ts[:, None], 5.0):
        with pytest.raises(ValueError, match=r"ts must be \(n,\) times for the n = 240 rows of X"):
            Recognizer(model[1]).feed_many(bad, X)
    assert sum(isinstance(e, Activity) for e in Recognizer(model[1]).feed_many(ts, X)) == 2


def test_a_time_too_large_for_a_float_is_a_skipped_sample(model):
    rec = Recognizer(model[1])
    (n,) = rec.feed(10**400, [0.0] * 6)  # OverflowError escaped
    assert n.kind == "skipped" and "not numbers" in n.message and rec.n_skipped == 1
