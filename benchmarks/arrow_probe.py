"""Which way does a window run? An arrow-of-time probe trained on one dataset, scored on others.

    CROSSHAR_DATA=../shared/data python benchmarks/arrow_probe.py -d uci --targets motion,wisdm [--write results/arrow_probe.md]
        [--models encoder_conv --append]   # more models beside the rows already in results/arrow_probe.jsonl

A classifier learns, from the gait windows (walking, upstairs, downstairs, stairs) of the source's training
subjects, whether a window was played backwards (`crosshar.models.frame.reverse_time`: acc(-t) and -w(-t),
a rigid-body reading either way, so only the gait's dynamics tell). It is scored on the source's held-out
subjects and on every gait window of each target, each window once forwards and once backwards (chance:
50 %). The models read the input pipeline's window (gravity frame, physical units): a small 1-D CNN
(`cnn`), and crosshar's encoder (random weights, trained here) with a linear probe on its mean embedding, the
arrow loss of pretraining (`PretrainConfig.arrow`), with its default per-step Linear stem (`encoder`) or the
convolutional stem (`encoder_conv`, `EncoderConfig.stem = "conv"`). Each trains with the finetuning augmentation, with and without
the left/right mirror. A cue that tells the arrow of time on the source but reverses it on a target is the
source's handedness, not the motion.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crosshar.augment import Augmenter
from crosshar.config import load
from crosshar.data.sources import load_sources, split_by_subject
from crosshar.models import Encoder
from crosshar.models.frame import reverse_time
from crosshar.models.scaling import InputPipeline

GAIT = ("walking", "upstairs", "downstairs", "stairs")


class CNN(nn.Module):
    """(B, T, C) -> (B,) logit: three convolutions of width 5, mean over time, a linear read-out."""

    def __init__(self, c: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(c, width, 5, padding=2), nn.ReLU(), nn.Conv1d(width, width, 5, padding=2),
                                 nn.ReLU(), nn.Conv1d(width, width, 5, padding=2), nn.ReLU())
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x.transpose(1, 2)).mean(-1)).squeeze(-1)


class EncoderProbe(nn.Module):
    """(B, T, C) -> (B,) logit: crosshar's encoder, its mean embedding, a linear probe (the pretraining's arrow head)."""

    def __init__(self, c: int, t: int, stem: str = "linear"):
        super().__init__()
        self.encoder = Encoder(load("encoder").replace(stem=stem), n_channels=c, max_len=t)
        self.out = nn.Linear(self.encoder.embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(x).mean(1)).squeeze(-1)


def gait(ws) -> tuple[torch.Tensor, np.ndarray]:
    keep = np.isin(ws.labels, GAIT)
    return torch.as_tensor(ws.X[keep]), ws.labels[keep]


def train(model: nn.Module, X: torch.Tensor, scaler: nn.Module, aug: Augmenter, seed: int, epochs: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=g).split(64):
            x = aug(X[idx], g)
            back = torch.rand(len(x), generator=g) < 0.5
            x = torch.where(back[:, None, None], reverse_time(x), x)
            loss = nn.functional.binary_cross_entropy_with_logits(model(scaler(x)), back.float())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def correct(model: nn.Module, X: torch.Tensor, scaler: nn.Module) -> np.ndarray:
    """(N,) per window, the fraction of its two readings said right: forwards (should say 0), backwards (1)."""
    out = [((model(scaler(x)) <= 0).float() + (model(scaler(reverse_time(x))) > 0).float()) / 2 for x in X.split(512)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def accuracy(model: nn.Module, X: torch.Tensor, scaler: nn.Module) -> float:
    """Each window once forwards and once backwards: the fraction said right."""
    return float(correct(model, X, scaler).mean())


MODELS = ("cnn", "encoder", "encoder_conv")


def make(name: str, c: int, t: int) -> nn.Module:
    return CNN(c) if name == "cnn" else EncoderProbe(c, t, stem="conv" if name == "encoder_conv" else "linear")


def run(source: str, targets: list[str], seeds: int, epochs: int, models: tuple[str, ...] = MODELS) -> list[dict]:
    w = load("window")
    train_set, val_set, _ = split_by_subject(load_sources([source], None, w), 0.2, 0)
    Xtr, _ = gait(train_set)
    Xva, _ = gait(val_set)
    scored = {source + " (held-out subjects)": (Xva, None)}
    for t in targets:
        scored[t] = gait(load_sources([t], None, w))
    scaler = InputPipeline.of_encoder(load("encoder")).scaler(w.n_channels, w.rate_hz)
    rows = []
    for model_name in models:
        for mirror in (False, True):
            aug_cfg = load("augment_finetune")
            aug = Augmenter(aug_cfg if mirror else aug_cfg.replace(mirror_p=0.0), w.n_channels, w.rate_hz)
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = make(model_name, w.n_channels, w.window)
                train(model, Xtr, scaler, aug, seed, epochs)
                for name, (X, labels) in scored.items():
                    right = correct(model, X, scaler)  # one pass; the classes' figures are its subsets
                    row = {"model": model_name, "mirror": mirror, "seed": seed, "scored": name, "all": float(right.mean())}
                    if labels is not None:
                        row |= {c: float(right[labels == c].mean()) for c in GAIT if (labels == c).any()}
                    rows.append(row)
                    print(row, flush=True)
    return rows


def report(rows: list[dict], source: str, cmd: str, note: str = "") -> str:
    names = list(dict.fromkeys(r["scored"] for r in rows))
    L = ["# Arrow-of-time probe: which way a window runs, learnt on " + source, "", __doc__.split("\n\n")[2].strip(), "",
         f"`{cmd}`{note}", "", "Accuracy in %, mean over seeds (chance 50; below 50: read backwards).", "",
         "| model | mirror in training | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    models = [m for m in MODELS if any(r["model"] == m for r in rows)]
    for model in models:
        for mirror in (False, True):
            sel = [r for r in rows if r["model"] == model and r["mirror"] == mirror]
            cells = [f"{100 * np.mean([r['all'] for r in sel if r['scored'] == n]):.0f}" for n in names]
            L.append(f"| {model} | {'yes' if mirror else 'no'} | " + " | ".join(cells) + " |")
    L += ["", "Per gait class on the targets:", "", "| model | mirror | target | " + " | ".join(GAIT) + " |",
          "|---|---|---|" + "---:|" * len(GAIT)]
    for model in models:
        for mirror in (False, True):
            for n in names[1:]:
                sel = [r for r in rows if r["model"] == model and r["mirror"] == mirror and r["scored"] == n]
                cells = [f"{100 * np.mean([r[c] for r in sel]):.0f}" if c in sel[0] else "-" for c in GAIT]
                L.append(f"| {model} | {'yes' if mirror else 'no'} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--source", default="uci")
    ap.add_argument("--targets", default="motion,wisdm")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--write", type=Path, help="markdown report (and its rows as .jsonl beside it)")
    ap.add_argument("--append", action="store_true", help="keep the other models' rows of --write's .jsonl")
    a = ap.parse_args()
    torch.set_num_threads(1)
    models = tuple(a.models.split(","))
    if bad := [m for m in models if m not in MODELS]:
        raise SystemExit(f"arrow_probe: unknown model {bad[0]!r} (known: {', '.join(MODELS)})")
    rows = run(a.source, a.targets.split(","), a.seeds, a.epochs, models)
    cmd = (f"python benchmarks/arrow_probe.py -d {a.source} --targets {a.targets} --seeds {a.seeds} --epochs {a.epochs}"
           + (f" --models {a.models}" if a.models != ",".join(MODELS) else "") + (f" --write {a.write}" if a.write else ""))
    note = ""
    if a.append and a.write and a.write.with_suffix(".jsonl").is_file():
        kept = [json.loads(line) for line in a.write.with_suffix(".jsonl").read_text().splitlines()]
        rows = [r for r in kept if r["model"] not in models] + rows
        cmd += " --append"
        note = " (beside the other models' rows kept from the .jsonl; without --models one run writes them all)"
    text = report(rows, a.source, cmd, note)
    print(text)
    if a.write:
        a.write.write_text(text)
        a.write.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
