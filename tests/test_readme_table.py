"""benchmarks/readme_table.py: the README's generated tables match the committed results they are read from."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_table", ROOT / "benchmarks" / "readme_table.py")
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)


def block(marker: str) -> str:
    m = re.search(rf"<!-- {marker} -->\n(.*?)\n<!-- /{marker} -->", (ROOT / "README.md").read_text(), re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


def test_the_readme_tables_are_the_ones_the_committed_results_give():
    rows = [json.loads(x) for x in (ROOT / "results" / "matrix" / "rows.jsonl").read_text().splitlines() if x.strip()]
    assert block("matrix-table") == rt.table(rows), "run: python benchmarks/readme_table.py --write README.md"
    assert block("glance-table") == rt.glance(ROOT / "results"), "run: python benchmarks/readme_table.py --write README.md"


def test_a_recipe_missing_a_pair_is_named(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.8,
           "per_class_f1": {"upstairs": 0.7, "downstairs": 0.6}}
    (tmp_path / "m" / "rows.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setattr(rt, "GLANCE", (("raw window", "`finetune --no-pretrain`", "m", "scratch"),))
    with pytest.raises(SystemExit, match=r"m: scratch lacks a pair"):
        rt.glance(tmp_path)
    rows = [dict(row, source=s, target=t, macro_f1=0.5 + 0.01 * i) for i, (s, t) in enumerate(rt.PAIRS)]
    (tmp_path / "m" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = rt.glance(tmp_path)
    assert "| raw window | `finetune --no-pretrain` | **52.5** | motion → uci 50.0 | 0.70 / 0.60 | 1 | `results/m/` |" in out


def test_a_target_only_dataset_stays_out_of_the_mean_with_its_own_ceiling():
    """hhar is never a transfer source; its oracle rows (source = target = hhar) must not make it one of the pairs
    the mean is taken over, and its rows show its ceiling."""
    def row(s, t, m, f1):
        return {"source": s, "target": t, "method": m, "head": "din", "seed": 0, "macro_f1": f1,
                "classes": ["walking", "sitting&standing"]}

    rows = [row("uci", "motion", "scratch", 0.8), row("motion", "uci", "scratch", 0.6), row("uci", "hhar", "scratch", 0.5),
            row("uci", "uci", "oracle", 0.9), row("motion", "motion", "oracle", 0.95), row("hhar", "hhar", "oracle", 0.85)]
    out = rt.table(rows)
    assert "| **mean of the 2 pairs** | **70.0** | |" in out
    assert "| uci → hhar (target only) | 50.0 (1) | 85.0 |" in out and "hhar → hhar" not in out


def test_a_nan_score_or_a_missing_file_is_one_line_exit_2(tmp_path):
    """A NaN score was printed as "nan (3)" and a "**nan**" mean; a missing or damaged rows.jsonl, a traceback."""
    import subprocess
    import sys

    rows = tmp_path / "results" / "matrix" / "rows.jsonl"
    rows.parent.mkdir(parents=True)
    lines = (ROOT / "results" / "matrix" / "rows.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    rows.write_text("\n".join([json.dumps(row | {"macro_f1": float("nan")})] + lines[1:]) + "\n")
    for path, message in ((rows, "rows.jsonl:1: macro_f1 is nan"), (tmp_path / "absent.jsonl", "no such file")):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme_table.py"), str(path)],
                           capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_ceiling_without_an_oracle_of_a_pairs_target_is_named(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    rows = [{"source": s, "target": t, "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5,
             "classes": ["walking"]} for s, t in rt.PAIRS]
    rows += [{"source": t, "target": t, "method": "oracle", "head": "din", "seed": 0, "macro_f1": 0.9,
              "classes": ["walking"]} for t in ("uci", "motion")]  # none on wisdm
    (tmp_path / "m" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(rt, "GLANCE", (("ceiling", "oracles", "m", "ceiling"),))
    with pytest.raises(SystemExit, match=r"m: the oracles lack a target"):
        rt.glance(tmp_path)
