"""How fast can this CPU run the exported model at all? A roofline for the export target (issue 11).

The deployable model's speed-up over PyTorch eager (`crosshar bench`) is capped by the machine: if
onnxruntime already multiplies as fast as this core can, no graph rewrite makes it faster, only less
arithmetic. This script measures, on ONE thread and in thread CPU time (as `crosshar bench` does):

- the core's float32 matrix-multiply rate: onnxruntime running a single MatMul graph, at the shapes
  the default model multiplies (T = 120 steps x D = 72 -> 72 / 144) and at a large square shape
  (the best this core does with a well-blocked GEMM);
- the default model's multiply-adds per window (`crosshar.tools.complexity.macs_per_window`);
- the model itself, in PyTorch eager and in the float graph `crosshar export` writes;
- from these, the fastest the model could run, and so the largest speed-up over eager that any
  float32 graph could show: eager time / (MACs x 2 / best GFLOP/s).

    python benchmarks/cpu_peak.py [--run RUN] [--repeats 200] [--write results/cpu_peak.md]

Eager, onnxruntime and the lone MatMuls are timed interleaved in one process, so that one machine
state holds for every figure (machines of one kind differ by 5x in absolute speed here).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from crosshar.runtime.timing import interleaved

SHAPES = [  # (M, K, N): what the default model multiplies at batch 1, then a large GEMM
    (120, 72, 72, "attention projection (T x D -> D)"),
    (120, 72, 144, "feed-forward in (T x D -> d_ff)"),
    (120, 144, 72, "feed-forward out (T x d_ff -> D)"),
    (512, 512, 512, "large square GEMM (the core's best)"),
]


def matmul_session(m: int, k: int, n: int) -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
    """A one-node onnxruntime graph y = x @ W (W a constant, as a weight is), one thread."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [k, n], rng.standard_normal((k, n)).astype(np.float32).ravel())
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess, {"x": rng.standard_normal((m, k)).astype(np.float32)}


def default_model(run: str | None) -> tuple[torch.nn.Module, dict]:
    """The model `crosshar bench` times: a finetuned run, or the default encoder + DIN with random weights."""
    from crosshar.config import EncoderConfig
    from crosshar.models import classifier
    from crosshar.tools.bench import bench_meta

    if run:
        return classifier.load(run)
    torch.manual_seed(0)
    meta = bench_meta("din", EncoderConfig())  # exactly what `crosshar bench` builds without a run
    return classifier.build(meta).eval(), meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a finetuned run folder (default: the default model with random weights)")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--write", help="write the markdown table here (and a .json beside it)")
    a = ap.parse_args(argv)
    from crosshar.export import export_model, physical_windows
    from crosshar.runtime.session import ort_session
    from crosshar.tools.complexity import macs_per_window

    model, meta = default_model(a.run)
    w = meta["window"]
    T, C = int(w["window"]), len(meta["channels"])
    macs = macs_per_window(model, (T, C))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread, as `crosshar bench`; restored after (a caller's process keeps its own)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rep = export_model(model, meta, Path(tmp) / "model.onnx")  # the float graph `crosshar export` writes
            sess = ort_session(Path(rep["fp32"]["path"]), 1, None)
            x = physical_windows(1, T, C, float(w["rate_hz"]), seed=3)
            tx = torch.from_numpy(x)
            mms = [matmul_session(m, k, n) for m, k, n, _ in SHAPES]
            with torch.inference_mode():  # everything interleaved: the same machine state for every figure
                secs = interleaved([lambda: model(tx), lambda: sess.run(None, {"window": x})]
                                    + [lambda s=s, f=f: s.run(None, f) for s, f in mms], a.repeats)
    finally:
        torch.set_num_threads(threads)
    eager, fp32 = 1e3 * secs[0], 1e3 * secs[1]
    rates = [{"m": m, "k": k, "n": n, "what": what, "ms": 1e3 * t, "gflops": 2 * m * k * n / t / 1e9}
             for (m, k, n, what), t in zip(SHAPES, secs[2:])]
    best = max(r["gflops"] for r in rates)
    at_shapes = max(r["gflops"] for r in rates[:-1])
    floor_ms = 2 * macs / (best * 1e9) * 1e3
    gf = lambda ms: 2 * macs / (ms * 1e-3) / 1e9  # noqa: E731
    L = ["# The export's roofline on this CPU (one thread, thread CPU time)", "",
         f"Regenerate: `python benchmarks/cpu_peak.py{' --run RUN' if a.run else ''} --repeats {a.repeats}"
         f"{' --write ' + a.write if a.write else ''}` (on a quiet machine; every figure below timed interleaved "
         f"in one process, `crosshar.runtime.timing.interleaved`)", "",
         f"Model: {'the run ' + a.run if a.run else 'the default encoder + DIN, random weights'}, "
         f"{macs / 1e6:.1f} M multiply-adds per window ({2 * macs / 1e6:.1f} MFLOP), the float graph `crosshar export` writes.", "",
         "| what | shape | ms | GFLOP/s |", "|---|---|---|---|",
         f"| PyTorch eager, the whole model | batch 1 | {eager:.3f} | {gf(eager):.1f} |",
         f"| onnxruntime fp32, the whole model | batch 1 | {fp32:.3f} | {gf(fp32):.1f} |"]
    L += [f"| onnxruntime MatMul: {r['what']} | {r['m']} x {r['k']} x {r['n']} | {r['ms']:.4f} | {r['gflops']:.1f} |"
          for r in rates]
    L += ["", f"- onnxruntime runs the whole model at {gf(fp32):.1f} GFLOP/s: {100 * gf(fp32) / at_shapes:.0f} % of the "
              f"rate of a lone MatMul at the model's own shapes ({at_shapes:.1f}), {100 * gf(fp32) / best:.0f} % of the "
              f"core's best GEMM ({best:.1f})",
          f"- at the best GEMM rate the model cannot take less than {floor_ms:.3f} ms, so no float32 graph of it can "
          f"beat eager by more than **{eager / floor_ms:.2f}x** on this core (measured: {eager / fp32:.2f}x); at the "
          f"model's own shapes' rate, {eager * at_shapes / (2 * macs / 1e6):.2f}x"]
    text = "\n".join(L) + "\n"
    print(text)
    if a.write:
        Path(a.write).write_text(text)
        Path(a.write).with_suffix(".json").write_text(json.dumps(
            {"macs": macs, "eager_ms": eager, "onnx_fp32_ms": fp32, "gemm": rates, "best_gflops": best,
             "floor_ms": floor_ms, "cpu": platform.processor() or platform.machine()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
