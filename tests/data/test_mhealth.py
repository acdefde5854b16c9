"""MHEALTH loader: 24-column tab-separated .log files, one recording per body position (chest / ankle / wrist) and
piece, gyro deg/s -> rad/s, labels, the chest (acc only: acc-only windows, left out of 6-channel ones), bad input, and
the windows `prepare` makes of it."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.mhealth import ACTIVITIES, DEVICE, MHEALTH  # the import registers "mhealth"
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import set_field, skips_truncated_gz, truncate_gz, write_tree

POSITIONS = ["chest", "ankle", "wrist"]  # the chest, left-ankle and right-lower-arm units, in column order
GYRO_POSITIONS = ["ankle", "wrist"]  # the chest unit has no gyroscope
D = "MHEALTHDATASET/"


def values(i: int) -> list[float]:
    """The 23 sensor columns of row i as the README lists them: chest acc, ECG 1-2, ankle acc, gyro (deg/s),
    magnetometer, arm acc, gyro (deg/s), magnetometer. The columns that must not be read hold values no parsed
    column does (ECG 0.004, magnetometer 7.x)."""
    return [-9.8 + 0.01 * i, 0.05, 0.3, 0.0041863, -0.0041863,  # chest acc, ECG (not read)
            2.0 + 0.01 * i, -9.7, 0.6, 10.0 + i, -20.0, 0.5 * i,  # ankle acc, gyro
            7.1, 7.2, 7.3,  # ankle magnetometer
            -8.6, -4.5 - 0.01 * i, 0.2, -30.0, 45.0 + i, -1.0,  # arm acc, gyro
            7.4, 7.5, 7.6]  # arm magnetometer


def log_text(labels, patch=None, row=values) -> str:
    """An mHealth_subject<n>.log file: one tab-separated line per label in `labels`, sensor columns as `row` gives
    them (full precision), the label an integer (as the real files write it)."""
    lines = ["\t".join([*(repr(float(v)) for v in row(i)), str(lab)]) for i, lab in enumerate(labels)]
    return "\n".join(patch(lines) if patch else lines) + "\n"


def expected(position: str, rows) -> tuple[np.ndarray, np.ndarray | None]:
    """(acc m/s^2, gyro rad/s or None: the chest) of a position at the given rows, from its file columns."""
    v = np.array([values(i) for i in rows])
    a = {"chest": 0, "ankle": 5, "wrist": 14}[position]
    return v[:, a: a + 3], None if position == "chest" else np.deg2rad(v[:, a + 3: a + 6])


def same_recordings(a, b) -> None:
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra.acc, rb.acc)
        assert (ra.gyro is None) == (rb.gyro is None)
        if ra.gyro is not None:
            np.testing.assert_array_equal(ra.gyro, rb.gyro)
        assert ra.labels.tolist() == rb.labels.tolist()


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return MHEALTH().load(DataFolder(MHEALTH().locate(root)), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_three_positions_per_file_plain_gz_zip(tmp_path, how):
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject10.log": log_text([11] * 15),
                                      D + "mHealth_subject1.log": log_text([4] * 30),
                                      D + "mHealth_subject2.log": log_text([1] * 20)}, how, zip_name="mhealth+dataset.zip")
    recs, bad = load(tmp_path)
    assert [r.session for r in recs] == [f"{s}_{p}_0" for s in (1, 2, 10) for p in POSITIONS]  # by subject number
    assert [r.subject for r in recs] == ["mhealth:1"] * 3 + ["mhealth:2"] * 3 + ["mhealth:10"] * 3
    assert [r.position for r in recs] == POSITIONS * 3 and not bad.skipped
    for r, n, label in zip(recs, [30] * 3 + [20] * 3 + [15] * 3, ["walking"] * 3 + ["standing"] * 3 + ["running"] * 3):
        acc, gyro = expected(r.position, range(n))
        assert (len(r), r.rate, r.dataset, r.device) == (n, 50.0, "mhealth", DEVICE)
        np.testing.assert_allclose(r.acc, acc, rtol=1e-6)  # each unit's own columns, not a magnetometer's 7.x
        if gyro is None:
            assert r.gyro is None and r.position == "chest"  # acc alone, never a made-up gyroscope
        else:
            np.testing.assert_allclose(r.gyro, gyro, rtol=1e-6)
        assert set(r.labels) == {label} and r.extra == {"first_line": 1, "unnamed_rows": 0}
        assert r.source.replace("!", "/").removesuffix(".gz").endswith(f"{D}mHealth_subject{r.subject[8:]}.log")
    assert MHEALTH().has_gyro(DataFolder(tmp_path / "mhealth"))


def test_units_gyro_degrees_to_radians_acc_as_is(tmp_path):
    """The README: acceleration m/s^2, gyroscope deg/s (Shimmer's calibrated units): gyro x pi/180, acc unchanged."""
    def row(i: int) -> list[float]:
        v = values(i)
        v[5:11] = [2.1849, -9.6967, 0.63077, 180.0, -90.0, 0.0]  # ankle: subject 1's first acc; gyro in deg/s
        v[14:20] = [-8.6499, -4.5781, 0.18776, 0.0, 45.0, -360.0]
        return v

    write_tree(tmp_path / "MHEALTHDATASET", {"mHealth_subject3.log": log_text([2] * 4, row=row)})
    chest, ankle, wrist = load(tmp_path)[0]
    np.testing.assert_allclose(ankle.acc[0], [2.1849, -9.6967, 0.63077], rtol=1e-6)
    np.testing.assert_allclose(ankle.gyro[0], [np.pi, -np.pi / 2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(wrist.acc[0], [-8.6499, -4.5781, 0.18776], rtol=1e-6)
    np.testing.assert_allclose(wrist.gyro[0], [0.0, np.pi / 4, -2 * np.pi], rtol=1e-6)
    assert ankle.acc.dtype == ankle.gyro.dtype == chest.acc.dtype == np.float32 and set(ankle.labels) == {"sitting"}
    np.testing.assert_allclose(chest.acc[0], values(0)[:3], rtol=1e-6)  # m/s^2 as written


def test_labels_map_to_canonical_and_stairs_merges_like_wisdm(tmp_path):
    from crosshar.data.labels import VOCAB, LabelSpace

    write_tree(tmp_path / "mhealth", {D + "mHealth_subject4.log": log_text(np.repeat(range(13), 2).tolist())})
    recs, bad = load(tmp_path)
    want = ["", "standing", "sitting", "lying", "walking", "stairs", "", "", "", "biking", "jogging", "running",
            "jumping"]
    assert len(recs) == 3 and not bad.skipped  # labels change within a recording: windowing keeps one-label windows
    for r in recs:
        assert r.labels.tolist() == np.repeat(want, 2).tolist()
        assert r.extra["unnamed_rows"] == 6  # waist bends, arm elevation, knee bends: 2 rows each, read as unlabelled
    assert MHEALTH().dropped_counts(recs) == {MHEALTH.dropped["unnamed_rows"]: 6}  # the rows once, not per position
    assert set(ACTIVITIES.values()) - {""} <= set(VOCAB) and ACTIVITIES[0] == ""
    labels = set(want) - {""}
    uci = {"walking", "upstairs", "downstairs", "sitting", "standing", "lying"}
    space = LabelSpace.named("crosshar4").intersect(uci, labels)  # climbing stairs is WISDM's "stairs": one class
    assert space.classes == ("walking", "stairs", "sitting&standing")
    assert space.encode(["stairs", "upstairs", "standing", "jumping", ""]).tolist() == [1, 1, 2, -1, -1]


def test_whitespace_variants_read_the_same(tmp_path):
    clean = log_text([4] * 12)
    messy = "\r\n".join(" " + ln.replace("\t", "  ", 5).replace("\t", " \t", 3) + "\t " for ln in clean.splitlines())
    write_tree(tmp_path / "a" / "mhealth", {D + "mHealth_subject1.log": clean})
    write_tree(tmp_path / "b" / "mhealth", {D + "mHealth_subject1.log": messy + "\r\n\r\n"})
    a, _ = load(tmp_path / "a")
    b, bad = load(tmp_path / "b")
    assert len(a) == len(b) == 3 and not bad.skipped
    same_recordings(a, b)


def test_unread_columns_are_counted_not_read(tmp_path):
    """The ECG and magnetometer columns need to be there (24 fields) but are not parsed: text or NaN there is no
    error; and a label written as "4.0" reads as 4."""
    def patch(lines):
        f = lines[2].split("\t")
        f[4], f[3], f[12], f[23] = "abc", "NaN", "nan", "4.0"  # ECG lead 2, ECG lead 1, ankle magnetometer y, label
        lines[2] = "\t".join(f)
        return lines

    write_tree(tmp_path / "mhealth", {D + "mHealth_subject5.log": log_text([4] * 6, patch=patch)})
    recs, bad = load(tmp_path)
    assert [len(r) for r in recs] == [6, 6, 6] and not bad.skipped and set(recs[0].labels) == {"walking"}


def test_a_blank_line_ends_the_piece(tmp_path):
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject6.log": log_text([3] * 10, patch=lambda ls: ls[:4] + [""] + ls[4:])})
    recs, bad = load(tmp_path)
    assert [(r.session, len(r), r.extra["first_line"]) for r in recs] == [
        (f"6_{p}_{k}", n, first) for p in POSITIONS for k, n, first in ((0, 4, 1), (1, 6, 6))]
    assert not bad.skipped
    np.testing.assert_allclose(recs[3].acc, expected("ankle", range(4, 10))[0], rtol=1e-6)


def _set(line: int, col: int, value: str):
    return set_field(line, col, value, "\t")


@pytest.mark.parametrize("patch, message, line", [
    (lambda ls: ls[:3] + [ls[3].rsplit("\t", 1)[0]] + ls[4:], r"expected 24 fields separated by '\\t', found 23", 4),
    (lambda ls: ls[:4] + [ls[4] + "\t0"] + ls[5:], r"expected 24 fields separated by '\\t', found 25", 5),
    (lambda ls: ls[:5] + [ls[5][: len(ls[5]) // 2]] + ls[6:], r"expected 24 fields separated by '\\t', found 1[0-2]", 6),
    (_set(5, 6, "abc"), r"column 6 \(ankle_acc_x\): cannot read 'abc' as a number", 5),
    (_set(5, 2, "abc"), r"column 2 \(chest_acc_y\): cannot read 'abc' as a number", 5),
    (_set(11, 3, "-1000.0"), r"column 3 \(chest_acc_z\): value -1000 is beyond any IMU's range .* m/s\^2", 11),
    (_set(6, 24, "walk"), r"column 24 \(label\): cannot read 'walk' as a number", 6),
    (_set(7, 24, "13"), r"column 24 \(label\): unknown label 13; MHEALTH's are the whole numbers 0 \(no activity\) "
                        r"\.\. 12", 7),
    (_set(8, 24, "4.5"), r"unknown label 4.5;", 8),
    (_set(9, 19, "NaN"), r"column 19 \(wrist_gyro_y\): NaN or infinite value", 9),
    (_set(10, 9, "5000.0"), r"column 9 \(ankle_gyro_x\): value 5000 is beyond any IMU's range \(\|value\| <= 4000 deg/s", 10),
    (_set(11, 17, "-1000.0"), r"column 17 \(wrist_acc_z\): value -1000 is beyond any IMU's range .* m/s\^2", 11),
])
def test_bad_input_names_file_and_line_and_skip_mode_skips_it(tmp_path, patch, message, line):
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject1.log": log_text([4] * 20, patch=patch)})
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    path = str(tmp_path / "mhealth" / D / "mHealth_subject1.log")
    assert e.value.path == path and e.value.line == line and str(e.value).startswith(f"{path}, line {line}: ")
    assert "\n" not in str(e.value)
    recs, bad = load(tmp_path, "skip")
    assert [(p, ln) for p, ln, _ in bad.skipped] == [(path, line)] and f"line {line}: " in bad.report()
    # the skipped line ends both positions' recordings: the rest continues as the next piece
    assert [(r.session, len(r)) for r in recs] == [(f"1_{p}_{k}", n) for p in POSITIONS
                                                   for k, n in enumerate([line - 1, 20 - line])]
    np.testing.assert_allclose(recs[3].acc, expected("ankle", range(line, 20))[0], rtol=1e-6)


def test_missing_files_and_registration(tmp_path):
    (tmp_path / "mhealth").mkdir()
    (tmp_path / "mhealth" / "README.txt").write_text("mHealth dataset\n")
    with pytest.raises(MissingDataError, match=r"mHealth_subject1\.log"):
        load(tmp_path)
    with pytest.raises(MissingDataError, match="MHEALTHDATASET"):
        MHEALTH().locate(tmp_path / "nowhere")
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject7.log": ""})
    with pytest.raises(DataError, match=r"mHealth_subject7\.log: no readable data rows"):
        load(tmp_path)
    assert isinstance(DATASETS.create("mhealth"), MHEALTH) and "/319/" in MHEALTH.url
    assert MHEALTH.folders[0] == "mhealth" and "mhealth" in DATASETS.names()


def test_the_uci_archive_is_read_in_place_and_downloads(tmp_path):
    """The UCI zip holds MHEALTHDATASET/ (README.txt and the logs): read as it is, after `data download`, and one
    copy per subject when it lies both unpacked and zipped."""
    from crosshar.data.download import download
    from crosshar.data.store import get_dataset

    archive = tmp_path / "mhealth+dataset.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(D + "README.txt", "mHealth dataset\n")
        z.writestr(D + "mHealth_subject1.log", log_text([10] * 15))
        z.writestr(D + "mHealth_subject2.log", log_text([12] * 15))
    (tmp_path / "a" / "mhealth").mkdir(parents=True)
    (tmp_path / "a" / "mhealth" / archive.name).write_bytes(archive.read_bytes())
    recs, _ = load(tmp_path / "a")
    assert [r.session for r in recs] == [f"{s}_{p}_0" for s in (1, 2) for p in POSITIONS]
    assert recs[0].source.endswith("mhealth+dataset.zip!MHEALTHDATASET/mHealth_subject1.log")
    rep = download(get_dataset("mhealth"), tmp_path / "b", src=str(archive))
    assert rep["folder"] == str(tmp_path / "b" / "mhealth")
    (tmp_path / "b" / "mhealth" / archive.name).write_bytes(archive.read_bytes())  # unpacked and zipped
    write_tree(tmp_path / "b" / "mhealth" / "old", {D + "mHealth_subject2.log": log_text([3] * 5)})  # a longer path
    recs, _ = load(tmp_path / "b")
    assert len(recs) == 6 and set(recs[-1].labels) == {"jumping"} and "!" not in recs[0].source


def plausible(i: int) -> list[float]:
    """Both units sway about their z axis by theta(t) = 0.3 sin(pi t) rad, with gravity on the ankle's -y and the
    wrist's -x at theta = 0 (as subject 1's first row): acc is gravity turned by -theta, the gyro reads theta' about
    z in deg/s as the files do. Physically consistent, so the rotation check reads +1 only in rad/s."""
    t = i / 50.0
    th, w = 0.3 * np.sin(np.pi * t), float(np.degrees(0.3 * np.pi * np.cos(np.pi * t)))
    s, c = float(np.sin(th)), float(np.cos(th))
    return [-9.8, 0.0, 0.3, 0.0, 0.0, -9.7 * s, -9.7 * c, 0.6, 0.0, 0.0, w, 0.0, 0.0, 0.0,
            -9.7 * c, 9.7 * s, 0.2, 0.0, 0.0, w, 0.0, 0.0, 0.0]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """13 s of walking at 50 Hz (two 6-s windows at 20 Hz) then 5 s unlabelled, for subjects 1 and 2, under
    data/mhealth; CROSSHAR_HOME in tmp_path."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    files = {f"{D}mHealth_subject{s}.log": log_text([4] * 650 + [0] * 250, row=plausible) for s in (1, 2)}
    write_tree(tmp_path / "data" / "mhealth", files)
    return tmp_path / "data"


def test_prepare_gives_windows_per_body_position(data_dir):
    """End to end: 50 Hz files -> 120-sample windows at 20 Hz, two per position and subject, each window mapped to its
    body position (what `mhealth@wrist` reads); the unlabelled stretch gives none."""
    from crosshar.data.store import prepare

    ws = prepare("mhealth", data_dir)
    assert ws.X.shape == (8, 120, 6) and ws.config.rate_hz == 20.0 and set(ws.labels) == {"walking"}
    assert sorted(ws.recording_attr("position").tolist()) == ["ankle"] * 4 + ["wrist"] * 4
    assert sorted(set(ws.subjects.tolist())) == ["mhealth:1", "mhealth:2"] and ws.manifest["n_recordings"] == 4
    np.testing.assert_allclose(np.linalg.norm(ws.X[..., :3], axis=-1).mean(), 9.7, atol=0.2)  # m/s^2, with gravity
    for p in GYRO_POSITIONS:  # the gyro turned into rad/s turns with the accelerometer (deg/s left as is would read 1/57)
        assert abs(ws.manifest["checks"]["by_position"][p]["handedness"]["slope"] - 1) < 0.1, ws.manifest["checks"]
    assert not ws.manifest["warnings"], ws.manifest["warnings"]
    # the chest's recordings (no gyroscope) are left out of 6-channel windows, and counted where prepare reports
    assert ws.manifest["reader_dropped"] == {"recordings at chest: no gyroscope for 6-channel windows (--channels acc "
                                             "reads them)": 2}
    assert "chest" not in ws.manifest["checks"]["by_position"]
    wrist = prepare("mhealth@wrist", data_dir)
    assert wrist.dataset == "mhealth@wrist" and wrist.X.shape == (4, 120, 6)
    assert set(wrist.recording_attr("position").tolist()) == {"wrist"}
    assert wrist.X[:, :, 0].mean() < -9 and abs(wrist.X[:, :, 1].mean()) < 1  # the wrist's gravity axis, not the ankle's


def test_the_chest_gives_acc_only_windows(data_dir):
    """The chest unit has an accelerometer and no gyroscope: with channels = "acc" its windows are read (the whole
    dataset's acc windows hold all three positions); with 6 channels `mhealth@chest` is a one-line error, never windows
    with a made-up gyroscope; a source model scored there is trained on acc alone by itself (`target_needs`)."""
    from crosshar.config import WindowConfig
    from crosshar.data.sources import target_has_gyro, target_needs
    from crosshar.data.store import prepare
    from crosshar.errors import ConfigError

    acc = WindowConfig(channels="acc")
    chest = prepare("mhealth@chest", data_dir, acc)
    assert chest.X.shape == (4, 120, 3) and set(chest.recording_attr("position").tolist()) == {"chest"}
    np.testing.assert_allclose(chest.X.mean(axis=(0, 1)), [-9.8, 0.0, 0.3], atol=1e-3)  # columns 1-3, m/s^2
    assert "checks" in chest.manifest and "chest" in chest.manifest["checks"]["by_position"]
    whole = prepare("mhealth", data_dir, acc)
    assert whole.X.shape == (12, 120, 3) and not whole.manifest["reader_dropped"]
    assert sorted(set(whole.recording_attr("position").tolist())) == sorted(POSITIONS)
    with pytest.raises(ConfigError, match=r"^dataset 'mhealth@chest' has no gyroscope here; use channels = \"acc\""):
        prepare("mhealth@chest", data_dir, WindowConfig())
    with pytest.raises(ConfigError, match="has no gyroscope here"):
        prepare("mhealth@chest", data_dir)  # the default window config: 6 channels
    assert not target_has_gyro("mhealth@chest", data_dir) and target_has_gyro("mhealth@ankle", data_dir)
    assert target_has_gyro("mhealth", data_dir)
    assert target_needs("mhealth@chest", data_dir).channels == "acc" and target_needs("mhealth@wrist", data_dir) is None


def test_cli_prepares_per_position_and_the_chest_on_acc_alone(data_dir):
    """`data prepare` lists the positions; the chest (acc only) prepares acc-only windows by itself and, asked for 6
    channels, is a one-line error (exit code 2); a position MHEALTH has not is one too, naming the ones there are."""
    from typer.testing import CliRunner

    from crosshar.cli import app

    args = ["--data-dir", str(data_dir)]
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "mhealth", *args])
    assert res.exit_code == 0, res.output
    assert "windows per body position: ankle:4, wrist:4" in res.output
    msg = " ".join(res.output.split())  # the console may wrap a line
    assert "2 recordings at chest: no gyroscope for 6-channel windows (--channels acc reads them)" in msg, res.output
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "mhealth@chest", *args])
    assert res.exit_code == 0 and "at 20 Hz (acc)" in res.output and "4 windows at body position chest" in res.output
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "mhealth@chest", "--channels", "acc+gyro", *args])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert " ".join(res.output.split()).startswith("error: dataset 'mhealth@chest' has no gyroscope here;"), res.output
    for cmd in (["data", "prepare", "-d", "mhealth@back", *args], ["data", "info", "-d", "mhealth@back", *args]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        msg = " ".join(res.output.split())
        assert msg.startswith("error: dataset 'mhealth' has no recording at body position 'back'; its positions: "
                              "ankle (") and "wrist (" in msg, res.output  # those of the 6-channel windows


def test_cli_names_a_bad_line_and_skip_lists_it(data_dir):
    """The contract at the command line: one line naming file, line and problem (exit code 2); `--on-bad skip`
    prepares the rest and lists the line."""
    from typer.testing import CliRunner

    from crosshar.cli import app

    spoiled = data_dir / "mhealth" / D / "mHealth_subject2.log"
    lines = spoiled.read_text().splitlines()
    lines[99] = lines[99].rsplit("\t", 1)[0] + "\t99"
    spoiled.write_text("\n".join(lines) + "\n")
    args = ["data", "prepare", "-d", "mhealth", "--data-dir", str(data_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    msg = " ".join(res.output.split())
    assert f"{spoiled}, line 100: column 24 (label): unknown label 99;" in msg
    assert "(--on-bad skip skips such rows and lists them)" in msg
    res = CliRunner().invoke(app, [*args, "--on-bad", "skip"])
    assert res.exit_code == 0, res.output
    assert "skipped 1 bad item" in res.output and "line 100" in res.output


# ---- real data


@pytest.mark.realdata
def test_real_mhealth(capsys):
    """Ten subjects, three positions; at each position gravity while standing, and at the ankle and wrist acc and gyro
    in one right-handed frame at the rate the README's deg/s gives (the rigid-body law d(acc)/dt = -w x acc: slope +1 in
    rad/s; a file already in rad/s would give about 57); the chest without a gyroscope."""
    import time

    from rawfmt import real_folder, rotation_slope

    folder = real_folder(MHEALTH())
    t0 = time.perf_counter()
    recs = MHEALTH().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    # a copy may hold part of the dataset (as the shared WISDM does): at most every subject, each activity known
    assert 0 < len({r.subject for r in recs}) <= 10 and {r.position for r in recs} == set(POSITIONS)
    labels = set(np.concatenate([np.unique(r.labels) for r in recs]).tolist())
    assert "standing" in labels and labels <= set(ACTIVITIES.values())  # the unlabelled rows: dropped, counted below
    assert MHEALTH().dropped_counts(recs)[MHEALTH.dropped["unnamed_rows"]] > 0
    lines = []
    for p in POSITIONS:
        mine = [r for r in recs if r.position == p]
        still = np.concatenate([r.acc[r.labels == "standing"] for r in mine])
        assert abs(np.linalg.norm(still, axis=1).mean() - 9.8) < 0.6, p
        lines.append(f"{p}: standing |acc| {np.linalg.norm(still, axis=1).mean():.2f}, mean acc "
                     f"{np.round(still.mean(axis=0), 2)}")
        if p not in GYRO_POSITIONS:
            assert all(r.gyro is None for r in mine)
            continue
        num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in mine], axis=0)
        assert 0.8 < num / den < 1.25, (p, num / den)
        lines[-1] += f", slope {num / den:.2f}"
    with capsys.disabled():
        print(f"\n[mhealth] {len(recs)} recordings, load {seconds:.1f} s; " + "; ".join(lines))


def test_a_gyro_reading_of_exactly_the_limit_is_read():
    """degrees(GYRO_LIMIT) is 3999.9999999999995 in floating point: a reading of exactly 4000 deg/s (the range PAMAP2's
    reader accepts in rad/s) was refused as beyond any IMU's range."""
    from crosshar.data.readers import mhealth

    assert mhealth._LIMIT[mhealth._NAMES.index("ankle_gyro_x")] == 4000.0 and mhealth._LIMIT[0] > 0


def test_a_label_that_is_not_whole_is_named_as_written(tmp_path):
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject1.log": log_text([4] * 20, patch=_set(7, 24, "4.0000001"))})
    with pytest.raises(DataError, match=r"unknown label 4\.0000001;"):
        load(tmp_path)


def test_two_files_for_one_subject_are_bad_input_not_one_dropped(tmp_path):
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject7.log": log_text([4] * 5),
                                      D + "mHealth_subject007.log": log_text([10] * 5)})
    with pytest.raises(DataError, match=r"a second file for MHEALTH subject 7, beside .*mHealth_subject7\.log; keep one"):
        load(tmp_path)


def test_a_tree_of_only_bad_lines_in_skip_mode_says_what_was_skipped(tmp_path, monkeypatch):
    """Every line skipped (--on-bad skip): the error's kept/dropped part counted nothing dropped ("dropped: nothing")
    and once called the dataset "shipped as fixed windows"."""
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "data" / "mhealth", {D + "mHealth_subject1.log": log_text([4] * 30, patch=lambda ls: [
        "\t".join(line.split("\t")[:-1] + ["99"]) for line in ls])})
    with pytest.raises(DataError) as e:
        prepare("mhealth", tmp_path / "data", on_bad="skip")
    msg = str(e.value)
    assert "bad item(s)" in msg.split("dropped:")[-1] and "dropped: nothing" not in msg and "fixed windows" not in msg


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip: one damaged
    subject file made the dataset unreadable. Now an error naming it by default; in skip mode it is listed, the others
    read."""
    write_tree(tmp_path / "mhealth", {D + "mHealth_subject1.log": log_text([4] * 30),
                                      D + "mHealth_subject2.log": log_text([1] * 20)}, "gz")
    gz = truncate_gz(tmp_path / "mhealth" / D / "mHealth_subject2.log.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert [r.session for r in recs] == [f"1_{p}_0" for p in POSITIONS]
