"""Within-dataset anchors: every head trained supervised on the standard UCI-HAR split.

Standard protocol: test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24, the other 21 train; 6 classes;
128-sample windows at 50 Hz with 50 % overlap; total acceleration + gyroscope. Model selection
(early stopping) uses held-out *training* subjects; the test subjects are scored once at the end.

    python benchmarks/anchors_uci.py [--heads danhar,din] [--epochs 30] [--out results/anchors_uci.md]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from crosshar import config as C
from crosshar.tools.complexity import count_params, latency_ms, macs_per_window
from crosshar.config import WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.readers.uci import TEST_SUBJECTS as UCI_HAR_TEST_SUBJECTS
from crosshar.data.store import prepare
from crosshar.inference import evaluate
from crosshar.train.finetune import FinetuneJob, run
from crosshar.models import classifier as clf
from crosshar.models.heads import create_head, list_heads

PAPERS = {  # figures the papers report (UCI-HAR only where they report it)
    "mag_res2net": "94.44 acc / 94.38 macro-F1 (UCI-HAR, paper)",
    "danhar": "not reported on UCI-HAR (WISDM, PAMAP2, OPPORTUNITY...)",
    "din": "not reported on UCI-HAR (PAMAP2, WISDM, OPPORTUNITY)",
    "cnn_lstm_attn": "not reported on UCI-HAR (MHEALTH)",
    "transformer": "CrossHAR classifier (no within-dataset figure)",
    "gru": "LIMU-BERT classifier (no within-dataset figure)",
    "linear": "probe",
}


WINDOW = WindowConfig(rate_hz=50.0, window=128, stride=64)  # the papers' UCI-HAR windows


def standard_split():
    """UCI-HAR's standard split: (all windows, the 6-class space, test subjects, test windows, test labels)."""
    ws = prepare("uci", None, WINDOW)
    space = LabelSpace.named("locomotion6")
    test_subjects = tuple(s for s in np.unique(ws.subjects) if int(s.split(":")[1]) in UCI_HAR_TEST_SUBJECTS)
    test = ws.by_subjects(test_subjects)
    yt = space.encode(test.labels)
    keep = np.flatnonzero(yt >= 0)
    return ws, space, test_subjects, test.subset(keep), yt[keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", default=",".join(list_heads()))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="results/anchors_uci.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w = WINDOW
    ws, space, test_subjects, test, yt = standard_split()
    rows = []
    for head in args.heads.split(","):
        fcfg = C.load("finetune", head=head, label_rate=1.0, augment=False, epochs=args.epochs, seed=args.seed,
                      patience=10, batch_size=64)
        job = FinetuneJob(("uci",), w, fcfg, C.load("augment"), space.classes, "locomotion6", None,
                          C.head_config(head), exclude_subjects=test_subjects)
        t0 = time.time()
        d = run(job, out=Path(f"runs/anchors/{head}-s{args.seed}"), log=lambda *a: None, progress=False)
        secs = time.time() - t0
        model, meta = clf.load(d)
        rep = evaluate(model, test.X, yt, list(space.classes))
        h = create_head(head, 6, 6, seq_len=128, **C.head_config(head)).eval()
        row = {"head": head, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
               "val_macro_f1": json.loads((d / "run.json").read_text())["best"]["macro_f1"],
               "params": count_params(h), "macs": macs_per_window(h, (128, 6)),
               "latency_ms": latency_ms(h, (128, 6), batch=1, threads=1), "train_s": secs}
        rows.append(row)
        print(f"{head:14s} acc {100 * row['accuracy']:.2f}  macro-F1 {100 * row['macro_f1']:.2f}  "
              f"params {row['params']:,}  MACs {row['macs']:,}  {row['latency_ms']:.2f} ms  train {secs:.0f}s", flush=True)
    lines = ["# Within-dataset anchors: standard UCI-HAR split (21 train / 9 test subjects, 6 classes, "
             "128 samples at 50 Hz, 50 % overlap, total acc + gyro)", "",
             f"Command: `python benchmarks/anchors_uci.py --heads {args.heads} --epochs {args.epochs} --seed {args.seed}`; "
             f"{len(ws.by_subjects(set(ws.subjects) - set(test_subjects)))} train-subject windows, {len(test)} test windows. "
             "Supervised on raw windows (no encoder), all training labels, early stopping on held-out training subjects. "
             "Latency: batch 1, one thread, PyTorch eager.", "",
             "| head | accuracy % | macro-F1 % | params | MACs/window | ms/window | train s | paper |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['head']} | {100 * r['accuracy']:.2f} | {100 * r['macro_f1']:.2f} | {r['params']:,} | {r['macs']:,} | "
                     f"{r['latency_ms']:.2f} | {r['train_s']:.0f} | {PAPERS.get(r['head'], '')} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
