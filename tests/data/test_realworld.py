"""RealWorld (HAR) 2016 loader: per-sensor zips of per-position CSVs (also nested, unpacked or gzipped), acc and gyro
aligned per position, sessions, labels, bad input, and the windows `prepare` makes of one position."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.labels import VOCAB, LabelSpace
from crosshar.data.readers.realworld import ACTIVITIES, POSITIONS, RealWorld  # the import registers "realworld"
from crosshar.data.timegrid import PAIRING_DROPPED
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, rotation_slope, skips_truncated_gz, truncate_gz, write_tree

T0 = 1435993440024  # ms, attr_time of a real-looking epoch


def signals(n: int, kind: str, phase: float = 0.0) -> np.ndarray:
    """(n, 3): acc with gravity on +x and a little motion (m/s^2), or a slow gyro (rad/s); linear in time between
    nearby samples is not needed: the tests compare against np.interp of the same rows."""
    i = np.arange(n, dtype=np.float64) + phase
    if kind == "acc":
        return np.stack([9.8 + 0.3 * np.sin(0.2 * i), 0.2 * np.cos(0.2 * i), 0.1 + 0 * i], axis=1)
    return np.stack([0.05 * np.sin(0.1 * i), 0 * i, 0.02 + 0 * i], axis=1)


def csv_text(t_ms: np.ndarray, xyz: np.ndarray) -> str:
    """One RealWorld CSV: the header, then `id,attr_time,attr_x,attr_y,attr_z` per sample."""
    lines = ["id,attr_time,attr_x,attr_y,attr_z"]
    lines += [f"{k + 1},{int(t)},{x!r},{y!r},{z!r}" for k, (t, (x, y, z)) in enumerate(zip(t_ms, xyz.tolist()))]
    return "\n".join(lines) + "\n"


def zip_bytes(members: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


PREFIX = {"acc": "acc", "gyr": "Gyroscope"}


def session_csvs(act: str, positions, n: int, t0: int = T0, k: str = "", gyro_lag_ms: int = 7) -> dict[str, dict]:
    """{"acc": {csv name: text}, "gyr": {...}} of one session: n samples every 20 ms per position, the gyroscope
    starting `gyro_lag_ms` later (unaligned streams, as on the phones)."""
    out: dict[str, dict] = {"acc": {}, "gyr": {}}
    for sensor in out:
        t = t0 + (gyro_lag_ms if sensor == "gyr" else 0) + 20 * np.arange(n)
        for p in positions:
            out[sensor][f"{PREFIX[sensor]}_{act}{k}_{p}.csv"] = csv_text(t, signals(n, "acc" if sensor == "acc" else "gyro",
                                                                                    POSITIONS.index(p)))
    return out


def dataset_files(n: int = 100) -> dict[str, bytes]:
    """proband1: walking at chest and waist, sitting at thigh; proband4: climbingup at thigh in two sessions, as the
    real one ships it (one zip per session inside the sensor's zip; the second session 60 s later)."""
    files: dict[str, bytes] = {}
    for act, positions in (("walking", ("chest", "waist")), ("sitting", ("thigh",))):
        for sensor, members in session_csvs(act, positions, n).items():
            files[f"proband1/data/{sensor}_{act}_csv.zip"] = zip_bytes(members)
    s1 = session_csvs("climbingup", ("thigh",), n)
    s2 = session_csvs("climbingup", ("thigh",), n, t0=T0 + 60_000, k="_2")
    for sensor in ("acc", "gyr"):
        inner = {f"{sensor}_climbingup_1_csv.zip": zip_bytes(s1[sensor]),
                 f"{sensor}_climbingup_2_csv.zip": zip_bytes(s2[sensor])}
        files[f"proband4/data/{sensor}_climbingup_csv.zip"] = zip_bytes(inner)
    return files


def unpacked(files: dict[str, bytes]) -> dict[str, str]:
    """The same dataset with every zip unpacked into proband<N>/data/ (nested ones too)."""
    out: dict[str, str] = {}

    def walk(folder: str, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for m in zf.namelist():
                if m.endswith(".zip"):
                    walk(folder, zf.read(m))
                else:
                    out[f"{folder}/{m}"] = zf.read(m).decode()

    for name, data in files.items():
        walk(name.rsplit("/", 1)[0], data)
    return out


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return RealWorld().load(DataFolder(RealWorld().locate(root)), bad), bad


def summary(recs) -> list[tuple]:
    return [(r.subject, r.session, r.position, r.labels[0], len(r)) for r in recs]


EXPECTED = [("realworld:1", "1_sitting_thigh_0", "thigh", "sitting", 100),
            ("realworld:1", "1_walking_chest_0", "chest", "walking", 100),
            ("realworld:1", "1_walking_waist_0", "waist", "walking", 100),
            ("realworld:4", "4_climbingup_thigh_0", "thigh", "upstairs", 100),
            ("realworld:4", "4_climbingup_thigh_1", "thigh", "upstairs", 100)]


def test_per_sensor_zips_nested_zips_and_alignment(tmp_path):
    """One recording per position and common span; both streams on one 50 Hz grid from the later start; the nested
    climbing zips' two sessions are two recordings."""
    write_tree(tmp_path / "realworld", dataset_files())
    recs, bad = load(tmp_path)
    assert not bad.skipped
    # the grid starts at the gyroscope's first sample (7 ms late) and ends before the acc's last: 99 intervals fit
    assert summary(recs) == [s[:4] + (99,) for s in EXPECTED]
    r = recs[1]
    assert r.rate == 50.0 and (r.device, r.dataset) == ("smartphone", "realworld")
    t_acc, t_gyr = T0 + 20 * np.arange(100), T0 + 7 + 20 * np.arange(100)
    g = t_gyr[0] + 20 * np.arange(99)
    for k in range(3):
        np.testing.assert_allclose(r.acc[:, k], np.interp(g, t_acc, signals(100, "acc", 0)[:, k]), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r.gyro[:, k], np.interp(g, t_gyr, signals(100, "gyro", 0)[:, k]), rtol=1e-6,
                                   atol=1e-7)
    assert r.extra == {"acc_rows": 100, "gyro_rows": 100, "duplicate_timestamps": 0, "acc_s_without_gyro": 0.01,
                       "gyro_s_without_acc": 0.01}  # the gyroscope's 7 ms late start, and its 7 ms after the acc
    assert "acc_walking_csv.zip!acc_walking_chest.csv" in r.source and "Gyroscope_walking_chest.csv" in r.source
    assert "acc_climbingup_2_csv.zip!acc_climbingup_2_thigh.csv" in recs[4].source


@pytest.mark.parametrize("how", ["plain", "gz"])
def test_unpacked_csvs_read_alike(tmp_path, how):
    write_tree(tmp_path / "realworld2016_dataset", unpacked(dataset_files()), how)
    recs, bad = load(tmp_path)
    assert summary(recs) == [s[:4] + (99,) for s in EXPECTED] and not bad.skipped


def test_a_packed_distribution_zip_says_to_unpack_it(tmp_path):
    """Inside realworld2016_dataset.zip the climbing zips sit three levels deep, beyond what is read in place."""
    write_tree(tmp_path / "realworld", {f"realworld2016_dataset/{k}": v for k, v in dataset_files().items()}, "zip",
               zip_name="realworld2016_dataset.zip")
    with pytest.raises(DataError, match=r"unpack realworld2016_dataset\.zip first .*crosshar data download -d "
                                        r"realworld") as e:
        load(tmp_path)
    assert "realworld2016_dataset.zip!" in e.value.path and e.value.path.endswith("_csv.zip")


def test_labels_positions_and_vocabulary():
    assert set(ACTIVITIES.values()) <= set(VOCAB) and len(POSITIONS) == 7
    codes = LabelSpace.named("crosshar4").encode(list(ACTIVITIES.values()))
    assert dict(zip(ACTIVITIES, codes.tolist())) == {
        "climbingdown": 2, "climbingup": 1, "jumping": -1, "lying": -1, "running": -1, "sitting": 3, "standing": 3,
        "walking": 0}
    assert isinstance(DATASETS.create("realworld"), RealWorld) and RealWorld.folders[0] == "realworld"


def test_forearm_is_the_watch_and_sessions_merge_in_time(tmp_path):
    """Two session files of one (activity, position) overlapping by 10 samples, rows out of order, a repeated
    timestamp: one stream, sorted, the repeat dropped and counted."""
    a = session_csvs("running", ("forearm",), 60)
    b = session_csvs("running", ("forearm",), 60, t0=T0 + 20 * 50, k="_2")  # starts at sample 50 of the first
    acc_text = a["acc"]["acc_running_forearm.csv"].splitlines()
    acc_text[3], acc_text[4] = acc_text[4], acc_text[3]  # two rows out of order
    acc_text.insert(6, acc_text[5])  # one row twice
    files = {"proband2/data/acc_running_csv.zip": zip_bytes({"acc_running_forearm.csv": "\n".join(acc_text) + "\n",
                                                             **b["acc"]}),
             "proband2/data/gyr_running_csv.zip": zip_bytes({**a["gyr"], **b["gyr"]})}
    write_tree(tmp_path / "realworld", files)
    (r,), bad = load(tmp_path)
    assert not bad.skipped and r.device == "smartwatch" and r.position == "forearm"
    assert r.extra == {"acc_rows": 110, "gyro_rows": 110, "duplicate_timestamps": 21,  # acc 10 + 1, gyro 10
                       "acc_s_without_gyro": 0.01, "gyro_s_without_acc": 0.01}
    assert len(r) == 109 and np.isfinite(r.acc).all()


@pytest.mark.parametrize("line, text, message", [
    (1, "id,time,x,y,z", r"header 'id,time,x,y,z' is not 'id,attr_time,attr_x,attr_y,attr_z'"),
    (5, "4,1435993440084,9.8,0.1", r"expected 5 fields separated by ',', found 4"),
    (5, "4,1435993440084,9.8,abc,0.1", r"'abc'"),
    (5, "4,1435993440084,9.8,nan,0.1", "NaN or infinite value"),
    (5, "4,1435993440084,9.8,900.0,0.1", r"value 900 is beyond any IMU's range"),
    (5, "4,inf,9.8,0.1,0.1", r"attr_time inf is not a finite number of milliseconds"),
])
def test_a_bad_line_is_named_and_skip_lists_it(tmp_path, line, text, message):
    files = unpacked(dataset_files())
    name = "proband1/data/acc_walking_chest.csv"
    lines = files[name].splitlines()
    lines[line - 1] = text
    files[name] = "\n".join(lines) + "\n"
    write_tree(tmp_path / "realworld", files)
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.path.endswith(name) and e.value.line == line
    recs, bad = load(tmp_path, "skip")
    assert [(p.endswith(name), ln) for p, ln, _ in bad.skipped] == [(True, line)]
    if line == 1:  # the file is unreadable: that position's walking is left out
        assert [s[:4] for s in summary(recs)] == [s[:4] for s in EXPECTED if s[1] != "1_walking_chest_0"]
    else:
        assert len(recs) == 5


def test_seconds_for_milliseconds_and_a_missing_gyroscope_are_reported(tmp_path):
    files = unpacked(dataset_files())
    seconds = (T0 + 20 * np.arange(100)) / 1000  # attr_time in seconds: a 50,000 Hz "rate" in milliseconds
    files["proband1/data/acc_walking_chest.csv"] = "id,attr_time,attr_x,attr_y,attr_z\n" + "".join(
        f"{k + 1},{t:.3f},9.8,0.1,0.2\n" for k, t in enumerate(seconds))
    del files["proband1/data/Gyroscope_sitting_thigh.csv"]
    write_tree(tmp_path / "realworld", files)
    with pytest.raises(DataError, match=r"acc_sitting_thigh\.csv: no Gyroscope file for proband1 sitting thigh"):
        load(tmp_path)
    recs, bad = load(tmp_path, "skip")
    assert [m for _, _, m in bad.skipped] == [
        "no Gyroscope file for proband1 sitting thigh (its acc file is here)",
        "attr_time gives a median sampling rate of 5e+04 Hz; RealWorld's attr_time is milliseconds at about 50 Hz"]
    assert [s[1] for s in summary(recs)] == ["1_walking_waist_0", "4_climbingup_thigh_0", "4_climbingup_thigh_1"]


def test_no_files_and_other_sensors_are_ignored(tmp_path):
    files = {"proband1/data/mag_walking_csv.zip": zip_bytes({"MagneticField_walking_chest.csv": "id\n"}),
             "proband1/data/readme.txt": "RealWorld\n"}
    write_tree(tmp_path / "realworld", files)
    with pytest.raises(MissingDataError, match=r"no RealWorld files under .*acc_<activity>_csv\.zip"):
        load(tmp_path)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """13 s of walking and of sitting at the thigh and the waist for two probands, CROSSHAR_HOME in tmp_path."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    files: dict[str, bytes] = {}
    for sid in (1, 2):
        for act in ("walking", "sitting"):
            for sensor, members in session_csvs(act, ("thigh", "waist"), 650, t0=T0 + sid * 10**6).items():
                files[f"proband{sid}/data/{sensor}_{act}_csv.zip"] = zip_bytes(members)
    write_tree(tmp_path / "data" / "realworld", files)
    return tmp_path / "data"


def test_prepare_one_position(data_dir):
    """End to end: 50 Hz CSVs -> 120-sample windows at 20 Hz, of the thigh only with `realworld@thigh`."""
    from crosshar.data.store import prepare

    ws = prepare("realworld", data_dir=data_dir)
    assert ws.X.shape == (16, 120, 6) and ws.config.rate_hz == 20.0 and np.isfinite(ws.X).all()
    assert set(ws.recording_attr("position").tolist()) == {"thigh", "waist"}
    thigh = prepare("realworld@thigh", data_dir=data_dir)
    assert len(thigh.X) == 8 and set(thigh.recording_attr("position").tolist()) == {"thigh"}
    assert sorted(set(thigh.subjects.tolist())) == ["realworld:1", "realworld:2"]
    assert abs(float(np.linalg.norm(thigh.X[..., :3], axis=-1).mean()) - 9.8) < 0.3  # m/s^2, gravity included


def test_what_the_reader_leaves_out_is_counted_once_per_group(tmp_path):
    """proband4's climbing is one group in two spans, each recording carrying the group's counts: summed once."""
    write_tree(tmp_path / "realworld", dataset_files())
    recs, _ = load(tmp_path)
    firsts = [r for r in recs if r.session.endswith("_0")]  # one recording per (proband, activity, position)
    assert len(firsts) == 4 and len(recs) == 5
    want = {what: round(sum(r.extra[k] for r in firsts), 2) for k, what in RealWorld.dropped.items()}
    got = RealWorld().dropped_counts(recs)
    assert got == {k: v for k, v in want.items() if v} and got
    assert got != {what: round(sum(r.extra[k] for r in recs), 2) for k, what in RealWorld.dropped.items()}


def test_a_known_gap_of_the_distribution_is_noted_not_an_error(tmp_path, monkeypatch):
    """proband2 climbingup forearm ships without data (KNOWN_GAPS): its lone acc file does not stop the default
    policy; the gap is in the manifest and the kept/dropped summary. The same gap elsewhere is still bad input."""
    from crosshar.data.store import kept_dropped, prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    files: dict[str, bytes] = {}
    for act in ("climbingup", "walking"):
        for sensor, members in session_csvs(act, ("forearm", "waist"), 650, t0=T0 + 2 * 10**6).items():
            if act == "climbingup" and sensor == "gyr":
                members = {k: v for k, v in members.items() if "forearm" not in k}  # the gap
            files[f"proband2/data/{sensor}_{act}_csv.zip"] = zip_bytes(members)
    write_tree(tmp_path / "data" / "realworld", files)
    ws = prepare("realworld", data_dir=tmp_path / "data")
    assert sorted(set(ws.sessions.tolist())) == ["2_climbingup_waist_0", "2_walking_forearm_0", "2_walking_waist_0"]
    assert [n["gap"] for n in ws.manifest["notes"]] == [
        "proband2 climbingup forearm: no Gyroscope file for proband2 climbingup forearm (its acc file is here)"]
    assert ws.manifest["notes"][0]["file"].endswith("acc_climbingup_csv.zip!acc_climbingup_forearm.csv")
    assert ws.manifest["skipped"] == []
    assert "a known gap of the distribution: proband2 climbingup forearm" in kept_dropped(ws.manifest)
    assert ws.manifest["reader_dropped"] == {PAIRING_DROPPED["acc_s_without_gyro"]: 0.03,  # the gyros' 7 ms late start
                                            PAIRING_DROPPED["gyro_s_without_acc"]: 0.03}  # and end, per recording
    assert "0.03 s of accelerometer rows with no gyroscope rows" in kept_dropped(ws.manifest)
    files["proband2/data/gyr_walking_csv.zip"] = zip_bytes(
        {k: v for k, v in session_csvs("walking", ("forearm", "waist"), 650)["gyr"].items() if "forearm" not in k})
    write_tree(tmp_path / "data2" / "realworld", files)
    with pytest.raises(DataError, match="no Gyroscope file for proband2 walking forearm"):
        prepare("realworld", data_dir=tmp_path / "data2")


# ---- real data


@pytest.mark.realdata
def test_real_realworld(capsys):
    """Every proband, activity and position; gravity at rest; acc and gyro in one right-handed frame
    at every position (the rigid-body law, which a mis-paired or mis-signed gyroscope breaks)."""
    folder = real_folder(RealWorld())
    t0 = time.perf_counter()
    recs = RealWorld().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    # a copy may hold part of the dataset (as the shared WISDM does): at most every proband, activity and position
    assert 0 < len({r.subject for r in recs}) <= 15 and {r.labels[0] for r in recs} <= set(ACTIVITIES.values())
    assert {r.position for r in recs} <= set(POSITIONS)
    still = np.concatenate([r.acc for r in recs if r.labels[0] in ("standing", "sitting")])
    assert abs(np.linalg.norm(still, axis=1).mean() - 9.8) < 0.5
    slopes = {}
    for p in POSITIONS:
        num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in recs if r.position == p][::3], axis=0)
        slopes[p] = num / den
    assert all(s > 0.8 for s in slopes.values()), slopes
    with capsys.disabled():
        print(f"\n[realworld] {len(recs)} recordings, still mean |acc| {np.linalg.norm(still, axis=1).mean():.2f} "
              f"m/s^2, rotation slope per position {({p: round(s, 2) for p, s in slopes.items()})}, "
              f"load {seconds:.1f} s")


def test_a_packed_copy_beside_the_unpacked_dataset_is_not_in_the_way(tmp_path):
    """The distribution zip kept next to its unpacked folder: its too-deep zips hold nothing the folder lacks."""
    files = dataset_files()
    write_tree(tmp_path / "realworld", {f"realworld2016_dataset/{k}": v for k, v in files.items()}, "zip",
               zip_name="realworld2016_dataset.zip")
    write_tree(tmp_path / "realworld" / "realworld2016_dataset", files)
    recs, bad = load(tmp_path)
    assert summary(recs) == [s[:4] + (99,) for s in EXPECTED] and not bad.skipped


def test_a_session_without_its_partner_file_is_reported(tmp_path):
    """A second acc session (10 minutes later) with no Gyroscope file of its own was dropped without a word."""
    files = unpacked(dataset_files())
    late = session_csvs("walking", ("chest",), 400, t0=T0 + 600_000, k="_2")
    files["proband1/data/acc_walking_2_chest.csv"] = late["acc"]["acc_walking_2_chest.csv"]
    write_tree(tmp_path / "realworld", files)
    with pytest.raises(DataError, match=r"acc rows of proband1 walking chest over 8 s \(from attr_time 1435994040024 ms\) "
                                        r"have no Gyroscope rows at the same time: a session file without its partner\?"):
        load(tmp_path)
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and [s[1] for s in summary(recs)] == [s[1] for s in EXPECTED]
    chest = next(r for r in recs if r.session == "1_walking_chest_0")
    assert chest.extra["acc_s_without_gyro"] == pytest.approx(7.99, abs=0.02)


def test_a_damaged_zip_is_an_error_or_skipped_and_listed(tmp_path, monkeypatch):
    """One truncated per-sensor zip made the whole dataset unreadable, --on-bad skip included (the error came from
    listing the folder, before any policy applied)."""
    from crosshar.data.store import prepare

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    files: dict[str, bytes] = {}
    for sid in (1, 2):
        for sensor, members in session_csvs("walking", ("thigh",), 650, t0=T0 + sid * 10**6).items():
            files[f"proband{sid}/data/{sensor}_walking_csv.zip"] = zip_bytes(members)
    files["proband2/data/gyr_sitting_csv.zip"] = zip_bytes(session_csvs("sitting", ("thigh",), 650)["gyr"])[:300]
    write_tree(tmp_path / "data" / "realworld", files)
    with pytest.raises(DataError, match=r"gyr_sitting_csv\.zip: not a readable zip archive .* download it again"):
        prepare("realworld", tmp_path / "data")
    ws = prepare("realworld", tmp_path / "data", on_bad="skip")
    assert len(ws) == 4 and [s["file"].endswith("gyr_sitting_csv.zip") for s in ws.manifest["skipped"]] == [True]


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip: one damaged
    CSV made the dataset unreadable. Now an error naming it by default; in skip mode it is listed and its (proband,
    activity, position) left out, the others read."""
    write_tree(tmp_path / "realworld2016_dataset", unpacked(dataset_files()), "gz")
    gz = truncate_gz(tmp_path / "realworld2016_dataset" / "proband1" / "data" / "acc_walking_chest.csv.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert summary(recs) == [s[:4] + (99,) for s in EXPECTED if s[1] != "1_walking_chest_0"]
