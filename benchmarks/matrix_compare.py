"""Two matrix runs compared cell by cell: does a rerun reproduce a committed matrix?

    python benchmarks/matrix_compare.py OLD/rows.jsonl NEW/rows.jsonl [--tol 0]

A cell is (source, target, method, head, seed). For the cells in both files, prints per method how many have
the same macro-F1 (|difference| <= tol; 0 means to the last digit), the largest difference, and the cells
that differ; then the cells found in only one of them. Exit code 0 either way: a report, not a test; 2 (one line
naming the file) for a file that is missing or not a matrix's rows.jsonl (a damaged line, a cell twice).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from crosshar.errors import CrossharError
from crosshar.evaluate.report import read_rows

Key = tuple[str, str, str, str, int]


def cells(path: Path) -> dict[Key, float]:
    """(source, target, method, head, seed) -> macro-F1 of every row of a rows.jsonl (CrossharError for a file that
    is absent: read as empty, every cell of the other would be "only in" one file)."""
    if not path.is_file():
        raise CrossharError(f"{path}: no such file (a matrix's rows.jsonl)")
    return {(r["source"], r["target"], r["method"], r["head"], int(r["seed"])): float(r["macro_f1"])
            for r in read_rows(path)}


def compare(old: dict[Key, float], new: dict[Key, float], tol: float = 0.0) -> str:
    """A markdown report of `new` against `old` (macro-F1 in points)."""
    both = sorted(old.keys() & new.keys())
    by_method: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for k in both:
        by_method[(k[2], k[3])].append(k)
    lines = [f"Cells in both: {len(both)}; equal (|difference| <= {tol * 100:g} points): "
             f"{sum(abs(old[k] - new[k]) <= tol for k in both)}.", "",
             "| method | head | cells | equal | largest difference (points) |", "|---|---|---|---|---|"]
    differing: list[Key] = []
    for (m, h), ks in sorted(by_method.items()):
        d = [abs(old[k] - new[k]) for k in ks]
        differing += [k for k in ks if abs(old[k] - new[k]) > tol]
        lines.append(f"| {m} | {h} | {len(ks)} | {sum(x <= tol for x in d)} | {max(d) * 100:.2f} |")
    if differing:
        lines += ["", "Cells that differ (old → new macro-F1):", ""]
        lines += [f"- {s} → {t} {m} {h} seed {sd}: {old[k] * 100:.2f} → {new[k] * 100:.2f}"
                  for k in differing for s, t, m, h, sd in [k]]
    for name, only in (("old", old.keys() - new.keys()), ("new", new.keys() - old.keys())):
        if only:
            methods = sorted({k[2] + "/" + k[3] for k in only})
            lines += ["", f"Only in the {name} file: {len(only)} cells ({', '.join(methods)})."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--tol", type=float, default=0.0, help="largest |macro-F1 difference| (0-1) still called equal")
    a = ap.parse_args()
    try:
        old, new = cells(a.old), cells(a.new)
    except CrossharError as e:
        sys.exit(print(f"error: {e}", file=sys.stderr) or 2)
    print(compare(old, new, a.tol))


if __name__ == "__main__":
    main()
