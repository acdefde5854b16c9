"""Cross-dataset macro-F1 against pretraining epochs: how long does pretraining need to be?

For each total epoch count E (split half/half between the stages), pretrain on the source with the
default configs, finetune the default head on 10 % of the source labels (frozen encoder, and with
--full also end to end), and score every window of each target. CPU seconds are process time.

    python benchmarks/epoch_curve.py -d uci --targets motion,wisdm --epochs 4,10,20,40 [--seed 0] [--full]
        [--out results/epoch_curve.md]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from crosshar import config as C
from crosshar.data.store import prepare
from crosshar.inference import score
from crosshar.train.finetune import FinetuneJob
from crosshar.train.finetune import run as finetune
from crosshar.train.finetune import source_classes
from crosshar.models import classifier as clf
from crosshar.train.pretrain import PretrainJob
from crosshar.train.pretrain import run as pretrain


def one(source: str, targets: list[str], epochs: int, seed: int, full: bool, root: Path) -> dict:
    window = C.load("window")
    c0 = time.process_time()
    p = C.load("pretrain", seed=seed)
    p = p.replace(stage1_epochs=epochs // 2, stage2_epochs=epochs - epochs // 2)
    enc = pretrain(PretrainJob((source,), window, C.load("encoder"), C.load("augment"), p),
                   out=root / f"pre-{epochs}-s{seed}", log=lambda *_: None, progress=False)
    c1 = time.process_time()
    fcfg = C.load("finetune", seed=seed, freeze=not full)
    job = FinetuneJob((source,), window, fcfg, C.load("augment_finetune"), source_classes("crosshar4", (source,), window, None),
                      "crosshar4", str(enc), C.head_config(fcfg.head))
    ft = finetune(job, out=root / f"ft-{epochs}-{'full' if full else 'frozen'}-s{seed}", log=lambda *_: None, progress=False)
    model, meta = clf.load(ft)
    row = {"epochs": epochs, "seed": seed, "finetune": "full" if full else "frozen",
           "pretrain_cpu_s": round(c1 - c0, 1), "total_cpu_s": None}
    for t in targets:
        rep, *_ = score(model, meta, prepare(t, None, window))
        row[t] = round(rep["macro_f1"], 3)
    row["total_cpu_s"] = round(time.process_time() - c0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-d", "--source", default="uci")
    ap.add_argument("--targets", default="motion,wisdm")
    ap.add_argument("--epochs", default="4,10,20,40")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="finetune the encoder end to end too")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="runs/epoch_curve")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    targets = a.targets.split(",")
    rows = []
    for e in (int(x) for x in a.epochs.split(",")):
        for full in ([False, True] if a.full else [False]):
            rows.append(one(a.source, targets, e, a.seed, full, Path(a.work)))
            print(json.dumps(rows[-1]), flush=True)
    lines = [f"Source {a.source}, seed {a.seed}, default configs, 10 % labels; macro-F1 on every target window.", "",
             "| pretraining epochs | finetune | " + " | ".join(targets) + " | pretraining CPU s | total CPU s |",
             "|---|---|" + "---|" * len(targets) + "---|---|"]
    lines += [f"| {r['epochs']} | {r['finetune']} | " + " | ".join(f"{r[t]:.3f}" for t in targets)
              + f" | {r['pretrain_cpu_s']} | {r['total_cpu_s']} |" for r in rows]
    print("\n".join(lines))
    if a.out:
        Path(a.out).write_text("\n".join(lines) + "\n")
        Path(a.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
