"""How many windows should one prediction pass hold on a CPU? The figures behind `crosshar.inference.infer_batch`.

Every no-gradient forward pass of crosshar (scoring in `cross` and the matrix, finetuning's validation, a
frozen encoder's cached features) goes through `crosshar.inference.in_batches`. This script times, on ONE
thread and in thread CPU time, the CPU per window of `predict` / `embed` over the same windows at several
batch sizes, for the models the matrix scores most (untrained weights: the arithmetic is what is timed):

- the default model (crosshar's encoder + DIN),
- DIN on the raw window (`finetune --no-pretrain`),
- CrossHAR's classifier as published (`--preset paper`: the transformer head with a 2,048-wide feed-forward),
- the encoder alone (`embed`),

and checks that every batch gives the same outputs as the largest one (the batch is a speed choice only).

    python benchmarks/infer_batch.py [--windows 1024] [--batches 8,16,32,64,128,512] [--rounds 2]
                                     [--write results/infer_batch.md]

The rounds are interleaved (every batch once, then again), and each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def models() -> dict[str, tuple[object, object]]:
    """name -> (callable over (N, T, C) windows and a batch size, returning (N, ...) numpy), untrained."""
    from crosshar.config import EncoderConfig
    from crosshar.inference import embed, predict
    from crosshar.models import classifier
    from crosshar.tools.bench import bench_meta

    torch.manual_seed(0)
    out = {}
    for name, head, enc, head_cfg in [("default model (encoder + DIN)", "din", EncoderConfig(), {}),
                                      ("DIN on the raw window", "din", None, {}),
                                      ("CrossHAR's classifier (transformer, d_ff 2048)", "transformer", EncoderConfig(),
                                       {"d_ff": 2048, "token_kernel": 1})]:
        meta = bench_meta(head, enc) | {"head_cfg": head_cfg}
        m = classifier.build(meta).eval()
        out[name] = lambda X, b, m=m: predict(m, X, b)
    m = classifier.build(bench_meta("din", EncoderConfig())).eval()
    out["the encoder alone (embed)"] = lambda X, b, m=m: embed(m.encoder, m.scaler, X, b)
    return out


def windows(n: int, seed: int = 0) -> np.ndarray:
    """(n, 120, 6) physical windows: gravity on z, some motion (acc m/s^2, gyro rad/s)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2.0, (n, 120, 6)).astype(np.float32)
    X[..., 2] += 9.8
    X[..., 3:] *= 0.3
    return X


def measure(fn, X: np.ndarray, batches: list[int], rounds: int) -> tuple[dict[int, float], dict[int, float]]:
    """({batch: ms per window, median over rounds}, {batch: max |output - output at the largest batch|})."""
    times: dict[int, list[float]] = {b: [] for b in batches}
    outs = {}
    for b in batches:
        fn(X[: min(len(X), 2 * b)], b)  # warm-up at that size
    for _ in range(rounds):
        for b in batches:
            t0 = time.thread_time()
            outs[b] = fn(X, b)
            times[b].append((time.thread_time() - t0) / len(X) * 1e3)
    ref = outs[max(batches)]
    return ({b: statistics.median(v) for b, v in times.items()},
            {b: float(np.abs(outs[b] - ref).max()) for b in batches})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=1024)
    ap.add_argument("--batches", default="8,16,32,64,128,512")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", help="write the markdown table here (and a .json beside it)")
    a = ap.parse_args(argv)
    from crosshar.inference import CPU_INFER_BATCH

    batches = sorted(int(b) for b in a.batches.split(","))
    X = windows(a.windows)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = {}
        for name, fn in models().items():
            ms, diff = measure(fn, X, batches, a.rounds)
            res[name] = {"ms_per_window": ms, "max_abs_diff": diff}
            print(f"{name}: " + ", ".join(f"{b}: {v:.3f} ms" for b, v in ms.items()) + f"; max |diff| {max(diff.values()):.2g}")
    finally:
        torch.set_num_threads(threads)
    lines = [f"# CPU per predicted window by inference batch (one thread, thread CPU time, {a.windows} windows, "
             f"median of {a.rounds} interleaved rounds; untrained weights)", "",
             f"Command: `python benchmarks/infer_batch.py --windows {a.windows} --batches {a.batches} --rounds {a.rounds}`; "
             f"machine {platform.machine()}, torch {torch.__version__}. The CPU default (`crosshar.inference."
             f"CPU_INFER_BATCH`) is {CPU_INFER_BATCH}.", "",
             "| model | " + " | ".join(f"{b}" for b in batches) + " | largest difference from the last column |",
             "|---|" + "---:|" * len(batches) + "---:|"]
    for name, r in res.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['ms_per_window'][b]:.3f}" for b in batches)
                     + f" | {max(r['max_abs_diff'].values()):.2g} |")
    text = "\n".join(lines) + "\n"
    if a.write:
        out = Path(a.write)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"windows": a.windows, "batches": batches, "rounds": a.rounds,
                                                        "results": res}, indent=1) + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
