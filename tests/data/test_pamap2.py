"""PAMAP2 loader: 54-column .dat files, one recording per IMU (wrist / chest / ankle) and span, labels,
NaN drop-outs, bad input, and the windows `prepare` makes of it."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.pamap2 import ACTIVITIES, DEVICE, PAMAP2  # the import registers "pamap2"
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import set_field, skips_truncated_gz, truncate_gz, write_tree

POSITIONS = ["wrist", "chest", "ankle"]  # the hand, chest and ankle IMUs, in column order
PROTOCOL = "PAMAP2_Dataset/Protocol/"
OPTIONAL = "PAMAP2_Dataset/Optional/"


def block(b: int, i: int) -> list[float]:
    """The 17 values of IMU b at row i: temperature, acc ±16 g, acc ±6 g, gyro, magnetometer, orientation.
    Acc and gyro are linear in i, so interpolation over a drop-out gives back the missing row exactly."""
    return [30.0 + b, b + 0.01 * i, 9.8, -1.0 - b, 50.0 + b, 50.0, 50.0,  # the ±6 g one must not be read
            0.001 * i, 0.1 * b, -0.5, 30.0, -12.0, 4.0, 1.0, 0.0, 0.0, 0.0]


def dat_text(acts, nan=(), patch=None, values=block, t0: float = 8.38) -> str:
    """A subject1NN.dat file, one line per activityID in `acts`, every 0.01 s. `nan`: (imu, row) pairs whose
    17 columns are NaN (a wireless drop-out), or (imu, row, column within the block) for one value."""
    rows = [[t0 + 0.01 * i, a, 104.0 if i % 10 == 0 else np.nan, *(v for b in range(3) for v in values(b, i))]
            for i, a in enumerate(acts)]
    for imu, i, *col in nan:
        for c in col or range(17):
            rows[i][3 + 17 * imu + c] = np.nan
    lines = [" ".join([f"{r[0]:.2f}", str(r[1]), *("NaN" if np.isnan(v) else repr(float(v)) for v in r[2:])])
             for r in rows]
    return "\n".join(patch(lines) if patch else lines) + "\n"


def expected(b: int, rows) -> tuple[np.ndarray, np.ndarray]:
    """(acc, gyro) of IMU b at the given rows, from the file's ±16 g and gyroscope columns."""
    v = np.array([block(b, i) for i in rows])
    return v[:, 1:4], v[:, 7:10]


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return PAMAP2().load(DataFolder(PAMAP2().locate(root)), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_three_positions_per_file_plain_gz_zip(tmp_path, how):
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject101.dat": dat_text([4] * 30),
                                     OPTIONAL + "subject101.dat": dat_text([9] * 20),
                                     PROTOCOL + "subject102.dat": dat_text([1] * 25)}, how)
    recs, bad = load(tmp_path)
    assert [r.session for r in recs] == [f"{s}_{p}_0" for s in ("101_protocol", "101_optional", "102_protocol")
                                         for p in POSITIONS]
    assert [r.subject for r in recs] == ["pamap2:101"] * 6 + ["pamap2:102"] * 3  # Protocol + Optional: one subject
    assert [r.position for r in recs] == POSITIONS * 3 and not bad.skipped
    for r, n, label in zip(recs, [30] * 3 + [20] * 3 + [25] * 3, ["walking"] * 3 + ["watching_tv"] * 3 + ["lying"] * 3):
        acc, gyro = expected(POSITIONS.index(r.position), range(n))
        assert (len(r), r.rate, r.dataset, r.device, r.extra["nan_rows"]) == (n, 100.0, "pamap2", DEVICE, 0)
        np.testing.assert_allclose(r.acc, acc, rtol=1e-6)  # ±16 g columns, not the ±6 g ones (50 m/s^2)
        np.testing.assert_allclose(r.gyro, gyro, rtol=1e-6, atol=1e-7)
        assert set(r.labels) == {label}
    assert PAMAP2().has_gyro(DataFolder(tmp_path / "pamap2"))


def test_activity_ids_map_to_canonical_labels(tmp_path):
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 24]
    write_tree(tmp_path / "PAMAP2_Dataset", {"Protocol/subject103.dat": dat_text(np.repeat(ids, 2).tolist())})
    recs, _ = load(tmp_path)
    want = ["", "lying", "sitting", "standing", "walking", "running", "biking", "nordic_walking", "watching_tv",
            "computer_work", "car_driving", "upstairs", "downstairs", "vacuum_cleaning", "ironing", "folding",
            "house_cleaning", "playing_soccer", "rope_jumping"]
    assert len(recs) == 3  # labels change within a recording: windowing keeps only windows of one label
    for r in recs:
        assert r.labels.tolist() == np.repeat(want, 2).tolist()


def test_nan_rows_are_dropped_counted_and_a_long_run_splits(tmp_path):
    nan = ([(0, 10), (0, 50), (0, 51), (0, 52), (0, 80, 8)]  # wrist: short drop-outs (one a gyro value): bridged
           + [(1, 30 + k) for k in range(20)] + [(1, 5, 4)]  # chest: 0.2 s lost; a NaN ±6 g value is no drop-out
           + [(2, 20 + k) for k in range(9)] + [(2, 60 + k) for k in range(10)])  # ankle: 0.1 s bridged, 0.11 s not
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject104.dat": dat_text([4] * 100, nan=nan)})
    recs, bad = load(tmp_path)
    got = {r.session: (r, [int(round(a)) for a in (r.acc[:, 0] - POSITIONS.index(r.position)) * 100]) for r in recs}
    assert {s: (len(r), r.extra["nan_rows"]) for s, (r, _) in got.items()} == {
        "104_protocol_wrist_0": (100, 5), "104_protocol_chest_0": (30, 20), "104_protocol_chest_1": (50, 0),
        "104_protocol_ankle_0": (60, 19), "104_protocol_ankle_1": (30, 0)}
    assert not bad.skipped
    assert PAMAP2().dropped_counts(recs) == {PAMAP2.dropped["nan_rows"]: 44}  # what prepare's summary reports
    for s, first, last in [("wrist_0", 0, 99), ("chest_0", 0, 29), ("chest_1", 50, 99), ("ankle_0", 0, 59),
                           ("ankle_1", 70, 99)]:
        r, rows = got["104_protocol_" + s]
        assert rows == list(range(first, last + 1))  # the 100 Hz grid: bridged rows filled, none invented
        acc, gyro = expected(POSITIONS.index(r.position), range(first, last + 1))
        np.testing.assert_allclose(r.acc, acc, rtol=1e-5)  # interpolated over the gaps: linear data comes back
        np.testing.assert_allclose(r.gyro, gyro, rtol=1e-5, atol=1e-6)


def test_labels_follow_the_nearest_row_across_a_drop_out(tmp_path):
    acts = [1] * 10 + [2] * 10 + [3] * 20
    nan = [(0, 9), (0, 10)] + [(1, 15 + k) for k in range(15)]  # wrist: bridged; chest: split
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject105.dat": dat_text(acts, nan=nan)})
    labels = {r.session: r.labels.tolist() for r in load(tmp_path)[0]}
    assert labels["105_protocol_wrist_0"] == ["lying"] * 10 + ["sitting"] * 10 + ["standing"] * 20  # bridged rows too
    assert labels["105_protocol_chest_0"] == ["lying"] * 10 + ["sitting"] * 5
    assert labels["105_protocol_chest_1"] == ["standing"] * 10


def test_whitespace_variants_read_the_same(tmp_path):
    clean = dat_text([4] * 12)
    messy = "\n".join(("  " + ln.replace(" ", "\t", 3).replace(" ", "  ", 2) + " ") for ln in clean.splitlines()) + "\n"
    write_tree(tmp_path / "a" / "pamap2", {PROTOCOL + "subject101.dat": clean})
    write_tree(tmp_path / "b" / "pamap2", {PROTOCOL + "subject101.dat": messy})
    a, _ = load(tmp_path / "a")
    b, _ = load(tmp_path / "b")
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.acc, rb.acc)
        np.testing.assert_array_equal(ra.gyro, rb.gyro)


def _set(line: int, col: int, value: str):
    return set_field(line, col, value, " ")


@pytest.mark.parametrize("patch, message, line", [
    (lambda ls: ls[:3] + [ls[3].rsplit(" ", 1)[0]] + ls[4:], r"expected 54 fields separated by ' ', found 53", 4),
    (_set(5, 5, "abc"), r"column 5 \(hand_acc16_x\): cannot read 'abc' as a number", 5),
    (_set(6, 2, "4.5"), r"column 2 \(activityID\): cannot read '4.5' as an integer", 6),
    (_set(7, 2, "8"), r"unknown activityID 8; PAMAP2's are 0, 1, 2", 7),
    (_set(10, 1, "NaN"), r"timestamp nan is not a finite number", 10),
    (_set(11, 28, "1000.0"), r"column 28 \(chest_gyro_x\): value 1000 is beyond any IMU's range", 11),
    (_set(12, 41, "inf"), r"column 41 \(ankle_acc16_z\): NaN or infinite value", 12),
])
def test_bad_input_names_file_and_line_and_skip_mode_skips_it(tmp_path, patch, message, line):
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject101.dat": dat_text([4] * 20, patch=patch)})
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    path = str(tmp_path / "pamap2" / PROTOCOL / "subject101.dat")
    assert e.value.path == path and e.value.line == line and str(e.value).startswith(f"{path}, line {line}: ")
    recs, bad = load(tmp_path, "skip")
    assert [(p, ln) for p, ln, _ in bad.skipped] == [(path, line)] and f"line {line}: " in bad.report()
    # the skipped line ends every position's recording: the rest continues as the next session
    assert [(r.session, len(r)) for r in recs] == [(f"101_protocol_{p}_{k}", n) for p in POSITIONS
                                                   for k, n in enumerate([line - 1, 20 - line])]


@pytest.mark.parametrize("shift", [0.05, 0.01], ids=["back", "repeated"])
def test_time_that_does_not_go_forward_starts_another_piece(tmp_path, shift):
    """Pieces of a recording joined in one file (the readme): where the timestamp steps back or repeats, every
    position's recording ends and the next piece is a session of its own; nothing is reported as bad."""
    def later_piece(lines):  # lines 9.. stamped `shift` s earlier: line 9 is not after line 8
        for i in range(8, len(lines)):
            f = lines[i].split(" ")
            lines[i] = " ".join([f"{float(f[0]) - shift:.2f}", *f[1:]])
        return lines

    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject101.dat": dat_text([4] * 20, patch=later_piece)})
    recs, bad = load(tmp_path)
    assert bad.skipped == []
    assert [(r.session, len(r)) for r in recs] == [(f"101_protocol_{p}_{k}", n) for p in POSITIONS
                                                   for k, n in enumerate([8, 12])]


def test_missing_files_and_registration(tmp_path):
    from crosshar.data.labels import VOCAB

    (tmp_path / "pamap2").mkdir()
    with pytest.raises(MissingDataError, match=r"Protocol/subject101\.dat"):
        load(tmp_path)
    with pytest.raises(MissingDataError, match="PAMAP2_Dataset"):
        PAMAP2().locate(tmp_path / "nowhere")
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject106.dat": ""})
    with pytest.raises(DataError, match=r"subject106\.dat: no readable data rows"):
        load(tmp_path)
    assert isinstance(DATASETS.create("pamap2"), PAMAP2) and "/231/" in PAMAP2.url
    assert set(ACTIVITIES.values()) - {""} <= set(VOCAB) and ACTIVITIES[0] == ""


def test_the_uci_archive_is_read_in_place_and_downloads(tmp_path):
    """The UCI zip holds readme.pdf and PAMAP2_Dataset.zip: read nested as it is, or after `data download`."""
    from crosshar.data.download import download
    from crosshar.data.store import get_dataset

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(PROTOCOL + "subject101.dat", dat_text([4] * 15))
        z.writestr(OPTIONAL + "subject101.dat", dat_text([24] * 15))
    outer = tmp_path / "pamap2+physical+activity+monitoring.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("readme.pdf", b"%PDF-1.4")
        z.writestr("PAMAP2_Dataset.zip", inner.getvalue())
    (tmp_path / "a" / "pamap2").mkdir(parents=True)
    (tmp_path / "a" / "pamap2" / outer.name).write_bytes(outer.read_bytes())
    recs, _ = load(tmp_path / "a")
    assert [r.session for r in recs] == [f"101_{k}_{p}_0" for k in ("protocol", "optional") for p in POSITIONS]
    assert recs[0].source.endswith("PAMAP2_Dataset.zip!PAMAP2_Dataset/Protocol/subject101.dat")
    rep = download(get_dataset("pamap2"), tmp_path / "b", src=str(outer))
    assert rep["folder"] == str(tmp_path / "b" / "pamap2")
    recs, _ = load(tmp_path / "b")
    assert len(recs) == 6 and set(recs[-1].labels) == {"rope_jumping"}


def test_prepare_gives_windows_per_body_position(tmp_path, monkeypatch):
    """End to end: 13 s of walking at 100 Hz -> 20 Hz windows of 120 samples, two per IMU, each window mapped to
    its body position in the cache's manifest (what a `pamap2@chest` selection reads)."""
    from typer.testing import CliRunner

    from crosshar.cli import app
    from crosshar.data.store import prepare

    def plausible(b: int, i: int) -> list[float]:  # gravity on y and a little motion: passes the physical checks
        return [30.0, float(0.5 * np.sin(0.05 * i)), float(9.8 + 0.5 * np.cos(0.05 * i)), 0.1 * b, 0.0, 9.8, 0.0,
                0.0, 0.0, 0.0, 30.0, -12.0, 4.0, 1.0, 0.0, 0.0, 0.0]

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "data" / "pamap2", {PROTOCOL + "subject101.dat": dat_text([4] * 1300, values=plausible),
                                              OPTIONAL + "subject101.dat": dat_text([0] * 700, values=plausible)})
    ws = prepare("pamap2", tmp_path / "data")
    assert ws.X.shape == (6, 120, 6) and ws.config.rate_hz == 20.0 and set(ws.labels) == {"walking"}
    assert ws.recording_attr("position").tolist() == ["wrist", "wrist", "chest", "chest", "ankle", "ankle"]
    assert set(ws.subjects) == {"pamap2:101"} and ws.manifest["n_recordings"] == 6  # Optional: unlabelled only
    np.testing.assert_allclose(ws.X[:, :, 1].mean(), 9.8, atol=0.1)
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "pamap2", "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 0, res.output
    assert "windows per body position: ankle:2, chest:2, wrist:2" in res.output


# ---- real data


@pytest.mark.realdata
def test_real_pamap2(capsys):
    """Nine subjects, three positions; at each position gravity at rest and acc and gyro in one right-handed frame
    (the rigid-body law d(acc)/dt = -w x acc)."""
    import time

    from rawfmt import real_folder, rotation_slope

    folder = real_folder(PAMAP2())
    t0 = time.perf_counter()
    recs = PAMAP2().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    # a copy may hold part of the dataset (as the shared WISDM does): at most every subject
    assert 0 < len({r.subject for r in recs}) <= 9 and {r.position for r in recs} == set(POSITIONS)
    labels = set(np.concatenate([np.unique(r.labels) for r in recs]).tolist())
    assert {"upstairs", "downstairs", "walking", "lying"} <= labels
    lines = []
    for p in POSITIONS:
        mine = [r for r in recs if r.position == p]
        still = np.concatenate([r.acc[r.labels == "standing"] for r in mine])
        num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in mine[::3]], axis=0)
        assert abs(np.linalg.norm(still, axis=1).mean() - 9.8) < 0.6 and num / den > 0.8, (p, num / den)
        lines.append(f"{p}: standing |acc| {np.linalg.norm(still, axis=1).mean():.2f}, slope {num / den:.2f}")
    with capsys.disabled():
        print(f"\n[pamap2] {len(recs)} recordings, load {seconds:.1f} s; " + "; ".join(lines))


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip: one damaged
    subject file made the dataset unreadable. Now an error naming it by default; in skip mode it is listed, the others
    read."""
    write_tree(tmp_path / "pamap2", {PROTOCOL + "subject101.dat": dat_text([4] * 30),
                                     PROTOCOL + "subject102.dat": dat_text([1] * 25)}, "gz")
    gz = truncate_gz(tmp_path / "pamap2" / PROTOCOL / "subject102.dat.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert [r.session for r in recs] == [f"101_protocol_{p}_0" for p in POSITIONS]
