"""benchmarks/cpu_peak.py: the export's roofline behind results/cpu_peak.md (no timing asserted)."""

import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_peak.py"
spec = importlib.util.spec_from_file_location("cpu_peak", SCRIPT)
cp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cp)


def test_matmul_session_multiplies():
    sess, feed = cp.matmul_session(5, 3, 4)
    y = sess.run(None, feed)[0]
    w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)  # the session's constant weight
    np.testing.assert_allclose(y, feed["x"] @ w, rtol=1e-5, atol=1e-5)


def test_roofline_report_is_consistent(tmp_path):
    out = tmp_path / "peak.md"
    assert cp.main(["--repeats", "3", "--write", str(out)]) == 0
    text = out.read_text()
    assert "onnxruntime fp32, the whole model" in text and "PyTorch eager, the whole model" in text
    r = json.loads(out.with_suffix(".json").read_text())
    assert r["macs"] > 1e6 and len(r["gemm"]) == len(cp.SHAPES)
    best = max(g["gflops"] for g in r["gemm"])
    assert r["best_gflops"] == best
    assert abs(r["floor_ms"] - 2 * r["macs"] / (best * 1e9) * 1e3) < 1e-9  # the floor is the MACs at the best rate


def test_main_leaves_the_callers_thread_count(tmp_path):
    import torch

    before = torch.get_num_threads()
    cp.main(["--repeats", "3", "--write", str(tmp_path / "p.md")])
    assert torch.get_num_threads() == before
