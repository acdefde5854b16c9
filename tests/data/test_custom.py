"""Custom datasets: the descriptor, the worked example of docs/custom_data.md, and bad input."""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.readers.custom import Custom, CustomDescriptor
from crosshar.data.io import DataFolder
from crosshar.limits import GRAVITY
from crosshar.errors import ConfigError, DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import write_tree

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom_data.md"


def doc_example() -> tuple[dict[str, str], str, list[str]]:
    """({path: text} of the example's files, the Python snippet, its documented output lines)."""
    text = DOC.read_text()
    files = dict(re.findall(r"`(mylab/[^`]+)`[^\n]*:\n\n```(?:toml|csv)\n(.*?)```", text, re.S))
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    expected = [ln[2:] for ln in snippet.splitlines() if ln.startswith("# mylab:")]
    return files, snippet, expected


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    ds = Custom()
    return ds.load(DataFolder(ds.locate(root)), bad), bad


def test_worked_example_of_the_docs(tmp_path, monkeypatch):
    files, snippet, expected = doc_example()
    assert set(files) == {"mylab/crosshar.toml", "mylab/P01_morning.csv", "mylab/P02_morning.csv"}
    write_tree(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(snippet, {})
    assert out.getvalue().splitlines() == expected
    recs, _ = load(tmp_path / "mylab")
    p01, p02 = recs
    assert (p01.device, p01.position, p01.dataset) == ("iPhone 12", "pocket", "custom")
    # g -> m/s^2 and iOS -> Android sign; deg/s -> rad/s
    np.testing.assert_allclose(p01.acc[0], [-0.01 * GRAVITY, 1.00 * GRAVITY, -0.02 * GRAVITY], rtol=1e-6)
    np.testing.assert_allclose(p01.gyro[0], np.radians([0.6, -0.3, 0.1]), rtol=1e-6)
    assert not p01.extra["resampled"] and p02.extra["resampled"]
    # P02 (jittered) is on a uniform 50 Hz grid: at 1020 ms, between the rows at 1000 and 1023 ms
    np.testing.assert_allclose(p02.acc[1, 0], -GRAVITY * (0.30 + (0.25 - 0.30) * 20 / 23), rtol=1e-5)
    assert list(p01.labels) == ["standing"] * 4 + ["walking"] * 4 + [""]


def descriptor(**kw) -> str:
    base = {"rate_hz": 50, "acc_columns": ["ax", "ay", "az"], "subject_column": "who"}
    base.update(kw)
    out = []
    tables = {k: v for k, v in base.items() if isinstance(v, dict)}
    for k, v in base.items():
        if not isinstance(v, dict):
            out.append(f"{k} = {_toml(v)}")
    for k, v in tables.items():
        out.append(f"[{k}]")
        out += [f"{kk!r} = {_toml(vv)}".replace("'", '"') for kk, vv in v.items()]
    return "\n".join(out) + "\n"


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v + "'"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


CSV = "who,ax,ay,az,act\n" + "".join(f"s1,0.1,9.8,{i / 10},walk\n" for i in range(5)) + "s2,0.2,9.7,0.0,sit\n"


def folder(tmp_path, toml: str, csv: str = CSV, name: str = "a.csv", how: str = "plain") -> Path:
    write_tree(tmp_path / "custom", {"crosshar.toml": toml}, "plain")
    write_tree(tmp_path / "custom", {name: csv}, how)
    return tmp_path


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_subjects_runs_and_canonical_labels(tmp_path, how):
    folder(tmp_path, descriptor(label_column="act", labels={"walk": "walking", "sit": "sitting"}), how=how)
    recs, _ = load(tmp_path)  # found as <data dir>/custom
    assert [(r.subject, len(r), r.labels[0]) for r in recs] == [
        ("custom:s1", 5, "walking"), ("custom:s2", 1, "sitting")]
    assert recs[0].gyro is None and not Custom().has_gyro(DataFolder(tmp_path / "custom"))
    np.testing.assert_allclose(recs[0].acc[:, 2], np.arange(5) / 10, rtol=1e-6)


def test_no_header_indices_tabs_and_labels_from_filenames(tmp_path):
    toml = descriptor(header=False, delimiter="\t", acc_columns=[1, 2, 3], gyro_columns=[4, 5, 6],
                      subject_column=None, subject_from_filename=r"(?P<subject>S\d+)_",
                      label_from_filename=r"_(?P<label>[a-z]+)\.tsv$", files="*.tsv", gyro_unit="deg/s")
    toml = toml.replace("subject_column = None\n", "")
    rows = "".join(f"{i}\t0\t0\t9.81\t180\t0\t-90\n" for i in range(3))
    write_tree(tmp_path, {"crosshar.toml": toml, "data/S07_sitting.tsv": rows, "data/S08_walking.tsv": rows})
    recs, _ = load(tmp_path)  # data_dir itself holds crosshar.toml
    assert [(r.subject, r.labels[0]) for r in recs] == [("custom:S07", "sitting"), ("custom:S08", "walking")]
    np.testing.assert_allclose(recs[0].gyro[0], [math.pi, 0, -math.pi / 2], rtol=1e-6)


def test_without_a_header_a_blank_first_line_still_sets_the_field_count(tmp_path):
    """Without a header the first line sets how many fields every line has; a blank first line left the count
    unchecked, and two lines run together (8 fields) were read as one sample, the rest dropped silently."""
    toml = descriptor(header=False, acc_columns=[1, 2, 3], subject_column=0)
    rows = ["s1,0.1,9.8,0.2"] * 6
    rows[3] = "s1,0.1,9.8,0.2,s1,0.1,9.8,0.2"
    folder(tmp_path, toml, "\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"line 5: expected 4 fields separated by ',', found 8"):
        load(tmp_path)


@pytest.mark.parametrize("kw, key", [
    ({"label_col": "act"}, "label_col"),  # unknown key
    ({"labels": {"walk": "walkin"}}, "labels.walk"),  # not a canonical name
    ({"gravity_included": False}, "gravity_included"),
    ({"acc_unit": "mg"}, "acc_unit"),
    ({"acc_columns": ["ax", "ay"]}, "acc_columns"),
    ({"subject_column": None}, "subject_column or subject_from_filename"),
    ({"label_from_filename": "(?P<lab>x)"}, "label_from_filename"),
    ({"header": False}, "acc_columns"),  # names without a header line
    ({"rate_hz": 0}, "rate_hz"),
])
def test_descriptor_errors_name_the_key(tmp_path, kw, key):
    toml = descriptor(**kw).replace("subject_column = None\n", "")
    folder(tmp_path, toml)
    with pytest.raises(ConfigError, match=re.escape(key)) as e:
        load(tmp_path)
    assert "crosshar.toml" in str(e.value)


def test_gravity_message_says_why():
    with pytest.raises(ValueError, match="crosshar needs the accelerometer's total acceleration, gravity included"):
        CustomDescriptor(rate_hz=50, acc_columns=("x", "y", "z"), subject_column="s", gravity_included=False)


@pytest.mark.parametrize("csv, message, line", [
    (CSV.replace("s1,0.1,9.8,0.2,walk", "s1,0.1,9.8,0.2,run"), "unknown label 'run'", 4),
    (CSV.replace("s1,0.1,9.8,0.2,walk", "s1,0.1,nan,0.2,walk"), "NaN or infinite", 4),
    (CSV.replace("s1,0.1,9.8,0.2,walk", "s1,0.1,9.8"), "expected 5 fields separated by ',', found 3", 4),
    # two lines run together (a lost newline): too many fields is a bad row too, not its first five read
    (CSV.replace("s1,0.1,9.8,0.2,walk", "s1,0.1,9.8,0.2,walks1,0.1,9.8,0.3,walk"),
     "expected 5 fields separated by ',', found 9", 4),
    # named as crosshar.toml chose it, not by an internal name
    (CSV.replace("s1,0.1,9.8,0.2,walk", "s1,0.1,9.8,zero,walk"),
     r"column 4 \(acc_columns\[2\] = 'az'\): cannot read 'zero' as a number", 4),
    (CSV.replace("s1,0.1,9.8,0.2,walk", ",0.1,9.8,0.2,walk"), "empty subject", 4),
])
def test_bad_rows_name_file_and_line(tmp_path, csv, message, line):
    folder(tmp_path, descriptor(label_column="act", labels={"walk": "walking", "sit": "sitting"}), csv)
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == line and e.value.path.endswith("a.csv")
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and [len(r) for r in recs] == [2, 2, 1]  # the run is cut around the row


def test_canonical_labels_without_a_table(tmp_path):
    csv = "who,ax,ay,az,act\ns1,0,0,9.8,walking\ns1,0,0,9.8,\ns1,0,0,9.8,walk\n"
    folder(tmp_path, descriptor(label_column="act"), csv)
    with pytest.raises(DataError, match="not a canonical activity name; map it in a \\[labels\\] table") as e:
        load(tmp_path)
    assert e.value.line == 4
    recs, _ = load(tmp_path, "skip")
    assert list(recs[0].labels) == ["walking", ""]  # an empty cell is unlabelled


def test_timestamps(tmp_path):
    toml = descriptor(timestamp_column="t", timestamp_unit="ms", rate_hz=10)
    rows = [0, 100, 200, 300, 2000, 2100, 2230, 2300, 2400]  # a 1.7 s gap, then jitter
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},{t / 1000},0,9.8\n" for t in rows)
    folder(tmp_path, toml, csv)
    recs, _ = load(tmp_path)
    assert [len(r) for r in recs] == [4, 5] and [r.extra["resampled"] for r in recs] == [False, True]
    np.testing.assert_allclose(recs[1].acc[:, 0], [2.0, 2.1, 2.2, 2.3, 2.4], rtol=1e-6)  # linear in time
    back = csv.replace("s1,2230", "s1,2050")
    back = back.replace("s1,2100", "s1,2150")
    folder(tmp_path, toml, back)
    with pytest.raises(DataError, match="time stamp 2050 does not increase") as e:
        load(tmp_path)
    assert e.value.line == 8
    folder(tmp_path, descriptor(timestamp_column="t", timestamp_unit="us", rate_hz=10), csv)
    with pytest.raises(DataError, match="time stamps imply 1e\\+04 Hz .* rate_hz = 10"):
        load(tmp_path)


def test_a_clock_reset_starts_a_new_recording_and_a_lone_step_back_is_one_bad_row(tmp_path):
    """Two sessions in one file, the second's clock from 0 again: every row after the reset was reported as going
    back (with --on-bad skip, the whole second session dropped); it is now a new recording, as a long gap is. A
    single stamp that goes back and the rows after it resuming the old clock is still that one bad row."""
    toml = descriptor(timestamp_column="t", timestamp_unit="ms", rate_hz=10)
    stamps = [5000, 5100, 5200, 5300, 5400, 0, 100, 200, 300]  # reset 5.4 s back (max_gap_s 1.0), then on from 0
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},{i},0,9.8\n" for i, t in enumerate(stamps))
    folder(tmp_path, toml, csv)
    recs, bad = load(tmp_path)
    assert [len(r) for r in recs] == [5, 4] and not bad.skipped
    np.testing.assert_allclose(recs[1].acc[:, 0], [5, 6, 7, 8])
    glitch = [0, 100, 200, 300, 400, 500, 150, 600, 700, 800]  # 150: back 0.35 s, the next row resumes at 600
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},{i},0,9.8\n" for i, t in enumerate(glitch))
    folder(tmp_path, toml, csv)
    with pytest.raises(DataError, match="time stamp 150 does not increase") as e:
        load(tmp_path)
    assert e.value.line == 8
    recs, bad = load(tmp_path, "skip")
    assert [ln for _, ln, _ in bad.skipped] == [8] and [len(r) for r in recs] == [6, 3]  # the skipped row cuts
    far = [0, 100, 200, 300, 400, 500, -4000, 600, 700]  # far back, but the next row resumes the old clock: bad
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},{i},0,9.8\n" for i, t in enumerate(far))
    folder(tmp_path, toml, csv)
    recs, bad = load(tmp_path, "skip")
    assert [ln for _, ln, _ in bad.skipped] == [8]


def test_a_skipped_row_between_timestamps_cuts_the_recording(tmp_path):
    """With timestamps, a row skipped for an unknown label (--on-bad skip) left a hole that the jitter resampling
    filled with invented samples labelled as the rows beside it; it now cuts the recording there, as a skipped row
    does without timestamps: every sample read is one of the file's, none made up."""
    toml = descriptor(timestamp_column="t", timestamp_unit="ms", rate_hz=10, label_column="act",
                      labels={"walk": "walking"})
    ts = [0, 100, 200, 330, 400, 500, 600, 700, 800]  # jitter: resampled
    acts = ["walk"] * 4 + ["dance"] + ["walk"] * 4  # "dance": no such label, the row skipped
    csv = "who,t,ax,ay,az,act\n" + "".join(f"s1,{t},{t / 1000},0,9.8,{a}\n" for t, a in zip(ts, acts))
    folder(tmp_path, toml, csv)
    recs, bad = load(tmp_path, on_bad="skip")
    assert [len(r) for r in recs] == [4, 4] and [ln for _, ln, _ in bad.skipped] == [6]  # before: one resampled recording of 9 samples
    np.testing.assert_allclose(recs[1].acc[:, 0], [0.5, 0.6, 0.7, 0.8], rtol=1e-6)


def test_a_wrong_timestamp_unit_is_an_error_naming_both_rates(tmp_path):
    """"s" on millisecond stamps: every interval (20 "s") exceeds max_gap_s, so each sample was its own
    recording and the dataset gave 0 windows, silently."""
    rows = 600
    csv = "who,t,ax,ay,az,act\n" + "".join(f"s1,{1000 + 20 * i},0.1,0.2,9.8,walk\n" for i in range(rows))
    folder(tmp_path, descriptor(timestamp_column="t", timestamp_unit="s", rate_hz=50, label_column="act",
                                labels={"walk": "walking"}), csv)
    with pytest.raises(DataError, match="imply 0.05 Hz .*timestamp_unit = 's'.* rate_hz = 50") as e:
        load(tmp_path)
    assert e.value.path.endswith("a.csv")
    folder(tmp_path, descriptor(timestamp_column="t", timestamp_unit="ms", rate_hz=50, label_column="act",
                                labels={"walk": "walking"}), csv)
    recs, _ = load(tmp_path)
    assert [len(r) for r in recs] == [rows]


@pytest.mark.parametrize("value, unit", [("1e39", "m/s^2"), ("1e300", "m/s^2"), ("-600", "m/s^2"), ("51", "g")])
def test_values_beyond_any_imu_are_bad_rows(tmp_path, value, unit):
    """1e39 passed the float64 finiteness check and became inf in float32 (then NaN windows)."""
    csv = CSV.replace("s1,0.1,9.8,0.2,walk", f"s1,0.1,{value},0.2,walk")
    folder(tmp_path, descriptor(label_column="act", acc_unit=unit, labels={"walk": "walking", "sit": "sitting"}), csv)
    with pytest.raises(DataError, match=re.escape(f"value {float(value):g} is beyond any IMU's range")) as e:
        load(tmp_path)
    assert e.value.line == 4 and e.value.path.endswith("a.csv")
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and all(np.isfinite(r.acc).all() for r in recs)


def test_recording_validate_checks_magnitudes_before_float32():
    from crosshar.data.recording import Recording

    acc = np.zeros((4, 3))
    acc[2, 1] = 1e39  # finite in float64, inf in float32
    rec = Recording(acc=acc, gyro=None, rate=50.0, labels=np.full(4, "walking"), subject="x:1", dataset="x",
                    source="f.csv")
    with pytest.raises(DataError, match="f.csv: acceleration sample 2: value 1e\\+39 is beyond any IMU's range"):
        rec.validate()


def test_missing_descriptor_and_files(tmp_path):
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "a.csv").write_text(CSV)
    with pytest.raises(MissingDataError, match="no crosshar.toml"):
        Custom().locate(tmp_path)
    with pytest.raises(MissingDataError, match="no crosshar.toml .* see docs/custom_data.md"):
        Custom().load(DataFolder(tmp_path / "custom"), BadRows())
    folder(tmp_path, descriptor(files="*.txt"))
    with pytest.raises(MissingDataError, match="no files match files = '\\*.txt'"):
        load(tmp_path)
    folder(tmp_path, descriptor(acc_columns=["ax", "ay", "acc_z"]))
    with pytest.raises(DataError, match="column 'acc_z' is not in the header line") as e:
        load(tmp_path)
    assert e.value.line == 1


def test_bad_toml(tmp_path):
    folder(tmp_path, "rate_hz = [50\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path)


def test_registered():
    assert isinstance(DATASETS.create("custom"), Custom) and Custom.folders == ("custom",)


def test_a_subject_coming_back_gets_a_new_session(tmp_path):
    csv = "who,ax,ay,az\ns1,0,0,9.8\ns1,0,0,9.8\ns2,0,0,9.8\ns1,0,0,9.8\n"
    folder(tmp_path, descriptor(), csv)
    recs, _ = load(tmp_path)
    assert [(r.subject, len(r)) for r in recs] == [("custom:s1", 2), ("custom:s2", 1), ("custom:s1", 1)]
    assert len({r.session for r in recs}) == 3 and all(set(r.labels) == {""} for r in recs)


# ---- several body positions in one file ([positions.NAME] tables)

POSITIONS_TOML = """rate_hz = 50
files = "*.log"
delimiter = "\\t"
header = false
subject_from_filename = "subject(?P<subject>\\\\d+)"
label_column = 18
{extra}
[labels]
1 = "standing"
4 = "walking"
0 = ""

[positions.chest]
acc_columns = [0, 1, 2]
gyro_columns = [3, 4, 5]

[positions.ankle]
acc_columns = [6, 7, 8]
gyro_columns = [9, 10, 11]
gyro_unit = "deg/s"

[positions.wrist]
acc_columns = [12, 13, 14]
gyro_columns = [15, 16, 17]
acc_unit = "g"
axes = ["-y", "x", "z"]
device = "watch"
"""


def positions_log(n: int, label: int = 4, seed: int = 0) -> np.ndarray:
    """(n, 19) rows of a wide log: chest acc (m/s^2) + gyro (rad/s), ankle acc + gyro (deg/s), wrist acc (g) + gyro
    (rad/s), the label; gravity on each sensor's y, a little motion."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 19))
    x[:, [0, 6]] = 0.3 * rng.standard_normal((n, 2))
    x[:, [1, 7]] = 9.8
    x[:, 12] = 0.03 * rng.standard_normal(n)
    x[:, 13] = 1.0
    x[:, [3, 15]] = 0.2 * rng.standard_normal((n, 2))
    x[:, 9] = 10.0 * rng.standard_normal(n)
    x[:, 18] = label
    return x


def log_text(x: np.ndarray) -> str:
    return "".join("\t".join([*(repr(float(v)) for v in row[:18]), str(int(row[18]))]) + "\n" for row in x)


def test_several_positions_in_one_file(tmp_path):
    """One recording per position and subject, each position in its own units and axes; sessions name the position."""
    a, b = positions_log(6), positions_log(4, label=1, seed=1)
    write_tree(tmp_path, {"crosshar.toml": POSITIONS_TOML.format(extra=""), "mHealth_subject1.log": log_text(a),
                          "mHealth_subject2.log": log_text(b)})
    recs, bad = load(tmp_path)
    assert not bad.skipped
    assert [(r.subject, r.position, len(r), r.labels[0], r.device) for r in recs] == [
        ("custom:1", "chest", 6, "walking", None), ("custom:1", "ankle", 6, "walking", None),
        ("custom:1", "wrist", 6, "walking", "watch"), ("custom:2", "chest", 4, "standing", None),
        ("custom:2", "ankle", 4, "standing", None), ("custom:2", "wrist", 4, "standing", "watch")]
    chest, ankle, wrist = recs[:3]
    np.testing.assert_allclose(chest.acc, a[:, 0:3], rtol=1e-6)
    np.testing.assert_allclose(ankle.acc, a[:, 6:9], rtol=1e-6)
    np.testing.assert_allclose(ankle.gyro, np.radians(a[:, 9:12]), rtol=1e-6, atol=1e-7)  # deg/s at the ankle only
    np.testing.assert_allclose(chest.gyro, a[:, 3:6], rtol=1e-6, atol=1e-7)
    # the wrist in g, its axes turned (x <- -y, y <- x): gravity, on the device's y, ends on crosshar's -x
    np.testing.assert_allclose(wrist.acc[:, 0], -GRAVITY * a[:, 13], rtol=1e-6)
    np.testing.assert_allclose(wrist.acc[:, 1], GRAVITY * a[:, 12], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(wrist.gyro[:, 1], a[:, 15], rtol=1e-6, atol=1e-7)
    assert len({r.session for r in recs}) == 6 and chest.session.startswith("mHealth_subject1.log:chest:")
    assert Custom().has_gyro(DataFolder(tmp_path))


def test_a_bad_value_names_its_position_and_skip_drops_the_row_for_all(tmp_path):
    x = positions_log(8)
    x[3, 10] = 5000.0  # deg/s at the ankle: beyond a ±4000 °/s gyroscope
    write_tree(tmp_path, {"crosshar.toml": POSITIONS_TOML.format(extra=""), "mHealth_subject3.log": log_text(x)})
    with pytest.raises(DataError, match=r"value 5000 is beyond any IMU's range .* \(position ankle\)") as e:
        load(tmp_path)
    assert e.value.line == 4 and e.value.path.endswith("mHealth_subject3.log")
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1
    # the skipped line is a hole in time for every position: each is cut in two there
    assert [(r.position, len(r)) for r in recs] == [("chest", 3), ("chest", 4), ("ankle", 3), ("ankle", 4),
                                                    ("wrist", 3), ("wrist", 4)]


def test_join_joins_each_positions_files(tmp_path):
    files = {"crosshar.toml": POSITIONS_TOML.format(extra="join = true")}
    for k in range(3):
        files[f"mHealth_subject5_{k}.log"] = log_text(positions_log(4, seed=k))
    write_tree(tmp_path, files)
    recs, _ = load(tmp_path)
    assert [(r.position, len(r), r.extra["joined"]) for r in recs] == [("chest", 12, 3), ("ankle", 12, 3),
                                                                       ("wrist", 12, 3)]


@pytest.mark.parametrize("change, message", [
    (("label_column = 18", "label_column = 18\nacc_columns = [0, 1, 2]"),
     r"with \[positions\.NAME\] tables, acc_columns, gyro_columns and position go inside each table"),
    (("gyro_columns = [3, 4, 5]\n", ""), "every position must have the same sensors"),
    (('gyro_unit = "deg/s"', 'gyro_unit = "dps"'), r"positions.ankle: gyro_unit must be \"rad/s\" or \"deg/s\""),
    (('device = "watch"', 'devise = "watch"'), r"positions.wrist: unknown key\(s\) devise"),
    (("[positions.ankle]\nacc_columns = [6, 7, 8]\n", "[positions.ankle]\n"), "positions.ankle needs acc_columns"),
    (("[positions.ankle]", '[positions."left@ankle"]'), "a position name is a word or two of letters and digits"),
    (("[positions.ankle]", '[positions."!!"]'), "so that NAME@POSITION can select it"),  # selects as ""
    (("[positions.ankle]", "[positions.Chest]"), r"positions.Chest and positions.chest are one position to "
                                                r"NAME@POSITION \(both select as 'chest'\)"),
    (("acc_columns = [12, 13, 14]", "acc_columns = [12, 13]"), "positions.wrist: acc_columns must list three"),
])
def test_position_tables_are_checked(tmp_path, change, message):
    write_tree(tmp_path, {"crosshar.toml": POSITIONS_TOML.format(extra="").replace(*change),
                          "mHealth_subject1.log": log_text(positions_log(4))})
    with pytest.raises(ConfigError, match=message) as e:
        load(tmp_path)
    assert "crosshar.toml" in str(e.value)


def test_one_position_of_your_own_data_is_selected_with_at(tmp_path, monkeypatch):
    """End to end: `<folder>@ankle` prepares the ankle's windows only; a position the file lacks is an error."""
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    data = tmp_path / "mhealth"
    write_tree(data, {"crosshar.toml": POSITIONS_TOML.format(extra='name = "mh"'),
                      **{f"mHealth_subject{s}.log": log_text(positions_log(650, seed=s)) for s in (1, 2)}})
    ws = prepare(str(data))
    assert ws.dataset == "mh" and len(ws) == 12 and set(ws.recording_attr("position").tolist()) == {
        "chest", "ankle", "wrist"}
    ankle = prepare(f"{data}@ankle")
    assert len(ankle) == 4 and set(ankle.recording_attr("position").tolist()) == {"ankle"}
    with pytest.raises(ConfigError, match=r"no recording at body position 'hip'; its positions: ankle"):
        prepare(f"{data}@hip")


def test_brackets_in_your_data_are_printed_as_they_are(tmp_path):
    """A label cell "[/walk]" was read as a closing markup tag by the console (a traceback, exit 1), and "[labels]"
    in a message vanished; both are printed as they are now, in one line, exit 2, and skipping them lists them."""
    from typer.testing import CliRunner

    from crosshar.cli import app

    csv = "who,ax,ay,az,act\n" + "".join(f"s1,0.1,9.8,{0.01 * (i % 7)},walk\n" for i in range(700))
    csv = csv.replace("s1,0.1,9.8,0.02,walk", "s1,0.1,9.8,0.02,[/walk]", 1)  # line 4
    data = tmp_path / "lab [bold]x"
    write_tree(data, {"crosshar.toml": descriptor(label_column="act", labels={"walk": "walking", "sit": "sitting"}),
                      "a.csv": csv})
    res = CliRunner().invoke(app, ["data", "prepare", "-d", str(data)], env={"CROSSHAR_HOME": str(tmp_path / "h")})
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "unknown label '[/walk]': it is not in the [labels] table of crosshar.toml" in res.output
    assert "lab [bold]x" in res.output
    res = CliRunner().invoke(app, ["data", "prepare", "-d", str(data), "--on-bad", "skip"],
                             env={"CROSSHAR_HOME": str(tmp_path / "h")})
    assert "Traceback" not in res.output and "unknown label '[/walk]'" in res.output, res.output


def test_an_edited_descriptor_is_never_served_stale_windows(tmp_path, monkeypatch):
    """The cache key missed crosshar.toml: a label mapped anew, axes or position changed, and prepare (and every
    command after it) kept reading the old windows without a word."""
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    csv = "who,ax,ay,az,act\n" + "".join(f"s1,0.1,9.8,{0.01 * (i % 7)},walk\n" for i in range(700))
    toml = descriptor(label_column="act", labels={"walk": "walking"}, position="pocket")
    write_tree(tmp_path / "lab", {"crosshar.toml": toml, "a.csv": csv})
    ws = prepare(str(tmp_path / "lab"), cfg=WindowConfig(channels="acc"))
    assert set(ws.labels.tolist()) == {"walking"} and set(ws.recording_attr("position").tolist()) == {"pocket"}
    (tmp_path / "lab" / "crosshar.toml").write_text(toml.replace('"walking"', '"running"').replace("pocket", "belt"))
    ws = prepare(str(tmp_path / "lab"), cfg=WindowConfig(channels="acc"))
    assert set(ws.labels.tolist()) == {"running"} and set(ws.recording_attr("position").tolist()) == {"belt"}


@pytest.mark.parametrize("kw, message", [
    ({"acc_columns": ["ax", "ax", "az"]}, r"a.csv: column 'ax' is used twice in crosshar.toml: by acc_columns\[0\] and "
                                          r"acc_columns\[1\]"),
    ({"label_column": 1, "header": True}, r"column 'ax' and 1 \(both column 1\) is used twice in crosshar.toml: by "
                                          r"acc_columns\[0\] and label_column"),
])
def test_a_column_used_twice_is_named_as_you_wrote_it(tmp_path, kw, message):
    folder(tmp_path, descriptor(**kw))
    with pytest.raises(ConfigError, match=message):
        load(tmp_path)


def test_a_selection_is_checked_against_the_descriptor_as_it_is_now(tmp_path, monkeypatch):
    """The position check read the first cache whose name began with the dataset's: a position renamed in
    crosshar.toml (or another folder's cache of the same name, or "mylog-x"'s) refused what prepare had just built."""
    from crosshar.data.store import cached, check_specs, prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    data = tmp_path / "a"
    toml = POSITIONS_TOML.format(extra='name = "mylog"')
    write_tree(data, {"crosshar.toml": toml, **{f"mHealth_subject{s}.log": log_text(positions_log(650, seed=s))
                                                 for s in (1, 2)}})
    prepare(str(data))
    (data / "crosshar.toml").write_text(toml.replace("[positions.ankle]", "[positions.foot]"))
    check_specs([f"{data}@foot"])  # refused before: "its positions: ankle, chest, wrist" (the old cache)
    assert len(prepare(f"{data}@foot")) == 4
    with pytest.raises(ConfigError, match=r"no recording at body position 'ankle'; its positions: chest, foot, wrist$"):
        check_specs([f"{data}@ankle"])
    write_tree(tmp_path / "b", {"crosshar.toml": toml.replace('name = "mylog"', 'name = "mylog-x"'),
                                "mHealth_subject3.log": log_text(positions_log(650))})
    prepare(str(tmp_path / "b"))
    assert all(m.name.startswith("mylog-") and not m.name.startswith("mylog-x-") for m in cached("mylog"))
    assert len(cached("mylog")) == 2 and len(cached("mylog-x")) == 1


@pytest.mark.parametrize("change, message", [
    # the wrist's accelerometer is in g: without acc_unit = "g" it reads 1 m/s² at rest, which the other two
    # positions outvoted when pooled
    (('acc_unit = "g"\n', ""), r"\(position wrist\): median \|acc\| at rest is 1 m/s² .* acceleration in g but declared"),
])
def test_each_position_is_checked_on_its_own(tmp_path, monkeypatch, change, message):
    from crosshar.data.checks import CheckError
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    x = positions_log(3000)
    x[:, [0, 2, 6, 8]] = 0.01 * rng.standard_normal((3000, 4))  # still: gravity alone on each y
    x[:, 12] = 0.001 * rng.standard_normal(3000)
    write_tree(tmp_path / "d", {"crosshar.toml": POSITIONS_TOML.format(extra="").replace(*change),
                                "mHealth_subject1.log": log_text(x)})
    with pytest.raises(CheckError, match=message):
        prepare(str(tmp_path / "d"))
    write_tree(tmp_path / "ok", {"crosshar.toml": POSITIONS_TOML.format(extra=""), "mHealth_subject1.log": log_text(x)})
    ws = prepare(str(tmp_path / "ok"))
    by = ws.manifest["checks"]["by_position"]
    assert sorted(by) == ["ankle", "chest", "wrist"] and all(
        abs(f["gravity"]["median_ms2"] - 9.8) < 0.1 for f in by.values())


def test_a_symlink_loop_is_read_once(tmp_path):
    """`sub/loop -> ..` was followed until the path grew too long: every file read ~40 times over, silently (60
    windows became 2,460, each a copy)."""
    folder(tmp_path, descriptor(label_column="act", labels={"walk": "walking", "sit": "sitting"}))
    (tmp_path / "custom" / "sub").mkdir()
    (tmp_path / "custom" / "sub" / "loop").symlink_to("..")
    recs, _ = load(tmp_path)
    assert [(r.subject, len(r)) for r in recs] == [("custom:s1", 5), ("custom:s2", 1)]


def test_a_broken_symlink_is_named_not_a_traceback(tmp_path, monkeypatch):
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    folder(tmp_path, descriptor())
    (tmp_path / "custom" / "b.csv").symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match=r"b.csv: cannot read .*a symbolic link to .*nowhere.csv, which is missing"):
        prepare(str(tmp_path / "custom"), cfg=WindowConfig(channels="acc"))


def test_join_keeps_the_pieces_of_one_file_apart(tmp_path):
    """join = true glued a file back together across a one-minute time gap, and across a skipped row, as if the
    pieces were consecutive files: windows straddled the hole."""
    rows = [0, 100, 200, 300, 60000, 60100, 60200]
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},0,9.8,0\n" for t in rows)
    folder(tmp_path, descriptor(timestamp_column="t", timestamp_unit="ms", rate_hz=10, join=True), csv)
    (tmp_path / "custom" / "b.csv").write_text("who,t,ax,ay,az\n" + "".join(f"s1,{t},0,9.8,0\n" for t in rows[4:]))
    recs, _ = load(tmp_path)
    assert [(len(r), r.extra.get("joined", 1)) for r in recs] == [(4, 1), (6, 2)]  # a.csv's tail + b.csv only
    csv = "who,ax,ay,az\n" + "s1,0,9.8,0\n" * 3 + "s1,0,nan,0\n" + "s1,0,9.8,0\n" * 3
    folder(tmp_path, descriptor(join=True), csv)
    (tmp_path / "custom" / "b.csv").unlink()
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and [len(r) for r in recs] == [3, 3]


@pytest.mark.parametrize("content, message, line", [
    (b"", "the file is empty", None),
    (b"\n\n", "the file is empty", None),
    (b"\nwho,ax,ay,az\ns1,0,9.8,0\n", "the first line is empty, but header = true", 1),
    ("who,ax,ay,az\ns1,0,9.8,0\n".encode("utf-16"), "not UTF-8 text: it holds NUL bytes (UTF-16", None),
], ids=["empty", "blank lines", "blank first line", "utf-16"])
def test_an_empty_or_utf16_file_says_so(tmp_path, content, message, line):
    """An empty file read "column 'ax' is not in the header line ()"; a UTF-16 one listed its NUL-laced names."""
    folder(tmp_path, descriptor(), csv=content)
    with pytest.raises(DataError, match=re.escape(message)) as e:
        load(tmp_path)
    assert e.value.path.endswith("a.csv") and e.value.line == line
    recs, bad = load(tmp_path, "skip")
    assert recs == [] and len(bad.skipped) == 1


def test_a_span_at_another_rate_says_how_many_rows_it_drops(tmp_path):
    """Skipped as one item at its first line, 1,500 rows left "skipped 1 bad item(s)" as the only count."""
    rows = [20 * i for i in range(60)] + [5000 + 40 * i for i in range(30)]
    csv = "who,t,ax,ay,az\n" + "".join(f"s1,{t},0,9.8,0\n" for t in rows)
    folder(tmp_path, descriptor(timestamp_column="t", timestamp_unit="ms"), csv)
    with pytest.raises(DataError, match="a rate of 25 Hz here but rate_hz = 50 .*: the 30 rows of lines 62-91") as e:
        load(tmp_path)
    assert e.value.line == 62
    recs, bad = load(tmp_path, "skip")
    assert [len(r) for r in recs] == [60] and len(bad.skipped) == 1
