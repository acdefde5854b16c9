"""benchmarks/reader_speed.py: its synthetic PAMAP2 and RealWorld files are ones the readers read whole (no figure is
asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reader_speed  # noqa: E402


def test_the_synthetic_file_reads_as_three_positions(capsys):
    assert reader_speed.main(["--rows", "3000", "--nan", "0.3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PAMAP2 reader: 3,000 rows") and "30 % NaN drop-outs" in out and " recordings in " in out
    text = reader_speed.dat_text(50, 0.0)
    assert len(text.splitlines()) == 50 and all(len(line.split(" ")) == 54 for line in text.splitlines())


def test_the_synthetic_realworld_zips_read_as_seven_positions(capsys):
    assert reader_speed.main(["--dataset", "realworld", "--rows", "1400"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("RealWorld reader: 1,400 rows (7 positions x acc, gyro;") and " 7 recordings in " in out
