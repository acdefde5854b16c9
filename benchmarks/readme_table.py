"""The README's two generated tables, regenerated from committed matrices (results/*/rows.jsonl).

    python benchmarks/readme_table.py [results/matrix/rows.jsonl] [--write README.md]

The headline table: one row per directed pair, one column per method of the given matrix (macro-F1 in %, mean
over seeds, the seed count in brackets), the in-domain ceiling (the better of the oracle rows, scored in the
pair's classes), and the mean over the pairs that every column has. The recipes at a glance (`GLANCE`): one row
per recipe, each read from the matrix that measured it (its folder under results/): the mean over the 6 directed
pairs among uci, motion and wisdm, the weakest pair, the stairs F1 on uci -> motion and the seeds. With --write,
replaces the tables between the README's `<!-- matrix-table -->` and `<!-- glance-table -->` markers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from crosshar.errors import CrossharError
from crosshar.evaluate.report import read_rows

ORDER = ("scratch", "crosshar", "scratch_worldvert_mount", "scratch_frozen", "scratch_encoder", "crosshar_full", "crosshar_skip", "crosshar_wide",
         "crosshar_upright", "crosshar_nomirror", "crosshar_device", "mask", "contrast", "crosshar_paper")


def table(rows: list[dict], head: str = "din") -> str:
    rows = [r for r in rows if r["head"] == head]
    methods = [m for m in ORDER if any(r["method"] == m for r in rows)]
    sources = {r["source"] for r in rows if r["method"] in methods}  # transfer rows' (an oracle's source is its target)
    pairs = sorted({(r["source"], r["target"]) for r in rows if r["method"] in methods and r["target"] in sources})
    # targets that are never a source (e.g. hhar, acc-only): rows of their own below the mean
    extra = sorted({(r["source"], r["target"]) for r in rows if r["method"] in methods and r["target"] not in sources})

    def cell(s: str, t: str, m: str) -> tuple[float, int]:
        v = [r["macro_f1"] for r in rows if (r["source"], r["target"], r["method"]) == (s, t, m)]
        return (float(np.mean(v)), len(v)) if v else (np.nan, 0)

    from crosshar.evaluate.report import ceiling

    L = ["| source → target | " + " | ".join(methods) + " | oracle (target) |", "|---|" + "---|" * (len(methods) + 1)]
    for s, t in pairs:
        cells = [cell(s, t, m) for m in methods]
        txt = [f"{100 * v:.1f} ({n})" if n else "-" for v, n in cells]
        o = ceiling(rows, head, s, t, "crosshar4")  # the better in-domain oracle, in the pair's classes
        L.append(f"| {s} → {t} | " + " | ".join(txt) + (" | -" if np.isnan(o) else f" | {100 * o:.1f}") + " |")
    full = [m for m in methods if all(cell(s, t, m)[1] for s, t in pairs)]
    if full:
        means = {m: 100 * np.mean([cell(s, t, m)[0] for s, t in pairs]) for m in full}
        L.append(f"| **mean of the {len(pairs)} pairs** | " + " | ".join(
            f"**{means[m]:.1f}**" if m in means else "-" for m in methods) + " | |")
    for s, t in extra:
        txt = [f"{100 * v:.1f} ({n})" if n else "-" for v, n in (cell(s, t, m) for m in methods)]
        o = ceiling(rows, head, s, t, "crosshar4")
        L.append(f"| {s} → {t} (target only) | " + " | ".join(txt) + (" | -" if np.isnan(o) else f" | {100 * o:.1f}") + " |")
    return "\n".join(L)


# (what a user runs, how, the results folder that measured it, its row there); the ceiling is the in-domain models'
GLANCE = (
    ("CrossHAR as published, in our code", "`crosshar pretrain -d SRC --preset paper`, then `crosshar finetune -d SRC "
     "-lr 0.1 --head transformer --preset paper` (matrix row `crosshar_paper`)", "matrix", "crosshar_paper"),
    ("the default pipeline: pretrained encoder (frozen) + DIN", "`crosshar pretrain -d SRC && crosshar finetune -d SRC "
     "-lr 0.1 && crosshar cross -d SRC -td TARGET`", "matrix", "crosshar"),
    ("... at the defaults before (raw masked MSE, no label smoothing, DIN attention dropout 0.1)",
     "matrix row `crosshar_v1`", "matrix-v1", "crosshar"),
    ("DIN on the raw window, no pretraining", "`crosshar finetune -d SRC -lr 0.1 --no-pretrain`", "matrix", "scratch"),
    ("... in the vertical frame", "`... --no-pretrain --input-frame vertical`", "matrix-vertical", "scratch_vertical"),
    ("... in the world-vertical frame, mount augmentation", "`... --no-pretrain --input-frame world_vertical --mount 0.5`",
     "matrix-worldvert", "scratch_worldvert_mount"),
    ("... and scored with 8 test-time views", "then `crosshar cross -d SRC -td TARGET --tta 8`", "matrix-tta",
     "scratch_worldvert_mount_tta"),
    ("... or with 5 fixed cadence views inside the model (exported with it)",
     "`... --mount 0.5 --cadence-views 5`", "matrix-cadviews6", "scratch_worldvert_mount_cadviews5"),
    ("pretrained encoder in that frame, mount augmentation", "matrix row `crosshar_worldvert_mount`", "matrix-wvx",
     "crosshar_worldvert_mount"),
    ("in-domain ceiling (the target's own labels, same rate)", "matrix rows `oracle*`", "matrix", "ceiling"),
)
PAIRS = [(s, t) for s in ("motion", "uci", "wisdm") for t in ("motion", "uci", "wisdm") if s != t]


def glance(results: Path) -> str:
    """The recipes at a glance (GLANCE), each from its own matrix under `results`."""
    from crosshar.evaluate.methods import CEILING
    from crosshar.evaluate.report import ceiling

    L = ["| recipe | how | mean of the 6 pairs | weakest pair | uci → motion up / down stairs F1 | seeds | measured in |",
         "|---|---|---|---|---|---|---|"]
    for label, how, folder, method in GLANCE:
        rows = [r for r in read_rows(_rows_file(results / folder / "rows.jsonl")) if r["head"] == "din"]
        if method == "ceiling":
            per_pair = {p: [ceiling(rows, "din", *p, "crosshar4")] for p in PAIRS}
            if any(np.isnan(v[0]) for v in per_pair.values()):  # no oracle of a pair's target: a nan in the mean
                raise SystemExit(f"{results / folder}: the oracles lack a target of {PAIRS}")
            stairs, seeds = "-", str(len({r["seed"] for r in rows if r["method"] in CEILING}))
        else:
            mine = [r for r in rows if r["method"] == method]
            per_pair = {p: [r["macro_f1"] for r in mine if (r["source"], r["target"]) == p] for p in PAIRS}
            if not all(per_pair.values()):
                raise SystemExit(f"{results / folder}: {method} lacks a pair of {PAIRS}")
            um = [r["per_class_f1"] for r in mine if (r["source"], r["target"]) == ("uci", "motion")]
            stairs = f"{np.mean([c['upstairs'] for c in um]):.2f} / {np.mean([c['downstairs'] for c in um]):.2f}"
            seeds = str(len({r["seed"] for r in mine}))
        means = {p: 100 * float(np.mean(v)) for p, v in per_pair.items()}
        worst = min(means, key=means.get)
        L.append(f"| {label} | {how} | **{np.mean(list(means.values())):.1f}** | {worst[0]} → {worst[1]} "
                 f"{means[worst]:.1f} | {stairs} | {seeds} | `results/{folder}/` |")
    return "\n".join(L)


def _rows_file(path: Path) -> Path:
    """`path`, a rows.jsonl that must be there (read_rows reads an absent one as no rows)."""
    if not path.is_file():
        raise CrossharError(f"{path}: no such file (a matrix's rows.jsonl)")
    return path


def replace_block(text: str, marker: str, block: str, where: str) -> str:
    """`text` with what lies between `<!-- marker -->` and `<!-- /marker -->` replaced by `block`."""
    new, n = re.subn(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", lambda m: m.group(1) + block + m.group(2),
                     text, flags=re.S)
    if n != 1:
        raise SystemExit(f"{where}: no <!-- {marker} --> ... <!-- /{marker} --> block")
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="?", default="results/matrix/rows.jsonl")
    ap.add_argument("--head", default="din")
    ap.add_argument("--write", default=None, help="README to update between <!-- matrix-table --> markers")
    a = ap.parse_args()
    try:  # a missing or damaged rows.jsonl (a NaN score, a line cut short): one line naming it, exit code 2
        text = table(read_rows(_rows_file(Path(a.rows))), a.head)
        recipes = glance(Path(a.rows).resolve().parent.parent)
        print(text + "\n\n" + recipes)
        if a.write:
            p = Path(a.write)
            p.write_text(replace_block(replace_block(p.read_text(), "matrix-table", text, str(p)), "glance-table", recipes, str(p)))
    except (CrossharError, OSError) as e:
        sys.exit(print(f"error: {e}", file=sys.stderr) or 2)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        sys.exit(print(f"error: {e.code}", file=sys.stderr) or 2)


if __name__ == "__main__":
    main()
