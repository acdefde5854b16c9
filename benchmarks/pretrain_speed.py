"""Pretraining speed and quality: windows/s per stage and total wall time, on the CPU or a GPU.

    python benchmarks/pretrain_speed.py [-d uci] [--threads 2] [--epochs N] [--device cpu|cuda] [--seed S]

Runs the default `crosshar pretrain -d uci` (configs/pretrain.toml) on the source's training
subjects and prints a table; the target is <= 10 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from crosshar import config as C
from crosshar.train.pretrain import PretrainJob, run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-d", "--dataset", default="uci")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'cuda:N' or 'auto' (crosshar.device.resolve_device)")
    ap.add_argument("--seed", type=int, default=None, help="default: configs/pretrain.toml's")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # restored after: a caller's process keeps its own
    try:
        _measure(args)
    finally:
        torch.set_num_threads(threads)


def _measure(args: argparse.Namespace) -> None:
    p = C.load("pretrain")
    if args.epochs:
        s1 = args.epochs // 2
        p = p.replace(stage1_epochs=s1, stage2_epochs=args.epochs - s1)
    if args.seed is not None:
        p = p.replace(seed=args.seed)
    job = PretrainJob(tuple(args.dataset.split(",")), C.load("window"), C.load("encoder"), C.load("augment"), p)
    t0 = time.time()
    d = run(job, out=args.out, progress=False, log=lambda *a: None, device=args.device)
    wall = time.time() - t0
    info = json.loads((d / "run.json").read_text())
    hist = info["history"]
    print(f"pretraining {args.dataset}: {info['n_train']:,} training windows, {info['n_val']:,} validation windows, "
          f"{p.stage1_epochs}+{p.stage2_epochs} epochs, batch {p.batch_size}, {args.threads} threads, device {args.device}")
    print(f"{'stage':>5} {'epochs':>6} {'windows/s':>10} {'seconds':>8} {'last val loss':>14}")
    for st in (1, 2):
        h = [r for r in hist if r["stage"] == st]
        if h:
            wps = sum(info["n_train"] for _ in h) / sum(r["seconds"] for r in h)
            print(f"{st:>5} {len(h):>6} {wps:>10,.0f} {sum(r['seconds'] for r in h):>8.1f} {h[-1]['val']['loss']:>14.4f}")
    print(f"total wall time {wall:.1f} s ({wall / 60:.1f} min); run folder {d}")


if __name__ == "__main__":
    main()
