"""Two finetuned matrix models, one prediction: their class probabilities averaged (a diagnostic).

    python benchmarks/pair_ensemble.py RUNS A B [B2 ...] [--seeds N] [--target hhar] [--out results/pair_ensemble]

RUNS is a matrix folder's `runs/` (e.g. $CROSSHAR_HOME/results/matrix-seeds6/runs, after
`crosshar matrix -d uci,motion,wisdm --heads din --seeds 6 --methods A,B --name matrix-seeds6`). For every
seed and directed pair among uci, motion and wisdm, the DIN models of rows A and B (same source, seed and
labelled windows) score the target alone and averaged (mean of their softmax probabilities), exactly as
`crosshar matrix` scores a cell (crosshar.inference.score: every target window, the pair's classes).
Each further B is another partner for A (seeds without its runs are skipped). `--target T` scores the three
sources' models on T alone instead (e.g. hhar, after `crosshar matrix ... --targets-only hhar`: the runs of T's
window profile, `finetune-SRC-METHOD-din-w128accz-sK`). Writes `<out>.jsonl` (one line per seed, pair and partner;
a rerun skips what is there) and `<out>.md` (the means and the paired differences with their 95 % interval
over seeds, `paired_difference`). `--against OTHER.jsonl` adds this pair against another pair's file, paired by
seed (e.g. crosshar's two frames against the head on the raw window's two frames: pretraining the named factor).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from crosshar import config as C
from crosshar.data.store import prepare
from crosshar.evaluate.matrix import target_profile, window_tag
from crosshar.evaluate.report import paired_difference
from crosshar.inference import score
from crosshar.models import classifier as clf

DATASETS = ("uci", "motion", "wisdm")
PAIRS = [(s, t) for s in DATASETS for t in DATASETS if s != t]


def pairs_for(target: str | None) -> list[tuple[str, str]]:
    """The directed pairs among DATASETS, or every dataset of them (but the target) into `target`."""
    return PAIRS if target is None else [(s, target) for s in DATASETS if s != target]


def run(runs: Path, a: str, partners: list[str], seeds: int, out: Path, pairs: list[tuple[str, str]] = PAIRS) -> list[dict]:
    """Score every missing (seed, pair, partner); returns all rows of `<out>.jsonl`."""
    path = out.with_suffix(".jsonl")
    done = {(r["seed"], r["source"], r["target"], r["b"]) for r in map(json.loads, path.open())} if path.is_file() else set()
    profile = {t: target_profile(t) for t in {t for _, t in pairs}}
    ws = {t: prepare(t, None, w) for t, w in profile.items()}
    for seed in range(seeds):
        for b in partners:
            for s in DATASETS:
                for tag in dict.fromkeys(window_tag(profile[t]) for s2, t in pairs if s2 == s):
                    todo = [t for (s2, t) in pairs if s2 == s and window_tag(profile[t]) == tag and (seed, s, t, b) not in done]
                    if not todo:
                        continue
                    if not (runs / f"finetune-{s}-{b}-din{tag}-s{seed}").is_dir():
                        print(f"seed {seed} {s}: no {b} run in {runs}, skipped", flush=True)
                        continue
                    # the pair as `crosshar cross --run A --run B` scores it (refused unless source and classes agree)
                    pair, meta, _ = clf.load_runs([runs / f"finetune-{s}-{m}-din{tag}-s{seed}" for m in (a, b)])
                    ma, mb = pair.members
                    for t in todo:
                        both = score(pair, meta, ws[t])[0]
                        row = {"seed": seed, "source": s, "target": t, "a": a, "b": b,
                               "macro_f1_a": score(ma, meta, ws[t])[0]["macro_f1"],
                               "macro_f1_b": score(mb, meta, ws[t])[0]["macro_f1"], "macro_f1_pair": both["macro_f1"],
                               "per_class_f1_pair": {c: v["f1"] for c, v in both["per_class"].items()}}
                        with path.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        print(f"seed {seed} {s} -> {t} {a} + {b}: {row['macro_f1_a']:.3f} / {row['macro_f1_b']:.3f} "
                              f"-> {row['macro_f1_pair']:.3f}", flush=True)
    return [json.loads(line) for line in path.open()]


def report(rows: list[dict], pairs: list[tuple[str, str]] = PAIRS) -> str:
    """The markdown: per partner, the mean over the pairs and seeds, per pair, and paired differences."""
    L = ["# Two models averaged (benchmarks/pair_ensemble.py)", "",
         "Macro-F1 in %, DIN head, 10 % of the source's labels, mean over seeds; the pair's probabilities are the mean "
         f"of the two models' softmax outputs. Differences are paired by seed over the {len(pairs)} pairs, with the 95 % interval "
         "over seeds (`paired_difference`).", ""]
    for b in dict.fromkeys(r["b"] for r in rows):
        rb = [r for r in rows if r["b"] == b]
        a = rb[0]["a"]
        rb = [r for r in rb if (r["source"], r["target"]) in pairs]
        seeds = sorted({r["seed"] for r in rb if sum(1 for x in rb if x["seed"] == r["seed"]) == len(pairs)})
        rb = [r for r in rb if r["seed"] in seeds]
        name = {"a": a, "b": b, "pair": f"{a} + {b}"}
        hr = [{"source": r["source"], "target": r["target"], "head": "din", "seed": r["seed"], "method": name[k],
               "macro_f1": r[f"macro_f1_{k}"]} for r in rb for k in ("a", "b", "pair")]
        L += [f"## {a} + {b} ({len(seeds)} seeds)", "",
              "| source → target | " + " | ".join(name.values()) + " |", "|---|---|---|---|"]
        for s, t in pairs:
            cells = [100 * np.mean([r[f"macro_f1_{k}"] for r in rb if (r["source"], r["target"]) == (s, t)]) for k in name]
            L.append(f"| {s} → {t} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")
        means = [100 * np.mean([r[f"macro_f1_{k}"] for r in rb]) for k in name]
        L += [f"| **mean of the {len(pairs)} pairs** | " + " | ".join(f"**{v:.1f}**" for v in means) + " |", ""]
        for x, y in ((name["pair"], a), (name["pair"], b), (b, a)):
            d = paired_difference(hr, "din", x, y, pairs)
            if d is not None:
                L.append(f"- {x} − {y}: {100 * d[0]:+.1f} (95 % interval {100 * (d[0] - d[1]):+.1f} to "
                         f"{100 * (d[0] + d[1]):+.1f})")
        um = [r["per_class_f1_pair"] for r in rb if (r["source"], r["target"]) == ("uci", "motion")]
        if um:
            L.append(f"- uci → motion, the pair: upstairs / downstairs F1 {np.mean([u['upstairs'] for u in um]):.2f} / "
                     f"{np.mean([u['downstairs'] for u in um]):.2f}")
        L.append("")
    return "\n".join(L)


def against(rows: list[dict], other: list[dict], pairs: list[tuple[str, str]] = PAIRS) -> str:
    """The markdown section of the first pair in `rows` against the first pair in `other` (another pair's rows):
    per pair both means and their difference over the seeds both have for every pair, then the paired difference."""
    def first(rs: list[dict]) -> tuple[str, list[dict]]:
        ab = (rs[0]["a"], rs[0]["b"])
        return " + ".join(ab), [r for r in rs if (r["a"], r["b"]) == ab and (r["source"], r["target"]) in pairs]

    (x, rx), (y, ry) = first(rows), first(other)
    full = [{r["seed"] for r in rs if sum(1 for q in rs if q["seed"] == r["seed"]) == len(pairs)} for rs in (rx, ry)]
    seeds = sorted(full[0] & full[1])
    hr = [{"source": r["source"], "target": r["target"], "head": "din", "seed": r["seed"], "method": m,
           "macro_f1": r["macro_f1_pair"]} for m, rs in ((x, rx), (y, ry)) for r in rs if r["seed"] in seeds]
    L = [f"## {x} against {y} ({len(seeds)} seeds both have)", "",
         f"| source → target | {x} | {y} | difference |", "|---|---|---|---|"]
    below = []
    for s, t in pairs:
        v = [100 * np.mean([r["macro_f1"] for r in hr if r["method"] == m and (r["source"], r["target"]) == (s, t)])
             for m in (x, y)]
        L.append(f"| {s} → {t} | {v[0]:.1f} | {v[1]:.1f} | {v[0] - v[1]:+.1f} |")
        below += [f"{s} → {t} ({v[0] - v[1]:+.1f})"] if v[0] < v[1] else []
    v = [100 * np.mean([r["macro_f1"] for r in hr if r["method"] == m]) for m in (x, y)]
    L += [f"| **mean of the {len(pairs)} pairs** | **{v[0]:.1f}** | **{v[1]:.1f}** | **{v[0] - v[1]:+.1f}** |", ""]
    d = paired_difference(hr, "din", x, y, pairs)
    if d is not None:
        L.append(f"- ({x}) − ({y}): {100 * d[0]:+.1f} (95 % interval {100 * (d[0] - d[1]):+.1f} to {100 * (d[0] + d[1]):+.1f})")
    L += [f"- pairs where {x} is below {y}: " + (", ".join(below) if below else "none"), ""]
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("a")
    ap.add_argument("b", nargs="+")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--target", default=None, help="score every source's models on this target only (e.g. hhar)")
    ap.add_argument("--out", type=Path, default=Path("results/pair_ensemble"))
    ap.add_argument("--against", type=Path, default=None, help="another pair's .jsonl: this pair against it, by seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pairs = pairs_for(args.target)
    rows = run(args.runs, args.a, args.b, args.seeds, args.out, pairs)
    md = report(rows, pairs)
    if args.against:
        md += "\n" + against(rows, [json.loads(line) for line in args.against.open()], pairs)
    args.out.with_suffix(".md").write_text(md + "\n")
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
