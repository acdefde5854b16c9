"""Shoaib loader: the two-line header, columns located by name, positions, labels, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.shoaib import LABELS, Shoaib
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import skips_truncated_gz, truncate_gz, write_tree

POSITIONS = ["Left_pocket", "Right_pocket", "Wrist", "Upper_arm", "Belt"]
NAMES = ["Time_Stamp", "Ax", "Ay", "Az", "Lx", "Ly", "Lz", "Gx", "Gy", "Gz", "Mx", "My", "Mz"]
ROW_LABELS = ["walking", "walking", "upsatirs", "downstairs", "jogging", "sitting", "standing", "biking"]


def block_values(b: int, i: int) -> list[float]:
    """Time_Stamp, acc, linear acc, gyro, magnetometer of position b at sample i."""
    acc = [b + 0.1 * i, 9.8, -b]
    gyro = [0.01 * i, 0.1 * b, -0.5]
    return [1390000000000 + 20 * i, *acc, 0.5, 0.5, 0.5, *gyro, 30.0, -12.0, 4.0]


def participant_text(variant: str = "public", labels=ROW_LABELS, patch=None) -> str:
    """Participant_N.csv. Variants: "public" (blocks of 13 separated by an empty column, the
    activity unnamed in the last column), "named" (blocks of 14 then Activity_Label) and
    "packed" (no separators, Activity_Label)."""
    sep = variant in ("public", "named")
    head1, head2 = [], []
    for b, p in enumerate(POSITIONS):
        last = b == len(POSITIONS) - 1
        head1 += [p] + [""] * 12 + ([""] if sep and not (last and variant == "public") else [])
        head2 += NAMES + ([""] if sep and not (last and variant == "public") else [])
    head1.append("")
    head2.append("" if variant == "public" else "Activity_Label")
    lines = [",".join(head1), ",".join(head2)]
    for i, lab in enumerate(labels):
        row: list[str] = []
        for b in range(len(POSITIONS)):
            last = b == len(POSITIONS) - 1
            row += [repr(v) for v in block_values(b, i)] + ([""] if sep and not (last and variant == "public") else [])
        row.append(lab)
        lines.append(",".join(row))
    if patch:
        lines = patch(lines)
    return "\n".join(lines) + "\n"


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return Shoaib().load(DataFolder(Shoaib().locate(root)), bad), bad


def check(recs, pid: int = 1, n: int = len(ROW_LABELS)):
    assert [r.position for r in recs] == ["left_pocket", "right_pocket", "wrist", "upper_arm", "belt"]
    for b, r in enumerate(recs):
        assert (r.subject, r.session, r.rate) == (f"shoaib:{pid}", f"{pid}_{r.position}", 50.0)
        expected = np.array([block_values(b, i) for i in range(n)])
        np.testing.assert_allclose(r.acc, expected[:, 1:4], rtol=1e-6)
        np.testing.assert_allclose(r.gyro, expected[:, 7:10], rtol=1e-6)


@pytest.mark.parametrize("variant", ["public", "named", "packed"])
def test_columns_located_by_name(tmp_path, variant):
    text = participant_text(variant)
    ncols = len(text.split("\n")[2].split(","))
    assert ncols == {"public": 70, "named": 71, "packed": 66}[variant]
    write_tree(tmp_path / "DataSet", {"Participant_1.csv": text})
    recs, _ = load(tmp_path)
    check(recs)
    assert list(recs[0].labels) == ["walking", "walking", "upstairs", "downstairs", "jogging", "sitting",
                                     "standing", "biking"]


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_plain_gz_zip(tmp_path, how):
    write_tree(tmp_path / "shoaib", {"DataSet/Participant_1.csv": participant_text(),
                                     "DataSet/Participant_10.csv": participant_text()}, how)
    recs, _ = load(tmp_path)
    assert len(recs) == 10
    check(recs[:5], 1)
    check(recs[5:], 10)


def test_unknown_label_is_reported_with_its_line(tmp_path):
    labels = [*ROW_LABELS[:3], "lying", *ROW_LABELS[4:]]
    write_tree(tmp_path / "DataSet", {"Participant_2.csv": participant_text(labels=labels)})
    with pytest.raises(DataError, match="unknown activity 'lying'") as e:
        load(tmp_path)
    assert e.value.line == 6 and e.value.path.endswith("Participant_2.csv")
    recs, bad = load(tmp_path, "skip")  # the row is dropped from every position alike, cutting it in two
    assert len(bad.skipped) == 1 and [len(r) for r in recs] == [3, 4] * 5
    assert [r.session for r in recs[:4]] == ["2_left_pocket", "2_left_pocket_1", "2_right_pocket", "2_right_pocket_1"]
    assert "downstairs" not in np.concatenate([r.labels for r in recs])


@pytest.mark.parametrize("patch, message, line", [
    (lambda ls: ls[:4] + [ls[4].replace("9.8", "nan", 3)] + ls[5:], "NaN or infinite", 5),
    (lambda ls: ls[:7] + [",".join(ls[7].split(",")[:30])] + ls[8:], "expected 70 fields", 8),
    (lambda ls: ls[:3] + [ls[3].replace("9.8", "9,8", 1)] + ls[4:], "expected 70 fields", 4),
    (lambda ls: ls[:3] + [ls[3].replace("9.8", "9.8x", 1)] + ls[4:], "cannot read '9.8x' as a number", 4),
])
def test_bad_rows(tmp_path, patch, message, line):
    write_tree(tmp_path / "DataSet", {"Participant_3.csv": participant_text(patch=patch)})
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == line
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and len(recs) == 10
    assert len(recs[0]) + len(recs[1]) == len(ROW_LABELS) - 1 and len(recs[0]) == line - 3


def test_bad_headers(tmp_path):
    no_gyro = participant_text(patch=lambda ls: [ls[0], ls[1].replace("Gy", "G_y"), *ls[2:]])
    write_tree(tmp_path / "a" / "DataSet", {"Participant_1.csv": no_gyro})
    with pytest.raises(DataError, match="column Gy missing") as e:
        load(tmp_path / "a")
    assert e.value.line == 2
    no_ts = participant_text(patch=lambda ls: [ls[0], ls[1].replace("Time_Stamp", "T"), *ls[2:]])
    write_tree(tmp_path / "b" / "DataSet", {"Participant_1.csv": no_ts})
    with pytest.raises(DataError, match="no Time_Stamp column"):
        load(tmp_path / "b")
    (tmp_path / "c" / "shoaib").mkdir(parents=True)
    with pytest.raises(MissingDataError, match=r"\.rar"):  # says how to get the files
        load(tmp_path / "c")


def test_registered():
    from crosshar.data.labels import VOCAB

    assert isinstance(DATASETS.create("shoaib"), Shoaib) and Shoaib.url.endswith(".rar")
    assert set(LABELS.values()) <= set(VOCAB) and LABELS["upsatirs"] == "upstairs"


@pytest.fixture
def five_positions(tmp_path, monkeypatch):
    """A data folder with one participant walking 35 s with five phones (gravity on y, a little motion: the
    physical checks pass), CROSSHAR_HOME in tmp_path."""
    import sys

    def plausible(b: int, i: int) -> list[float]:
        return [1390000000000 + 20 * i, float(0.5 * np.sin(0.3 * i)), float(9.8 + 0.5 * np.cos(0.3 * i)), 0.1 * b,
                0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 30.0, -12.0, 4.0]

    monkeypatch.setattr(sys.modules[__name__], "block_values", plausible)
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "data" / "shoaib", {"DataSet/Participant_1.csv": participant_text(labels=["walking"] * 700)})
    return tmp_path / "data"


def test_prepare_counts_the_windows_of_each_body_position(tmp_path, five_positions):
    """Five phones at once: `crosshar data prepare` says how many windows each position gave, and the cache's
    manifest maps every window to its position (what `cross` scores apart)."""
    from typer.testing import CliRunner

    from crosshar.cli import app
    from crosshar.data.store import prepare

    res = CliRunner().invoke(app, ["data", "prepare", "-d", "shoaib", "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 0, res.output
    assert "windows per body position: belt:2, left_pocket:2, right_pocket:2, upper_arm:2, wrist:2" in res.output
    ws = prepare("shoaib", tmp_path / "data")
    assert sorted(set(ws.recording_attr("position").tolist())) == ["belt", "left_pocket", "right_pocket",
                                                                   "upper_arm", "wrist"]


def test_a_position_selector_keeps_the_recordings_worn_there(five_positions):
    """`shoaib@wrist` is the wrist phone's windows alone, named apart, from the dataset's one cache; a position the
    dataset lacks is a one-line error listing those it has, at the command line too (exit code 2)."""
    from typer.testing import CliRunner

    from crosshar.cli import app
    from crosshar.data.store import cached, kept_dropped, prepare
    from crosshar.errors import ConfigError

    whole = prepare("shoaib", five_positions)
    wrist = prepare("shoaib@wrist", five_positions)
    pos = whole.recording_attr("position")
    assert wrist.dataset == "shoaib@wrist" and set(wrist.datasets.tolist()) == {"shoaib@wrist"}
    assert len(wrist) == int((pos == "wrist").sum()) == 2 and np.array_equal(wrist.X, whole.X[pos == "wrist"])
    assert set(wrist.recording_attr("position").tolist()) == {"wrist"}
    arm = prepare("shoaib@Upper arm", five_positions)
    assert arm.dataset == "shoaib@upper_arm" and arm.recording_attr("position").tolist() == ["upper_arm"] * 2
    assert len(cached("shoaib")) == 1 and wrist.manifest["per_subject"] == {"shoaib:1": 2}
    assert kept_dropped(wrist.manifest).startswith("2 windows at body position wrist (the whole dataset: kept 10 ")
    with pytest.raises(ConfigError, match=r"no recording at body position 'ankle'; its positions: belt \(2 windows\), left_pocket"):
        prepare("shoaib@ankle", five_positions)
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "shoaib@ankle", "--data-dir", str(five_positions)])
    assert res.exit_code == 2 and "its positions: belt (2 windows), left_pocket" in res.output, res.output
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "shoaib@wrist", "--data-dir", str(five_positions)])
    assert res.exit_code == 0 and "2 windows at body position wrist" in res.output, res.output


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip: one damaged
    participant file made the dataset unreadable. Now an error naming it by default; in skip mode it is listed, the
    others read."""
    write_tree(tmp_path / "shoaib", {"DataSet/Participant_1.csv": participant_text(),
                                     "DataSet/Participant_10.csv": participant_text()}, "gz")
    gz = truncate_gz(tmp_path / "shoaib" / "DataSet" / "Participant_10.csv.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert len(recs) == 5
    check(recs, 1)
