"""The negated-target experiment: is a source model's error on a target a mirror image?

Scores a finetuned model on every window of a target as recorded, with its three acc channels
negated, and with its three gyro channels negated. After the gravity frame, negating acc is a
consistent reflection of one horizontal axis (a mirror image of the body), and so is negating the
gyro, so a large gain from either says that the source and target differ by handedness. A model
trained with the mirror augmentation should score about the same on all three.

    python benchmarks/mirror_check.py --run runs/finetune/uci-... -td motion [-td wisdm] [--out results/mirror_check.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crosshar.config import WindowConfig
from crosshar.data.store import prepare
from crosshar.inference import score
from crosshar.models import classifier as clf


def variants(X: np.ndarray) -> dict[str, np.ndarray]:
    """As recorded, acc negated, gyro negated: (N, T, 6) each."""
    neg_acc, neg_gyro = X.copy(), X.copy()
    neg_acc[..., :3] *= -1
    neg_gyro[..., 3:] *= -1
    return {"as recorded": X, "acc negated": neg_acc, "gyro negated": neg_gyro}


def check(run: str | Path, target: str, data_dir=None) -> list[dict]:
    model, meta = clf.load(run)
    ws = prepare(target, data_dir, WindowConfig.from_dict(meta["window"]))
    rows = []
    for name, X in variants(ws.X).items():
        v = ws.subset(np.arange(len(ws)))
        v.X = X
        rep, *_ = score(model, meta, v)
        per = {c: round(p["f1"], 3) for c, p in rep["per_class"].items()}
        rows.append({"target": target, "variant": name, "macro_f1": round(rep["macro_f1"], 3),
                     "accuracy": round(rep["accuracy"], 3), "upstairs": per.get("upstairs"),
                     "downstairs": per.get("downstairs")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="finetuning run folder or best.pt")
    ap.add_argument("-td", "--target", action="append", required=True)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="markdown file to write (a .json beside it)")
    a = ap.parse_args()
    rows = [r for t in a.target for r in check(a.run, t, a.data_dir)]
    lines = [f"Model: `{a.run}`", "", "| target | variant | macro-F1 | accuracy | upstairs F1 | downstairs F1 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['variant']} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {r['upstairs']} | "
              f"{r['downstairs']} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
        Path(a.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
