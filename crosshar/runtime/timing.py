"""CPU time of one model call: the one home of how crosshar times models. `crosshar export` (its automatic int8
mode and its fp32-or-int8 advice) and `crosshar bench` time here, and so does `crosshar-time`, which times
exported models on the device itself (numpy + onnxruntime only, like the rest of the runtime):

    crosshar-time model.onnx model.int8.onnx       # on the Raspberry Pi: which file is faster there

Thread CPU time, not the wall clock: on a loaded machine the wall clock counts the time other processes hold the
core, which once flipped the speed-up verdict. PyTorch with one thread and onnxruntime with one intra-op thread
both compute in the calling thread. Which int8 mode is fastest depends on the CPU, so the machine that will run
the model is the one to ask.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crosshar.runtime.session import ort_session

PROG = "crosshar-time"
ROUNDS = 5  # interleaved rounds of `crosshar-time` (see interleaved)


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median CPU seconds of this thread for `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        ts.append(time.thread_time() - t0)
    return statistics.median(ts)


def interleaved(fns: list[Callable[[], Any]], repeats: int, rounds: int = 5) -> list[float]:
    """CPU seconds of one call of each fn: `rounds` rounds, each timing every fn in turn (median of
    repeats / rounds calls, time_calls); per fn, the least disturbed round (the minimum of its round
    medians). Other processes only ever add time, even thread CPU time (shared caches and cores), and
    interleaving gives every model the same conditions: on a loaded machine, timing the models one
    after another once made the same float graph look 30 % slower under another name.
    """
    per = max(3, repeats // rounds)
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            ts[i].append(time_calls(fn, per))
    return [min(t) for t in ts]


def ort_latency_ms(path: str | Path, window: np.ndarray, repeats: int = 50, quantization: str | None = None) -> float:
    """Median single-thread CPU milliseconds of one onnxruntime call on `window` (1, T, C)."""
    return ort_latencies_ms([(path, quantization)], window, repeats, rounds=1)[0]


def ort_latencies_ms(models: list[tuple[str | Path, str | None]], window: np.ndarray, repeats: int = 100,
                     rounds: int = 5) -> list[float]:
    """Single-thread CPU milliseconds of one onnxruntime call on `window` (1, T, C) for each (path, quantization
    mode) model, timed interleaved (see interleaved)."""
    sessions = [ort_session(Path(p), 1, q) for p, q in models]
    fns = [lambda s=s: s.run(None, {"window": window}) for s in sessions]
    return [1e3 * t for t in interleaved(fns, repeats, rounds)]


def standing_window(window: int, channels: int, seed: int = 0) -> np.ndarray:
    """(1, window, channels) float32: a phone at rest, gravity (9.81 m/s^2) on its third axis, a little noise on
    every channel; what a window holds does not change these models' time, only its shape does."""
    x = np.random.default_rng(seed).normal(0.0, 0.1, (1, window, channels))
    x[..., 2] += 9.81
    return x.astype(np.float32)


def time_models(paths: Sequence[str | Path], repeats: int = 300, rounds: int = ROUNDS) -> list[dict[str, Any]]:
    """Each exported model (its sidecar beside it) timed at batch 1 on one thread, interleaved:
    [{path, mode, size_bytes, latency_ms, vs_first}] (mode None for fp32; vs_first: the first model's time / this
    one's)."""
    from crosshar.runtime.model import OnnxModel

    models = [OnnxModel(p, threads=1) for p in paths]  # each checked against its sidecar
    shapes = {(m.meta["window"], len(m.meta["channels"])) for m in models}
    if len(shapes) > 1:
        raise ValueError(f"the models take windows of different shapes (window, channels) {sorted(shapes)}: "
                         "time them separately")
    x = standing_window(*shapes.pop())
    lat = ort_latencies_ms([(m.path, m.quantization) for m in models], x, repeats, rounds)
    return [{"path": str(m.path), "mode": m.quantization, "size_bytes": m.path.stat().st_size, "latency_ms": t,
             "vs_first": lat[0] / t} for m, t in zip(models, lat)]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Time exported crosshar models on this CPU: batch 1, one "
                                "thread, thread CPU time, the models interleaved.")
    p.add_argument("models", nargs="+", help=".onnx files written by `crosshar export` (their sidecars beside them)")
    p.add_argument("--repeats", type=int, default=300, help=f"timed calls per model (default 300, in {ROUNDS} rounds)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `crosshar-time`; returns the exit code (0, or 2 on an error: one line, no traceback)."""
    try:
        args = _parser().parse_args(argv)
        if not 5 <= args.repeats <= 100_000:
            raise ValueError(f"--repeats must be in 5..100000, got {args.repeats}")
        rows = time_models(args.models, args.repeats)
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, its message already printed)
        return int(e.code or 0)
    except Exception as e:  # noqa: BLE001  (never a traceback: one clear line)
        from crosshar.errors import CrossharError

        msg = str(e) if isinstance(e, (CrossharError, ValueError, OSError)) else f"{type(e).__name__}: {e}"
        sys.stderr.write(f"{PROG}: error: {msg}\n")
        return 2
    width = max(len(r["path"]) for r in rows)
    print(f"batch 1, one thread, thread CPU time: the least disturbed of {ROUNDS} interleaved rounds of "
          f"{max(3, args.repeats // ROUNDS)} calls (median)")
    for r in rows:
        kind = "fp32" if r["mode"] is None else f"int8 {r['mode']}"
        print(f"{r['path']:<{width}}  {kind:<12} {r['size_bytes'] / 1e3:9.1f} kB  {r['latency_ms']:8.3f} ms  "
              f"{r['vs_first']:5.2f}x the first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
