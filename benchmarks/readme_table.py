"""The README's headline table, regenerated from a committed matrix (results/matrix/rows.jsonl).

    python benchmarks/readme_table.py [results/matrix/rows.jsonl] [--write README.md]

Prints a markdown table: one row per directed pair, one column per method (macro-F1 in %, mean over
seeds, the seed count in brackets), the in-domain ceiling (the better of the oracle rows, scored in the pair's classes), and the mean over the pairs
that every column has. With --write, replaces the table between the README's
`<!-- matrix-table -->` markers.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ORDER = ("scratch", "crosshar", "scratch_frozen", "scratch_encoder", "crosshar_full", "crosshar_skip", "crosshar_wide",
         "crosshar_upright", "crosshar_nomirror", "crosshar_device", "mask", "contrast", "crosshar_paper")


def table(rows: list[dict], head: str = "din") -> str:
    rows = [r for r in rows if r["head"] == head]
    methods = [m for m in ORDER if any(r["method"] == m for r in rows)]
    sources = {r["source"] for r in rows}
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
        L.append(f"| {s} → {t} (target only) | " + " | ".join(txt) + " | - |")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="?", default="results/matrix/rows.jsonl")
    ap.add_argument("--head", default="din")
    ap.add_argument("--write", default=None, help="README to update between <!-- matrix-table --> markers")
    a = ap.parse_args()
    rows = [json.loads(line) for line in Path(a.rows).read_text().splitlines() if line.strip()]
    text = table(rows, a.head)
    print(text)
    if a.write:
        p = Path(a.write)
        s = p.read_text()
        new, n = re.subn(r"(<!-- matrix-table -->\n).*?(\n<!-- /matrix-table -->)", lambda m: m.group(1) + text + m.group(2),
                         s, flags=re.S)
        if n != 1:
            raise SystemExit(f"{p}: no <!-- matrix-table --> ... <!-- /matrix-table --> block")
        p.write_text(new)


if __name__ == "__main__":
    main()
