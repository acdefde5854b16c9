"""Is walking / stairs confusion a cadence shift? Step frequencies per dataset, and matrix models scored on a
target replayed faster or slower (a diagnostic).

    python benchmarks/cadence_check.py RUNS [RUNS2 ...] --methods crosshar,scratch [--pairs wisdm:uci]
        [--seeds 3] [--speeds 1,0.8,0.9,1.1,1.2] [--out results/cadence]

Part 1 (no model): the median step frequency of every walking and stairs class of uci, motion and wisdm, the
peak of the spectrum of |acc| between 0.6 and 3.5 Hz (Hann window, zero-padded to 0.017 Hz bins), with its
interquartile range over windows.

Part 2: for each pair and method, the DIN models of the matrix folders' `runs/` (`finetune-SRC-METHOD-din-sK`;
for a target with its own window profile, such as hhar's acc-only z-normalised windows, the runs trained on that
profile, `finetune-SRC-METHOD-din-w128accz-sK`) score the target as recorded and replayed at other speeds
(`--speeds`; crosshar.augment.replay, the time warp's own resampling), exactly as `crosshar matrix` scores a cell.
A model that has learnt the source's cadence as a class cue gains when the target is brought to the source's
cadence; for a target whose sampling rate is not recorded (hhar), a replay x s is that target read as if recorded
at s times the assumed rate.

Writes `<out>.md` (both tables) and prints them.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from crosshar import config as C
from crosshar.augment import replay
from crosshar.data.store import prepare
from crosshar.evaluate.matrix import target_profile, window_tag
from crosshar.inference import score
from crosshar.models import classifier as clf

DATASETS = ("uci", "motion", "wisdm")
GAIT = ("walking", "upstairs", "downstairs", "stairs")
SPEEDS = (1.0, 0.8, 0.9, 1.1, 1.2)


def step_frequency(X: np.ndarray, rate_hz: float) -> np.ndarray:
    """(N, T, C) windows (acc in the first 3 channels) -> (N,) step frequency in Hz: the spectral peak of
    |acc| (mean removed) between 0.6 and 3.5 Hz."""
    a = np.linalg.norm(X[..., :3], axis=-1)
    a = (a - a.mean(1, keepdims=True)) * np.hanning(a.shape[1])
    n = 60 * int(rate_hz)
    spec = np.abs(np.fft.rfft(a, n=n, axis=1))
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    band = (f > 0.6) & (f < 3.5)
    return f[band][spec[:, band].argmax(1)]


def frequency_table() -> list[str]:
    w = C.load("window")
    L = ["| dataset | class | windows | step frequency (Hz), median | interquartile range |", "|---|---|---|---|---|"]
    for d in DATASETS:
        ws = prepare(d, None, w)
        for c in GAIT:
            idx = np.flatnonzero(ws.labels == c)
            if len(idx):
                f = step_frequency(ws.X[idx], w.rate_hz)
                L.append(f"| {d} | {c} | {len(idx)} | {np.median(f):.2f} | {np.percentile(f, 25):.2f}-{np.percentile(f, 75):.2f} |")
    return L


def replay_table(runs: list[Path], methods: list[str], pairs: list[tuple[str, str]], seeds: int,
                 speeds: tuple[float, ...] = SPEEDS) -> list[str]:
    head = " | ".join(f"x{s:g}" for s in speeds)
    L = [f"| source → target | method | seeds | {head} |", "|---|---|---|" + "---|" * len(speeds)]
    for s, t in pairs:
        window = target_profile(t)
        tws = prepare(t, None, window)
        for m in methods:
            f1 = []
            for k in range(seeds):
                name = f"finetune-{s}-{m}-din{window_tag(window)}-s{k}"
                run = next((r / name for r in runs if (r / name).is_dir()), None)
                if run is None:
                    continue
                model, meta = clf.load(run)
                row = []
                for sp in speeds:
                    fast = copy.copy(tws)
                    fast.X = replay(torch.from_numpy(tws.X), sp).numpy()
                    row.append(score(model, meta, fast)[0]["macro_f1"])
                f1.append(row)
            if f1:
                L.append(f"| {s} → {t} | {m} | {len(f1)} | " + " | ".join(f"{100 * v:.1f}" for v in np.mean(f1, 0)) + " |")
                print(L[-1], flush=True)
    return L


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="matrix runs/ folders, searched in order")
    ap.add_argument("--methods", default="crosshar,scratch")
    ap.add_argument("--pairs", default="wisdm:uci,uci:motion", help="SRC:TARGET,...")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--speeds", default=",".join(f"{s:g}" for s in SPEEDS), help="replay speeds, the first x1")
    ap.add_argument("--out", type=Path, default=Path("results/cadence"))
    a = ap.parse_args()
    pairs = [tuple(p.split(":")) for p in a.pairs.split(",")]
    freq = frequency_table()
    print("\n".join(freq), flush=True)
    speeds = tuple(float(v) for v in a.speeds.split(","))
    rep = replay_table(a.runs, a.methods.split(","), pairs, a.seeds, speeds)
    text = ["# Cadence: step frequencies, and the target replayed faster or slower", "",
            f"Regenerate: `python benchmarks/cadence_check.py {' '.join(map(str, a.runs))} --methods {a.methods} "
            f"--pairs {a.pairs} --seeds {a.seeds} --speeds {a.speeds} --out {a.out}`", "",
            "Step frequency of the gait classes (the spectral peak of |acc| between 0.6 and 3.5 Hz, every window):", "",
            *freq, "", "Macro-F1 (%) of the matrix's DIN models, mean over seeds, on the target as recorded (x1) and "
            "replayed at other speeds (crosshar.augment.replay):", "", *rep, ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
