"""benchmarks/matrix_compare.py: a rerun of a matrix compared with the committed one, cell by cell."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "matrix_compare.py"
spec = importlib.util.spec_from_file_location("matrix_compare", SCRIPT)
mc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mc)


def write(path: Path, cells: dict) -> Path:
    rows = [{"source": s, "target": t, "method": m, "head": "din", "preset": "default", "seed": seed, "macro_f1": f}
            for (s, t, m, seed), f in cells.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_equal_cells_counted_differences_listed_and_unpaired_cells_named(tmp_path):
    old = write(tmp_path / "old.jsonl", {("uci", "motion", "scratch", 0): 0.70, ("uci", "motion", "scratch", 1): 0.72,
                                         ("uci", "motion", "crosshar", 0): 0.80, ("uci", "wisdm", "oracle", 0): 0.9})
    new = write(tmp_path / "new.jsonl", {("uci", "motion", "scratch", 0): 0.70, ("uci", "motion", "scratch", 1): 0.72,
                                         ("uci", "motion", "crosshar", 0): 0.785, ("motion", "uci", "mask", 0): 0.5})
    md = mc.compare(mc.cells(old), mc.cells(new))
    assert md.startswith("Cells in both: 3; equal (|difference| <= 0 points): 2.")
    assert "| scratch | din | 2 | 2 | 0.00 |" in md
    assert "| crosshar | din | 1 | 0 | 1.50 |" in md
    assert "- uci → motion crosshar din seed 0: 80.00 → 78.50" in md
    assert "Only in the old file: 1 cells (oracle/din)." in md
    assert "Only in the new file: 1 cells (mask/din)." in md
    # a tolerance of 2 points calls the crosshar cell equal too
    assert mc.compare(mc.cells(old), mc.cells(new), tol=0.02).startswith("Cells in both: 3; equal (|difference| <= 2 points): 3.")


def test_a_missing_file_or_a_cell_twice_is_one_line_exit_2(tmp_path):
    """A missing file was read as no rows (every cell of the other "only in" it, exit 0); a damaged one or one holding
    a cell twice (the last value silently kept) ended in a traceback or went unnoticed."""
    import subprocess
    import sys

    ok = write(tmp_path / "ok.jsonl", {("uci", "motion", "scratch", 0): 0.7})
    twice = tmp_path / "twice.jsonl"
    twice.write_text(ok.read_text() + ok.read_text().replace("0.7", "0.9"))
    for other, message in ((tmp_path / "absent.jsonl", "absent.jsonl: no such file"),
                           (twice, "twice.jsonl:2: the same cell as line 1")):
        r = subprocess.run([sys.executable, str(SCRIPT), str(ok), str(other)], capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
