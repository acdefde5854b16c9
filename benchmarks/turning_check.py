"""How far, and which way, each class's windows turn about the vertical: the stairwell behind the mirror.

    python benchmarks/turning_check.py [-d uci,motion,wisdm] [--write results/turning.md]

Per window, the net turn about gravity over the window (`crosshar.data.checks.window_turns`, the figure `crosshar data
prepare` checks and warns about): the rotation rate about the window's gravity direction (its mean acc, which points
up), positive counterclockwise seen from above, averaged over the window and multiplied by its length. Per dataset and
class: the windows, the median (and interquartile range) of the turn's size in degrees, and the share of windows
turning counterclockwise. A turn's sense is what a mirror image reverses while the acc it leaves unchanged in size and
vertical component, so a class whose sense differs between two datasets is what the mirror augmentation (`mirror_p`)
has to take away.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = ("walking", "upstairs", "downstairs", "stairs", "sitting", "standing")


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
    from crosshar.data.checks import window_turns
    from crosshar.data.sources import load_sources

    win = C.load("window")
    turns: dict[str, dict[str, np.ndarray]] = {}
    for d in a.datasets.split(","):
        ws = load_sources([d], None, win)
        t = window_turns(ws.X, win.rate_hz)
        turns[d] = {c: t[ws.labels == c] for c in CLASSES if np.any(ws.labels == c)}
    text = table(turns)
    print(text)
    if a.write:
        a.write.write_text("# Which way the windows turn: the stairwell behind the mirror\n\nRegenerate: "
                           f"`python benchmarks/turning_check.py -d {a.datasets} --write {a.write}`\n\n"
                           + __doc__.split("\n\n", 2)[2].strip() + f"\n\n{text}\n")


if __name__ == "__main__":
    main()
