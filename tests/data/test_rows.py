"""Typed delimited rows: the fast path, the line-by-line path, and exact line numbers."""

from __future__ import annotations

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.rows import Col, read_rows
from crosshar.errors import DataError
from rawfmt import write_tree

COLS = [Col("who", 0, "s", 8), Col("t", 1, "i"), Col("x", 2), Col("tag", 3, "b", 4)]


def rows_of(tmp_path, text, on_bad="error", how="plain", **kw):
    write_tree(tmp_path, {"f.csv": text}, how)
    folder = DataFolder(tmp_path)
    bad = BadRows(on_bad)
    return read_rows(folder, folder.glob("f.csv")[0], kw.pop("cols", COLS), bad, **kw), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_fast_path_keeps_line_numbers(tmp_path, how):
    text = "who,t,x,tag\r\na,1424696631913248572,0.5,AB\r\n\r\nb,2,-1e3,CD\r\n"
    rows, _ = rows_of(tmp_path, text, how=how, skip=1, ncols=4)
    assert rows["who"].tolist() == ["a", "b"] and rows["tag"].tolist() == [b"AB", b"CD"]
    assert rows["t"].tolist() == [1424696631913248572, 2]  # int64, exact beyond 2**53
    assert rows["x"].tolist() == [0.5, -1000.0]
    assert rows.lines.tolist() == [2, 4]  # the blank line is not a row


def test_bad_lines_are_reported_and_skipped_exactly(tmp_path):
    text = "a,1,0.5,x\nb,2,zero,x\nc,3\nd,4.5,1,x\ne,5,2,x,extra\nf,6,3,x\n"
    with pytest.raises(DataError, match="line 2: column 3 \\(x\\): cannot read 'zero' as a number"):
        rows_of(tmp_path, text, ncols=4)
    rows, bad = rows_of(tmp_path, text, "skip", ncols=4)
    assert [ln for _, ln, _ in bad.skipped] == [2, 3, 4, 5]
    assert "expected 4 fields" in bad.skipped[1][2] and "as an integer" in bad.skipped[2][2]
    assert rows["who"].tolist() == ["a", "f"] and rows.lines.tolist() == [1, 6]
    # without ncols, extra fields are allowed but missing ones are not
    rows, bad = rows_of(tmp_path, text, "skip")
    assert [ln for _, ln, _ in bad.skipped] == [2, 3, 4]


def test_comments_quotes_and_reject(tmp_path):
    text = 'a,1,0.5,x;\n;\n"b,c",2,1.5,y;\n'
    rows, _ = rows_of(tmp_path, text, comments=";", ncols=4)
    assert rows["who"].tolist() == ["a", "b,c"] and rows.lines.tolist() == [1, 3]
    with pytest.raises(DataError, match="line 3: too big"):
        rows.reject(rows["x"] > 1, lambda i: "too big", BadRows())
    bad = BadRows("skip")
    kept = rows.reject(rows["x"] > 1, lambda i: "too big", bad)
    assert kept["who"].tolist() == ["a"] and bad.skipped[0][1] == 3


def test_slow_and_fast_paths_agree(tmp_path):
    rng = np.random.default_rng(0)
    good = [f"s{i % 3},{i},{v!r},t{i % 2}" for i, v in enumerate(rng.standard_normal(50).tolist())]
    fast, _ = rows_of(tmp_path / "a", "\n".join(good) + "\n")
    slow, bad = rows_of(tmp_path / "b", "\n".join(good[:20] + ["oops"] + good[20:]) + "\n", "skip")
    assert len(bad.skipped) == 1 and bad.skipped[0][1] == 21
    for k in fast.cols:
        assert fast[k].dtype == slow[k].dtype and fast[k].tolist() == slow[k].tolist()
    assert slow.lines.tolist() == list(range(1, 21)) + list(range(22, 52))


def test_the_skip_report_lists_files_and_lines_in_order():
    """Checks run in passes (labels, then values, then time), so skipped rows were listed 100, 300, 200."""
    from crosshar.data.base import BadRows

    bad = BadRows("skip")
    for path, line in (("b.csv", 100), ("a.csv", 300), ("a.csv", 200), ("a.csv", None)):
        bad("problem", path, line)
    assert bad.report().splitlines()[1:] == ["  a.csv: problem", "  a.csv, line 200: problem",
                                              "  a.csv, line 300: problem", "  b.csv, line 100: problem"]


@pytest.mark.parametrize("delimiter", [b" ", b"\t"])
def test_single_delimited_turns_runs_of_blanks_into_one_delimiter_and_leaves_tidy_files_alone(tmp_path, delimiter):
    from crosshar.data.rows import TextFile

    d = delimiter.decode()
    tidy = f"1{d}2{d}3\n4{d}5{d}6\n\n"
    messy = "1  2\t3 \n\t4 5   6\n\n"
    write_tree(tmp_path, {"tidy.txt": tidy, "messy.txt": messy})
    folder = DataFolder(tmp_path)
    for name in ("tidy.txt", "messy.txt"):
        tf = TextFile(folder, folder.glob(name)[0])
        before = tf.raw
        tf.single_delimited(delimiter, 3)
        assert tf.raw == tidy.encode(), name  # the same lines, one delimiter between fields
        assert (tf.raw is before) == (name == "tidy.txt"), name  # a tidy file is not rewritten
    short = TextFile(folder, folder.glob("tidy.txt")[0])
    short.single_delimited(delimiter, 4)  # a file whose lines do not fit is still normalised, not dropped
    assert short.raw.split(b"\n")[:2] == [delimiter.join(b"123"[i:i + 1] for i in range(3)),
                                          delimiter.join(b"456"[i:i + 1] for i in range(3))]
