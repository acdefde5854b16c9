"""How far, and which way, each class's windows turn about the vertical: the stairwell behind the mirror.

    python benchmarks/turning_check.py [-d uci,motion,wisdm] [--write results/turning.md]

Per window, the net turn about gravity over the window: the vertical component of the angular velocity in the world
frame (`crosshar.models.frame.world_vertical_align`, channel 5: rad/s about "up", positive counterclockwise seen
from above), averaged over the window and multiplied by its length. Per dataset and class: the windows, the median
(and interquartile range) of the turn's size in degrees, and the share of windows turning counterclockwise. A turn's
sense is the one quantity of the world-vertical frame that a mirror image reverses (the acc channels and the
rotation's size are unchanged), so a class whose sense differs between two datasets is what the mirror augmentation
(`mirror_p`) has to take away.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = ("walking", "upstairs", "downstairs", "stairs", "sitting", "standing")


def turning(X: np.ndarray, rate_hz: float = 20.0) -> np.ndarray:
    """(n, T, 6) physical windows -> (n,) net turn about the vertical over each window, degrees (+: counterclockwise
    seen from above)."""
    import torch

    from crosshar.models.frame import world_vertical_align

    with torch.no_grad():
        w = world_vertical_align(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), rate_hz).numpy()
    return np.degrees(w[..., 5].astype(np.float64).mean(1) * X.shape[1] / rate_hz)


def table(turns: dict[str, dict[str, np.ndarray]]) -> str:
    """Markdown from dataset -> class -> (n,) signed turns in degrees."""
    lines = ["| dataset | class | windows | turn over the window, median (IQR), degrees | counterclockwise |",
             "|---|---|---:|---|---:|"]
    for d, by_class in turns.items():
        for c, t in by_class.items():
            q25, q50, q75 = np.percentile(np.abs(t), [25, 50, 75])
            lines.append(f"| {d} | {c} | {len(t)} | {q50:.0f} ({q25:.0f}-{q75:.0f}) | {100 * np.mean(t > 0):.0f} % |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--datasets", default="uci,motion,wisdm")
    ap.add_argument("--write", type=Path, help="write the markdown report here")
    a = ap.parse_args()
    from crosshar import config as C
    from crosshar.data.sources import load_sources

    win = C.load("window")
    turns: dict[str, dict[str, np.ndarray]] = {}
    for d in a.datasets.split(","):
        ws = load_sources([d], None, win)
        t = turning(ws.X, win.rate_hz)
        turns[d] = {c: t[ws.labels == c] for c in CLASSES if np.any(ws.labels == c)}
    text = table(turns)
    print(text)
    if a.write:
        a.write.write_text("# Which way the windows turn: the stairwell behind the mirror\n\nRegenerate: "
                           f"`python benchmarks/turning_check.py -d {a.datasets} --write {a.write}`\n\n"
                           + __doc__.split("\n\n", 2)[2].strip() + f"\n\n{text}\n")


if __name__ == "__main__":
    main()
