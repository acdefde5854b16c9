"""benchmarks/train_speed.py: the seed summary behind the speed issue's before/after table."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
ts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ts)


def measurement(commit: str, epochs, seed: int, pre: float, fin: float, f1m: float, f1w: float) -> dict:
    rows = [{"stage": "pretrain", "cpu_s": pre}, {"stage": "finetune", "cpu_s": fin},
            {"stage": "cross motion", "cpu_s": 20.0}, {"stage": "cross wisdm", "cpu_s": 15.0}]
    return {"label": f"{commit} {seed}", "commit": commit, "targets": ["motion", "wisdm"], "pretrain_epochs": epochs,
            "finetune_epochs": None, "seed": seed, "rows": rows, "macro_f1": {"motion": f1m, "wisdm": f1w}}


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_summary_means_seeds_and_divides_by_the_baseline(tmp_path):
    files = [write(tmp_path, "a0.json", measurement("new", 2, 0, 30, 70, 0.70, 0.76)),
             write(tmp_path, "a1.json", measurement("new", 2, 1, 40, 90, 0.80, 0.74)),
             write(tmp_path, "b0.json", measurement("old", None, 0, 500, 80, 0.46, 0.75)),
             write(tmp_path, "b1.json", measurement("old", None, 1, 520, 60, 0.48, 0.77)),
             write(tmp_path, "s.json", measurement("old", 40, 0, 1, 1, 0, 0) | {"scaled_from": ["x", "y"]})]
    md = ts.summarize(sorted(files), "cmd", baseline="old")
    rows = [line for line in md.splitlines() if line.startswith("| old") or line.startswith("| new")]
    assert rows[0].startswith("| old |") and "baseline" in rows[0]  # the baseline first, whatever the file order
    # old: pipeline = pretrain + finetune + cross motion = 600 and 600; new: 120 and 150 -> 600 / 135 = 4.44x
    assert "| 600.0 ± 0.0 |" in rows[0] and "| 135.0 ± 21.2 | 4.44x less |" in rows[1]
    assert rows[1].endswith("| 75.0 ± 7.1 | 75.0 ± 1.4 |")
    assert len(rows) == 2  # the scaled estimate is not a measurement


def test_summary_refuses_an_unknown_baseline(tmp_path):
    f = write(tmp_path, "a.json", measurement("new", 2, 0, 30, 70, 0.7, 0.7))
    with pytest.raises(SystemExit, match="no measured run of that commit"):
        ts.summarize([f], "cmd", baseline="nope")
