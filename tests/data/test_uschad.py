"""USC-HAD loader: MATLAB v5 files per subject, activity and trial; units, labels, known variants, bad input."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

import crosshar.data.readers.uschad  # noqa: F401  (registers "uschad")
from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.labels import VOCAB, LabelSpace
from crosshar.data.readers.uschad import ACTIVITIES, USCHAD
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, rotation_slope, skips_truncated_gz, truncate_gz, write_tree

NAMES = ("Walking Forward", "Walking Left", "Walking Right", "Walking Upstairs", "Walking Downstairs", "Running Forward",
         "Jumping Up", "Sitting", "Standing", "Sleeping", "Elevator Up", "Elevator Down")
N = 40  # samples per tiny file


def readings(act: int, trial: int, n: int = N) -> np.ndarray:
    """(n, 6) sensor_readings as shipped: acc in g (about 1 g on x), gyro in deg/s."""
    i = np.arange(n, dtype=np.float64)
    return np.stack([1 + 0.01 * np.sin(i), 0.01 * act + 0 * i, -0.02 * trial + 0 * i,
                     10 * np.cos(0.1 * i), -30 + 0 * i, 45 * trial + 0 * i], axis=1)


def mat_bytes(s: int = 1, act: int = 1, trial: int = 1, x: np.ndarray | None = None, **fields) -> bytes:
    """Subject<s>/a<act>t<trial>.mat laid out as the dataset ships it: the 13 fields, numbers stored as text (the
    text fields' values are placeholders). `fields` override (None drops one)."""
    out = {"title": "USC Human Motion Database", "version": "1.0", "date": "2009-08-11", "subject": str(s),
           "age": "24", "height": "170cm", "weight": "65kg", "activity": NAMES[(act - 1) % 12],
           "activity_number": str(act), "trial": str(trial), "sensor_location": "hip",
           "sensor_orientation": "fixed",
           "sensor_readings": readings(act, trial) if x is None else x}
    out.update(fields)
    buf = io.BytesIO()
    savemat(buf, {k: v for k, v in out.items() if v is not None})
    return buf.getvalue()


def write_files(root: Path, files: dict[str, bytes], how: str = "plain") -> Path:
    """{logical path: bytes} as plain files, .gz files, or members of one USC-HAD.zip under root."""
    return write_tree(root, files, how, zip_name="USC-HAD.zip")


def dataset_files(**patch: bytes) -> dict[str, bytes]:
    """Subject1: a1t1, a2t1; Subject12: a1t2, a10t3; `patch` replaces files by name ("Subject1/a1t1.mat")."""
    files = {f"USC-HAD/Subject{s}/a{a}t{t}.mat": mat_bytes(s, a, t) for s, a, t in ((1, 1, 1), (1, 2, 1), (12, 1, 2),
                                                                                     (12, 10, 3))}
    files.update({f"USC-HAD/{k}": v for k, v in patch.items()})
    return files


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return USCHAD().load(DataFolder(USCHAD().locate(root)), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_one_recording_per_file(tmp_path, how):
    write_files(tmp_path / "uschad", dataset_files(), how)
    recs, bad = load(tmp_path)
    assert [(r.subject, r.session, len(r)) for r in recs] == [
        ("uschad:1", "1_a1t1", N), ("uschad:1", "1_a2t1", N), ("uschad:12", "12_a1t2", N), ("uschad:12", "12_a10t3", N)]
    assert [r.labels[0] for r in recs] == ["walking", "walking_left", "walking", "lying"]
    r = recs[3]
    assert (r.labels == "lying").all() and r.rate == 100.0 and (r.device, r.position) == ("MotionNode", "hip")
    assert r.source.replace("!", "/").removesuffix(".gz").endswith("Subject12/a10t3.mat")
    assert r.dataset == "uschad" and r.extra == {"trial": 3, "first_sample": 0}
    np.testing.assert_allclose(r.acc, readings(10, 3)[:, :3] * 9.80665, rtol=1e-6)
    np.testing.assert_allclose(r.gyro, readings(10, 3)[:, 3:] * np.pi / 180, rtol=1e-6)
    assert not bad.skipped


def test_units_g_to_ms2_and_degrees_to_radians(tmp_path):
    x = np.array([[1.0, 0.0, -0.5, 180.0, -90.0, 0.0]] * 3)
    write_files(tmp_path / "USC-HAD", {"Subject3/a9t5.mat": mat_bytes(3, 9, 5, x)})
    (r,), _ = load(tmp_path)
    np.testing.assert_allclose(r.acc[0], [9.80665, 0.0, -4.903325], rtol=1e-6)
    np.testing.assert_allclose(r.gyro[0], [np.pi, -np.pi / 2, 0.0], rtol=1e-6)
    assert r.acc.dtype == np.float32 and r.labels[0] == "standing" and r.session == "3_a9t5"


def test_all_twelve_activities_and_the_label_hierarchy(tmp_path):
    write_files(tmp_path / "uschad", {f"Subject2/a{a}t1.mat": mat_bytes(2, a) for a in range(1, 13)})
    recs, _ = load(tmp_path)
    by_act = {int(r.session.split("_a")[1].split("t")[0]): r.labels[0] for r in recs}
    assert [by_act[a] for a in range(1, 13)] == [
        "walking", "walking_left", "walking_right", "upstairs", "downstairs", "running", "jumping", "sitting",
        "standing", "lying", "elevator_up", "elevator_down"]
    codes = LabelSpace.named("crosshar4").encode([by_act[a] for a in range(1, 13)])
    # the circles are walking; sitting and standing merge; the rest lie outside crosshar4
    assert codes.tolist() == [0, 0, 0, 1, 2, -1, -1, 3, 3, -1, -1, -1]


def test_known_variants_are_read(tmp_path):
    """`activity_numbr` (some files' spelling), and the numbers stored as numbers instead of text."""
    variants = {"Subject13/a4t1.mat": mat_bytes(13, 4, activity_number=None, activity_numbr="4"),
                "Subject13/a5t1.mat": mat_bytes(13, 5, activity_number=np.array([[5.0]]), subject=np.array([[13]])),
                "Subject13/a6t1.mat": mat_bytes(13, 6, activity_number=" 6 ", subject=None)}
    write_files(tmp_path / "USC-HAD", variants)
    recs, bad = load(tmp_path)
    assert [(r.session, r.labels[0]) for r in recs] == [("13_a4t1", "upstairs"), ("13_a5t1", "downstairs"),
                                                        ("13_a6t1", "running")]
    assert not bad.skipped


@pytest.mark.parametrize("name, data, message", [
    ("Subject1/a1t1.mat", b"MATLAB? no, a text file\n" * 10, r"not a readable MATLAB \.mat file \("),
    ("Subject1/a1t1.mat", mat_bytes(sensor_readings=None), "no sensor_readings variable"),
    ("Subject1/a1t1.mat", mat_bytes(x=np.zeros((N, 5))), r"sensor_readings must be \(n, 6\) numbers .* \(40, 5\)"),
    ("Subject1/a1t1.mat", mat_bytes(x=np.zeros((N, 6)).T), r"sensor_readings must be \(n, 6\) numbers .* \(6, 40\)"),
    ("Subject1/a1t1.mat", mat_bytes(x=np.zeros((0, 6))), r"sensor_readings must be \(n, 6\) numbers .* \(0, 6\)"),
    ("Subject1/a1t1.mat", mat_bytes(activity_number=None), "no activity_number variable"),
    ("Subject1/a1t1.mat", mat_bytes(activity_number="2"),
     r"activity_number 2 \(walking_left\) disagrees with the file name's activity 1"),
    ("Subject1/a1t1.mat", mat_bytes(activity_numbr="two", activity_number=None), "unknown activity_numbr 'two'"),
    ("Subject1/a13t1.mat", mat_bytes(1, 13), r"unknown activity_number '13'; USC-HAD has 1\.\.12"),
    ("Subject1/a1t1.mat", mat_bytes(subject="2"), "subject '2' disagrees with the folder Subject1"),
])
def test_a_bad_file_is_named_and_skip_lists_it(tmp_path, name, data, message):
    write_files(tmp_path / "uschad", dataset_files(**{name: data}))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.path.endswith(name) and e.value.line is None and str(e.value).startswith(e.value.path + ": ")
    recs, bad = load(tmp_path, "skip")
    assert [(p.endswith(name), line) for p, line, _ in bad.skipped] == [(True, None)]
    assert len(recs) == 4 - (name == "Subject1/a1t1.mat") and not any(r.source.endswith(name) for r in recs)
    assert name in bad.report()


@pytest.mark.parametrize("row, value, message", [
    (3, np.nan, "sample 3: NaN or infinite value"),
    (3, np.inf, "sample 3: NaN or infinite value"),
    (3, 60.0, r"sample 3: value 60 is beyond any IMU's range \(\|value\| <= 50"),  # 60 g
])
def test_a_bad_sample_is_named_and_skip_cuts_the_recording_there(tmp_path, row, value, message):
    x = readings(1, 1)
    x[row, 1] = value
    x[7, 4] = 5000.0  # deg/s: beyond a ±4000 °/s gyroscope
    write_files(tmp_path / "uschad", dataset_files(**{"Subject1/a1t1.mat": mat_bytes(x=x)}))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.path.endswith("Subject1/a1t1.mat")
    recs, bad = load(tmp_path, "skip")
    assert [m.split(":")[0] for _, _, m in bad.skipped] == ["sample 3", "sample 7"]
    assert "value 5000 is beyond" in bad.skipped[1][2] and "gyro in deg/s" in bad.skipped[1][2]
    cut = [(r.session, len(r), r.extra["first_sample"]) for r in recs if r.session.startswith("1_a1t1")]
    assert cut == [("1_a1t1", 3, 0), ("1_a1t1_1", 3, 4), ("1_a1t1_2", N - 8, 8)]
    np.testing.assert_allclose(recs[2].acc, x[8:, :3] * 9.80665, rtol=1e-6)
    assert len(recs) == 6


def test_the_same_trial_twice_is_reported(tmp_path):
    files = dataset_files()
    files["copy/Subject1/a1t1.mat"] = files["USC-HAD/Subject1/a1t1.mat"]
    write_files(tmp_path / "uschad", files)
    with pytest.raises(DataError, match=r"subject 1, activity 1, trial 1 again \(also USC-HAD/Subject1/a1t1.mat\)"):
        load(tmp_path)
    recs, bad = load(tmp_path, "skip")
    assert len(recs) == 4 and len(bad.skipped) == 1


def test_missing_files_and_registration(tmp_path):
    (tmp_path / "uschad").mkdir()
    (tmp_path / "uschad" / "Readme.txt").write_text("USC-HAD\n")
    with pytest.raises(MissingDataError, match=r"Subject<n>/a<activity>t<trial>\.mat"):
        load(tmp_path)
    assert isinstance(DATASETS.create("uschad"), USCHAD)
    assert USCHAD.url.startswith("https://sipi.usc.edu/had/") and USCHAD.folders[0] == "uschad"
    assert len(ACTIVITIES) == 12 and set(ACTIVITIES) <= set(VOCAB)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """13 s (two 6-s windows) of three trials of two subjects under data/uschad, gravity on x and a little motion (the
    physical checks pass), CROSSHAR_HOME in tmp_path."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    i = np.arange(1300, dtype=np.float64)
    x = np.stack([1 + 0.05 * np.sin(0.2 * i), 0.05 * np.cos(0.2 * i), 0.1 + 0 * i, 5 * np.sin(0.1 * i), 0 * i, 0 * i], 1)
    write_files(tmp_path / "data" / "uschad", {f"USC-HAD/Subject{s}/a{a}t1.mat": mat_bytes(s, a, 1, x)
                                                for s, a in ((1, 2), (1, 9), (2, 4))})
    return tmp_path / "data"


def test_prepare_makes_20hz_windows_with_the_position(data_dir):
    """End to end: 100 Hz files -> 120-sample windows at 20 Hz, labels and subjects kept, the hip in the manifest."""
    from crosshar.data.store import prepare

    ws = prepare("uschad", data_dir=data_dir)
    assert ws.X.shape == (6, 120, 6) and ws.config.rate_hz == 20.0 and np.isfinite(ws.X).all()
    assert sorted(ws.labels.tolist()) == ["standing"] * 2 + ["upstairs"] * 2 + ["walking_left"] * 2
    assert sorted(set(ws.subjects.tolist())) == ["uschad:1", "uschad:2"]
    assert set(ws.recording_attr("position").tolist()) == {"hip"}
    assert set(ws.recording_attr("device").tolist()) == {"MotionNode"}
    assert abs(float(np.linalg.norm(ws.X[..., :3], axis=-1).mean()) - 9.81) < 0.2  # m/s^2, gravity included
    codes = LabelSpace.named("crosshar4").encode(ws.labels)
    assert sorted(codes.tolist()) == [0, 0, 1, 1, 3, 3]  # walking_left -> walking, standing -> sitting&standing


def test_cli_names_a_bad_file_and_skip_lists_it(data_dir):
    """The contract at the command line: one line naming the file and the problem (exit code 2); `--on-bad skip`
    prepares the rest and lists the file."""
    from typer.testing import CliRunner

    from crosshar.cli import app

    spoiled = data_dir / "uschad" / "USC-HAD" / "Subject2" / "a4t1.mat"
    spoiled.write_bytes(mat_bytes(2, 4, 1, activity_number="5"))
    args = ["data", "prepare", "-d", "uschad", "--data-dir", str(data_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{spoiled}: activity_number 5 (downstairs) disagrees with the file name's activity 4" in res.output
    assert "(--on-bad skip skips such input and lists it)" in res.output  # a binary file's error has no line
    res = CliRunner().invoke(app, [*args, "--on-bad", "skip"])
    assert res.exit_code == 0, res.output
    assert "skipped 1 bad item" in res.output and "a4t1.mat" in res.output


# ---- real data


@pytest.mark.realdata
def test_real_uschad(capsys):
    """Every subject and activity; gravity at rest; acc and gyro in one right-handed frame; and the sign: the
    counter-clockwise circles (Walking Left) must turn counter-clockwise about the mean acc, which holds only when
    acc points up at rest (Android convention; a negated accelerometer turns them clockwise)."""
    folder = real_folder(USCHAD())
    t0 = time.perf_counter()
    recs = USCHAD().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    # a copy may hold part of the dataset (as the shared WISDM does): at most every subject and activity, each known
    assert 0 < len({r.subject for r in recs}) <= 14 and {r.labels[0] for r in recs} <= set(ACTIVITIES)
    standing = np.concatenate([r.acc for r in recs if r.labels[0] == "standing"])
    assert abs(np.linalg.norm(standing, axis=1).mean() - 9.8) < 0.5
    num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in recs[::5]], axis=0)
    assert num / den > 0.8

    def turns(label: str) -> np.ndarray:  # degrees about the recording's mean acc direction, + = counter-clockwise
        out = []
        for r in (r for r in recs if r.labels[0] == label):
            up = r.acc.mean(axis=0) / np.linalg.norm(r.acc.mean(axis=0))
            out.append(np.degrees((r.gyro @ up).sum() / r.rate))
        return np.array(out)

    left, right = turns("walking_left"), turns("walking_right")
    assert (left > 0).mean() > 0.8 and (right < 0).mean() > 0.8
    with capsys.disabled():
        print(f"\n[uschad] standing mean acc {np.round(standing.mean(axis=0), 2)} m/s^2, rotation slope "
              f"{num / den:.2f}, median turn walking_left {np.median(left):.0f} deg, walking_right "
              f"{np.median(right):.0f} deg, load {seconds:.1f} s")


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip: one damaged
    trial file made the dataset unreadable. Now an error naming it by default; in skip mode it is listed, the others
    read."""
    write_files(tmp_path / "uschad", dataset_files(), "gz")
    gz = truncate_gz(tmp_path / "uschad" / "USC-HAD" / "Subject1" / "a2t1.mat.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert [r.session for r in recs] == ["1_a1t1", "12_a1t2", "12_a10t3"]
