"""`crosshar matrix`: every directed pair x method x head x seed, resumable, with a markdown report.

Methods (side by side, same data, same heads, same label rate):
  scratch      supervised from scratch on the source, head on raw windows, no augmentation
  scratch_aug  the same with physics-based augmentation
  mask         masked-reconstruction-only pretraining (LIMU-BERT-like), frozen encoder + head
  contrast     contrastive-only pretraining, frozen encoder + head
  crosshar     hierarchical pretraining (masked, then masked + contrastive) with augmentation
  oracle       in-domain ceiling: the crosshar pipeline trained on the target's own training subjects
               and tested on its held-out subjects
Each finished cell is appended to rows.jsonl; a rerun skips what is there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from crosshar import config as C
from crosshar.data.store import atomic_write_bytes, prepare
from crosshar.evaluate import guard
from crosshar.evaluate.run import score
from crosshar.models import classifier as clf

METHODS = ("scratch", "scratch_aug", "mask", "contrast", "crosshar", "oracle")
PRETRAINED = {"mask": "mask", "contrast": "contrast", "crosshar": "crosshar", "oracle": "crosshar"}


@dataclass(frozen=True)
class MatrixConfig:
    datasets: tuple[str, ...]
    heads: tuple[str, ...]
    seeds: int = 3
    label_rate: float = 0.1
    label_space: str = "crosshar4"
    methods: tuple[str, ...] = METHODS
    quick: bool = False
    pretrain_epochs: int | None = None  # None: configs/pretrain.toml (quick: 6)
    finetune_epochs: int | None = None  # None: configs/finetune.toml (quick: 12)
    device: str = "cpu"  # where training and scoring run (crosshar.device.resolve_device)


REF_WINDOWS = 1700  # the schedule in configs/pretrain.toml is sized for ~1,700 windows (UCI)


def _pretrain_cfg(method: str, mc: MatrixConfig, seed: int, n_windows: int = REF_WINDOWS):
    """The method's pretraining config. Epochs shrink for larger datasets so that every source gets
    about the same number of optimiser steps (WISDM has 6x UCI's windows)."""
    p = C.load("pretrain", seed=seed)
    total = mc.pretrain_epochs or (6 if mc.quick else p.epochs)
    total = max(2, round(total * min(1.0, REF_WINDOWS / max(n_windows, 1))))
    if method == "mask":
        return p.replace(stage1_epochs=total, stage2_epochs=0)
    if method == "contrast":
        # stage 2 only, reconstruction weight 0: NT-Xent alone
        return p.replace(stage1_epochs=0, stage2_epochs=total, w_mse=0.0, w_contrast=1.0)
    s1 = total // 2
    return p.replace(stage1_epochs=s1, stage2_epochs=total - s1)


def _done(path: Path) -> bool:
    f = path / "run.json"
    return f.is_file() and json.loads(f.read_text()).get("finished", False)


def pretrain_run(root: Path, source: str, method: str, seed: int, mc: MatrixConfig, log) -> Path:
    from crosshar.pretrain.run import PretrainJob, run

    d = root / "runs" / f"pretrain-{source}-{method}-s{seed}"
    if _done(d):
        return d
    n = len(prepare(source, None, C.load("window")))
    job = PretrainJob((source,), C.load("window"), C.load("encoder"), C.load("augment"), _pretrain_cfg(method, mc, seed, n))
    log(f"pretraining {method} on {source} (seed {seed})")
    return run(job, out=d, resume=(d / "last.pt").is_file(), log=lambda *_: None, progress=False, device=mc.device)


def finetune_run(root: Path, source: str, method: str, head: str, seed: int, mc: MatrixConfig, log,
                 encoder: Path | None, exclude: tuple[str, ...] = ()) -> Path:
    from crosshar.finetune.run import FinetuneJob, run
    from crosshar.finetune.setup import source_classes

    d = root / "runs" / f"finetune-{source}-{method}-{head}-s{seed}"
    if _done(d) and (d / "best.pt").is_file():
        return d
    if d.exists():
        import shutil

        shutil.rmtree(d)  # an interrupted finetune is cheap: start it again
    window = C.load("window")
    fcfg = C.load("finetune", head=head, label_rate=mc.label_rate, seed=seed,
                  augment=method != "scratch", freeze=True,
                  epochs=mc.finetune_epochs or (12 if mc.quick else None))
    classes = source_classes(mc.label_space, (source,), window, None)
    job = FinetuneJob((source,), window, fcfg, C.load("augment_finetune"), classes, mc.label_space,
                      None if encoder is None else str(encoder), C.head_config(head), exclude_subjects=exclude)
    return run(job, out=d, log=lambda *_: None, progress=False, device=mc.device)


def run_matrix(mc: MatrixConfig, root: Path, log: Callable[[str], None] = print) -> Path:
    """Run every missing cell, then write report.md, rows.jsonl and plots under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    rows_path = root / "rows.jsonl"
    rows = [json.loads(l) for l in rows_path.read_text().splitlines() if l.strip()] if rows_path.is_file() else []
    have = {(r["source"], r["target"], r["method"], r["head"], r["seed"]) for r in rows}
    t_start = time.time()
    windows = {d: prepare(d, None, C.load("window")) for d in mc.datasets}
    for seed in range(mc.seeds):
        for source in mc.datasets:
            for method in mc.methods:
                for head in mc.heads:
                    targets = [source] if method == "oracle" else [t for t in mc.datasets if t != source]
                    todo = [t for t in targets if (source if method != "oracle" else "-", t, method, head, seed) not in have]
                    if not todo:
                        continue
                    t0 = time.time()
                    enc = None
                    if method in PRETRAINED:
                        enc = pretrain_run(root, source, PRETRAINED[method], seed, mc, log)
                    exclude: tuple[str, ...] = ()
                    if method == "oracle":
                        split = json.loads((enc / "run.json").read_text())["split"]
                        exclude = tuple(split["val_subjects"])  # held out of pretraining too
                    ft = finetune_run(root, source, method, head, seed, mc, log, enc, exclude)
                    model, meta = clf.load(ft)
                    model.to(mc.device)
                    for target in todo:
                        tws = windows[target]
                        if method == "oracle":
                            tws = tws.by_subjects(exclude)
                        else:
                            guard.check_names(meta["source"], target)
                            guard.check_windows(windows[source], tws)
                        rep, *_ = score(model, meta, tws)
                        row = {"source": source if method != "oracle" else "-", "target": target, "method": method,
                               "head": head, "seed": seed, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                               "weighted_f1": rep["weighted_f1"], "classes": rep["classes"], "n": rep["n"],
                               "source_val_f1": json.loads((ft / "run.json").read_text())["best"]["macro_f1"],
                               "seconds": round(time.time() - t0, 1)}
                        rows.append(row)
                        with open(rows_path, "a") as f:
                            f.write(json.dumps(row) + "\n")
                        log(f"{row['source']:>6} -> {target:<6} {method:<11} {head:<12} seed {seed}: "
                            f"macro-F1 {rep['macro_f1']:.3f} acc {rep['accuracy']:.3f}")
    wall = time.time() - t_start
    write_report(mc, rows, root, wall)
    try:
        embedding_plot(mc, root, windows)
    except Exception as e:  # noqa: BLE001  (the plot is a nicety; the report is written)
        log(f"embedding plot skipped: {e}")
    return root / "report.md"


def _ms(v: list[float]) -> str:
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" if v else "-"


def write_report(mc: MatrixConfig, rows: list[dict], root: Path, wall: float) -> None:
    import platform

    L = [f"# Cross-dataset matrix: {', '.join(mc.datasets)}", "",
         f"Heads {', '.join(mc.heads)}; {mc.seeds} seed(s); label rate {mc.label_rate:.0%} of the source training "
         f"windows; label space {mc.label_space} (intersected per pair; stairs merged whenever wisdm is involved). "
         f"Macro-F1 and accuracy in %, mean ± std over seeds. {'QUICK setting (short schedules). ' if mc.quick else ''}"
         f"Wall time of this invocation: {wall / 60:.1f} min on {platform.node() or 'this machine'} "
         f"({__import__('os').cpu_count()} CPU cores).", ""]
    pairs = sorted({(r["source"], r["target"]) for r in rows if r["method"] != "oracle"})
    for head in mc.heads:
        L += [f"## Head: {head}", "", "| source → target | " + " | ".join(m for m in mc.methods if m != "oracle") + " | oracle (target) |",
              "|---|" + "---|" * len(mc.methods)]
        for s, t in pairs:
            cells = []
            for m in mc.methods:
                if m == "oracle":
                    continue
                cells.append(_ms([r["macro_f1"] for r in rows if (r["source"], r["target"], r["method"], r["head"]) == (s, t, m, head)]))
            orc = _ms([r["macro_f1"] for r in rows if (r["target"], r["method"], r["head"]) == (t, "oracle", head)])
            L.append(f"| {s} → {t} | " + " | ".join(cells) + f" | {orc} |")
        L.append("")
        avg = {m: [np.mean([r["macro_f1"] for r in rows if (r["source"], r["target"], r["method"], r["head"]) == (s, t, m, head)] or [np.nan]) for s, t in pairs]
               for m in mc.methods if m != "oracle"}
        orc_pair = [np.mean([r["macro_f1"] for r in rows if (r["target"], r["method"], r["head"]) == (t, "oracle", head)] or [np.nan]) for s, t in pairs]
        L.append("Average macro-F1 over pairs: " + ", ".join(f"{m} {100 * np.nanmean(v):.1f}" for m, v in avg.items())
                 + (f", oracle {100 * np.nanmean(orc_pair):.1f}" if "oracle" in mc.methods else ""))
        if "crosshar" in avg and "scratch" in avg:
            gain = 100 * (np.nanmean(avg["crosshar"]) - np.nanmean(avg["scratch"]))
            L.append("")
            L.append(f"- crosshar − scratch: **{gain:+.1f} points** of macro-F1 (target: ≥ +10)")
            if "oracle" in mc.methods:
                ratio = np.nanmean(np.array(avg["crosshar"]) / np.array(orc_pair))
                L.append(f"- crosshar / oracle: **{100 * ratio:.0f} %** (target: ≥ 90 %)")
        L.append("")
        acc = "| source → target | " + " | ".join(m for m in mc.methods if m != "oracle") + " |"
        L += ["Accuracy:", "", acc, "|---|" + "---|" * (len(mc.methods) - ("oracle" in mc.methods))]
        for s, t in pairs:
            L.append(f"| {s} → {t} | " + " | ".join(
                _ms([r["accuracy"] for r in rows if (r["source"], r["target"], r["method"], r["head"]) == (s, t, m, head)])
                for m in mc.methods if m != "oracle") + " |")
        L.append("")
    L += ["Embedding plot (PCA of mean-pooled embeddings, coloured by dataset and by class, random vs pretrained "
          "encoder): `embeddings.png`.", "",
          f"Command: `crosshar matrix --datasets {','.join(mc.datasets)} --heads {','.join(mc.heads)} --seeds {mc.seeds} "
          f"--label-rate {mc.label_rate}{' --quick' if mc.quick else ''}"
          f"{f' --pretrain-epochs {mc.pretrain_epochs}' if mc.pretrain_epochs else ''}"
          f"{f' --finetune-epochs {mc.finetune_epochs}' if mc.finetune_epochs else ''}"
          f"{f' --name {root.name}'}`", ""]
    atomic_write_bytes(root / "report.md", "\n".join(L).encode())


def embedding_plot(mc: MatrixConfig, root: Path, windows: dict) -> None:
    """PCA of mean-pooled embeddings, random-init vs pretrained encoder (crosshar, seed 0, first source)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from sklearn.decomposition import PCA

    from crosshar.data.labels import LabelSpace
    from crosshar.models.encoder import Encoder
    from crosshar.models.scaling import InputScaler
    from crosshar.pretrain.run import embed, load_encoder

    src = mc.datasets[0]
    d = root / "runs" / f"pretrain-{src}-crosshar-s0"
    if not _done(d):
        return
    enc, scaler, _ = load_encoder(d)
    torch.manual_seed(0)
    rand = Encoder(C.load("encoder"), n_channels=6).eval()
    rng = np.random.default_rng(0)
    space = LabelSpace.named(mc.label_space)
    Xs, ds, ys = [], [], []
    for name, ws in windows.items():
        idx = rng.choice(len(ws), min(400, len(ws)), replace=False)
        Xs.append(ws.X[idx])
        ds += [name] * len(idx)
        ys += [space.classes[c] if c >= 0 else "other" for c in space.encode(ws.labels[idx])]
    X = np.concatenate(Xs)
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for row, (title, e, sc) in enumerate([("random encoder", rand, InputScaler("physical", 6)), (f"pretrained on {src} (crosshar)", enc, scaler)]):
        Z = PCA(2, random_state=0).fit_transform(embed(e, sc, X).mean(1))
        for col, (lab, keyname) in enumerate([(np.array(ds), "dataset"), (np.array(ys), "class")]):
            ax = axes[row, col]
            for v in sorted(set(lab)):
                m = lab == v
                ax.scatter(Z[m, 0], Z[m, 1], s=4, alpha=0.5, label=v)
            ax.set_title(f"{title}: coloured by {keyname}", fontsize=9)
            ax.legend(markerscale=3, fontsize=7)
    fig.tight_layout()
    fig.savefig(root / "embeddings.png", dpi=90)
    plt.close(fig)
