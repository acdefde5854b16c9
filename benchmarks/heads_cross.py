"""Which head transfers best? Every registered head finetuned on one pretrained encoder, scored on
unseen targets. This is the benchmark behind the default head (configs/finetune.toml).

    python benchmarks/heads_cross.py --encoder runs/pretrain/uci-XXXX [-d uci] [--targets motion,wisdm]
        [--heads din,danhar] [--seeds 1] [--out results/heads_cross.md]

Model selection uses held-out source subjects only; the targets are scored once at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from crosshar import config as C
from crosshar.data.store import prepare
from crosshar.inference import score
from crosshar.train.finetune import FinetuneJob, run
from crosshar.train.finetune import default_window, source_classes
from crosshar.models import classifier as clf
from crosshar.models.heads import list_heads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True, help="pretraining run folder")
    ap.add_argument("-d", "--dataset", default="uci")
    ap.add_argument("--targets", default="motion,wisdm")
    ap.add_argument("--heads", default=",".join(list_heads()))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--label-rate", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/heads_cross.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    src = (args.dataset,)
    w = default_window(args.encoder)
    classes = source_classes("crosshar4", src, w, None)
    targets = args.targets.split(",")
    rows = []
    for head in args.heads.split(","):
        per_seed = []
        for seed in range(args.seeds):
            # each head on its own schedule where its config file has one (the GRU's), as `crosshar finetune` trains it
            head_cfg, fcfg = C.head_preset(head, "default", C.load("finetune", head=head, label_rate=args.label_rate, seed=seed))
            job = FinetuneJob(src, w, fcfg, C.load("augment_finetune"), classes, "crosshar4", args.encoder, head_cfg)
            t0 = time.time()
            d = run(job, out=Path(f"runs/heads_cross/{head}-s{seed}"), log=lambda *a: None, progress=False)
            model, meta = clf.load(d)
            f1 = {t: score(model, meta, prepare(t, None, w))[0]["macro_f1"] for t in targets}
            per_seed.append({"source_val": json.loads((d / "run.json").read_text())["best"]["macro_f1"], **f1,
                             "seconds": time.time() - t0})
        row = {"head": head, **{k: float(np.mean([p[k] for p in per_seed])) for k in per_seed[0]}}
        row["mean_target"] = float(np.mean([row[t] for t in targets]))
        rows.append(row)
        print(f"{head:14s} source-val {row['source_val']:.3f}  " + "  ".join(f"{t} {row[t]:.3f}" for t in targets)
              + f"  mean {row['mean_target']:.3f}", flush=True)
    rows.sort(key=lambda r: -r["mean_target"])
    lines = [f"# Heads on one pretrained encoder: {args.dataset} → {', '.join(targets)} (macro-F1, {args.seeds} seed(s), "
             f"{args.label_rate:.0%} of the source labels)", "",
             f"Command: `python benchmarks/heads_cross.py --encoder {args.encoder} -d {args.dataset} --targets {args.targets} "
             f"--seeds {args.seeds}`", "",
             "| head | source validation | " + " | ".join(targets) + " | mean over targets |", "|---|---|" + "---|" * (len(targets) + 1)]
    for r in rows:
        lines.append(f"| {r['head']} | {r['source_val']:.3f} | " + " | ".join(f"{r[t]:.3f}" for t in targets) + f" | {r['mean_target']:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
