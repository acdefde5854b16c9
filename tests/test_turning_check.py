"""benchmarks/turning_check.py: its table (the figure itself, `window_turns`, is tested in tests/data/test_checks.py)."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "turning_check.py"
spec = importlib.util.spec_from_file_location("turning_check", SCRIPT)
tc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tc)


def test_table_reports_size_and_sense_per_class():
    md = tc.table({"uci": {"upstairs": np.array([90.0, 100.0, 110.0, -95.0])}})
    assert "| uci | upstairs | 4 | 98 (94-102) | 75 % |" in md
