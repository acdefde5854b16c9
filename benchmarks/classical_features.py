"""A classical reference for the cross-dataset matrix: hand-made features of each window and a linear classifier.

    python benchmarks/classical_features.py [--seeds 3] [--matrix results/matrix/rows.jsonl] [--write results/classical_features.md]

Each window is put in the world-vertical frame (`crosshar.models.frame.world_vertical_align`: per sample the horizontal
magnitude and the vertical component of acc and gyro, heading and device tilt gone; the vertical gyro's sign, which a
mirror image flips, is dropped too), and described per channel by its mean, log standard deviation, the quartiles and
median, its log power and the shape of its power spectrum (scipy's Hann periodogram in 15 log-spaced bands, each as a
log share of the power). A standardised logistic regression (scikit-learn) learns from 10 % of the source's training
labels (the subjects split as the matrix splits them, `split_by_subject` with the seed, 20 % held out and unused here;
`label_subset` draws the labelled windows in the pair's classes) and is scored on every window of the target, in the
pair's classes (stairs merged when WISDM is involved), macro-F1. No augmentation: the frame takes away what the
orientation augmentations vary. The table sets it beside the matrix's deep rows of the same pairs and seeds, and
beside the same features with the vertical gyro's sign kept (`signed`: which way the body turns about gravity, the
one quantity of the frame that a mirror image changes).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

BANDS = 15  # log-spaced bands of the power spectrum
CHANNELS = (0, 2, 3, 5)  # world-vertical frame: |acc_h|, acc_v, |gyro_h|, gyro_v (its sign dropped); 1 and 4 are zero


def features(X: np.ndarray, rate_hz: float = 20.0, signed: bool = False) -> np.ndarray:
    """(n, T, 6) physical windows -> (n, F) features in the world-vertical frame (see the module's doc); `signed`
    keeps the sign of the vertical gyro (the turning direction), which a mirror image flips."""
    import torch
    from scipy.signal import periodogram

    from crosshar.models.frame import world_vertical_align

    with torch.no_grad():
        w = world_vertical_align(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), rate_hz).numpy()
    x = w[..., list(CHANNELS)].astype(np.float64)
    if not signed:
        x[..., 3] = np.abs(x[..., 3])  # a mirror image flips the vertical rotation's sign
    _, P = periodogram(x, fs=rate_hz, window="hann", detrend="constant", axis=1)  # (n, F, c)
    edges = np.unique(np.round(np.geomspace(1, P.shape[1], BANDS + 1)).astype(int))
    bands = np.stack([P[:, a:b].sum(1) for a, b in itertools.pairwise(edges)], 1)  # (n, nb, c)
    power = bands.sum(1) + 1e-12  # (n, c)
    shape = np.log(bands / power[:, None] + 1e-6)
    q = np.percentile(x, [25, 50, 75], axis=1).transpose(1, 0, 2)  # (n, 3, c)
    return np.concatenate([x.mean(1), np.log(x.std(1) + 1e-6), np.log(power),
                           shape.reshape(len(x), -1), q.reshape(len(x), -1)], 1)


def score(source, target, seed: int, label_rate: float = 0.1, val_fraction: float = 0.2, signed: bool = False) -> float:
    """Macro-F1 on every target window of the classifier trained on `label_rate` of the source's training labels.
    source, target: WindowSets (crosshar.data.sources.load_sources)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from crosshar.data.labels import LabelSpace
    from crosshar.data.sources import split_by_subject
    from crosshar.data.splits import label_subset

    space = LabelSpace.named("crosshar4").intersect(set(source.labels.tolist()), set(target.labels.tolist()))
    train, _, _ = split_by_subject(source, val_fraction, seed)
    y = space.encode(train.labels)
    X, y = train.X[y >= 0], y[y >= 0]
    keep = label_subset(y, label_rate, seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(features(X[keep], signed=signed), y[keep])
    yt = space.encode(target.labels)
    return float(f1_score(yt[yt >= 0], model.predict(features(target.X[yt >= 0], signed=signed)), average="macro"))


def deep_rows(path: Path, seeds: int) -> dict[tuple[str, str, str], list[float]]:
    """(method, source, target) -> macro-F1 of the DIN cells of a matrix's rows.jsonl with seed < seeds."""
    out: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["head"] == "din" and int(r["seed"]) < seeds:
            out[(r["method"], r["source"], r["target"])].append(r["macro_f1"])
    return out


def table(res: dict[str, dict[tuple[str, str], list[float]]], deep: dict, methods: tuple[str, ...]) -> str:
    """Markdown: per pair each classical variant's mean macro-F1 (in %, `res`: variant -> pair -> per seed)
    beside the matrix's rows."""
    head = ["source → target", *res, *methods]
    pairs = sorted(next(iter(res.values())))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    means: dict[str, list[float]] = defaultdict(list)
    for s, t in pairs:
        cells = []
        for name, r in res.items():
            cells.append(f"{100 * np.mean(r[(s, t)]):.1f}")
            means[name].append(np.mean(r[(s, t)]))
        for m in methods:
            d = deep.get((m, s, t))
            cells.append(f"{100 * np.mean(d):.1f}" if d else "-")
            if d:
                means[m].append(np.mean(d))
        lines.append(f"| {s} → {t} | " + " | ".join(cells) + " |")
    lines.append("| **mean of the pairs** | " + " | ".join(
        f"**{100 * np.mean(means[k]):.1f}**" if len(means[k]) == len(pairs) else "-" for k in head[1:]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--datasets", default="uci,motion,wisdm")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--matrix", type=Path, default=Path("results/matrix/rows.jsonl"))
    ap.add_argument("--methods", default="scratch,crosshar,scratch_worldvert_mount")
    ap.add_argument("--write", type=Path, help="write the markdown report here")
    a = ap.parse_args()
    from crosshar import config as C
    from crosshar.data.sources import load_sources

    names = a.datasets.split(",")
    data = {d: load_sources([d], None, C.load("window")) for d in names}
    res: dict[str, dict[tuple[str, str], list[float]]] = {}
    for name, signed in (("classical features", False), ("classical, turning direction kept", True)):
        res[name] = {}
        for s, t in itertools.permutations(names, 2):
            res[name][(s, t)] = [score(data[s], data[t], seed, signed=signed) for seed in range(a.seeds)]
            print(f"{name}: {s} -> {t}: " + " ".join(f"{100 * v:.1f}" for v in res[name][(s, t)]), flush=True)
    deep = deep_rows(a.matrix, a.seeds) if a.matrix.is_file() else {}
    text = table(res, deep, tuple(a.methods.split(",")))
    print(text)
    if a.write:
        cmd = f"python benchmarks/classical_features.py --seeds {a.seeds} --write {a.write}"
        a.write.write_text(f"# A classical reference: hand-made features and a linear classifier\n\nRegenerate: `{cmd}`"
                           f" (the deep rows read from `{a.matrix}`, DIN, the same seeds).\n\n"
                           + __doc__.split("\n\n", 2)[2].strip() + "\n\nMacro-F1 in %, mean over seeds "
                           + f"{', '.join(map(str, range(a.seeds)))}.\n\n{text}\n")


if __name__ == "__main__":
    main()
