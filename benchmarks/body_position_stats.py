"""How strongly each dataset's body position moves: the measurement behind body_amplitude's spread.

    CROSSHAR_DATA=../shared/data python benchmarks/body_position_stats.py [--write results/body_position.md]

Per dataset and locomotion class, in the gravity frame every model uses: the mean over windows of the
per-window standard deviation of vertical acc, of horizontal acc, and of the gyro's norm (rad/s).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from crosshar.data.store import prepare
from crosshar.models.frame import gravity_align

CLASSES = ("walking", "upstairs", "downstairs", "stairs")


def table(datasets: list[str]) -> str:
    L = ["| dataset | class | windows | vertical acc std (m/s²) | horizontal acc std (m/s²) | gyro std (rad/s) |",
         "|---|---|---:|---:|---:|---:|"]
    for name in datasets:
        ws = prepare(name)
        X = gravity_align(torch.as_tensor(ws.X)).numpy()
        for c in CLASSES:
            x = X[ws.labels == c]
            if len(x):
                L.append(f"| {name} | {c} | {len(x)} | {x[:, :, 2].std(1).mean():.2f} | {x[:, :, :2].std(1).mean():.2f} | "
                         f"{np.linalg.norm(x[:, :, 3:].std(1), axis=1).mean():.2f} |")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--datasets", default="uci,motion,wisdm")
    ap.add_argument("--write", type=Path)
    a = ap.parse_args()
    text = ("# Body position: motion amplitude per dataset\n\n" + __doc__.split("\n\n")[2].strip() + "\n\n"
            + table(a.datasets.split(",")) + "\n")
    if a.write:
        a.write.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
