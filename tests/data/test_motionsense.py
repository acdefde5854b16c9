"""MotionSense loader: layouts A and B+C, the iOS -> Android sign conversion, bad input, real data."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder, read_bytes
from crosshar.data.readers.motionsense import ACTIVITIES, MotionSense
from crosshar.limits import GRAVITY
from crosshar.data.readers.uci import UCI
from crosshar.data.rows import read_table
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import motionsense_a_text, motionsense_xyz_text, real_folder, rotation_slope, write_tree


def _device_motion(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gravity = np.array([0.05, 0.98, -0.19]) + 0.01 * rng.standard_normal((n, 3))  # iOS: points to earth
    gravity /= np.linalg.norm(gravity, axis=1, keepdims=True)
    return gravity, 0.3 * rng.standard_normal((n, 3)), 0.05 * rng.standard_normal((n, 3))


G1, R1, U1 = _device_motion(100, 1)
G2, R2, U2 = _device_motion(80, 2)


def a_files(prefix: str = "A_DeviceMotion_data/") -> dict[str, str]:
    return {
        f"{prefix}std_6/sub_1.csv": motionsense_a_text(G1, R1, U1),
        f"{prefix}wlk_7/sub_2.csv": motionsense_a_text(G2, R2, U2),
    }


def load(root, policy: str = "error"):
    bad = BadRows(policy)
    return MotionSense().load(DataFolder(root), bad), bad


# ---- layout A


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_device_motion_in_android_convention(tmp_path, how):
    write_tree(tmp_path, a_files(), how, zip_name="A_DeviceMotion_data.zip")
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["std_6/sub_1", "wlk_7/sub_2"]
    r1, r2 = recs
    np.testing.assert_allclose(r1.acc, -(G1 + U1) * GRAVITY, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r1.gyro, R1, rtol=1e-6)  # rotation rate NOT negated
    assert r1.acc[:, 1].mean() < -9  # iOS gravity.y = +0.98 (y toward earth) -> Android -9.6
    assert (r1.labels == "standing").all() and (r2.labels == "walking").all()
    assert (r1.subject, r2.subject, r1.dataset, r1.rate) == ("motion:01", "motion:02", "motion", 50)
    assert (r1.device, r1.position, r1.extra["trial"]) == ("iPhone 6s", "front trouser pocket", 6)


def test_zip_in_a_subfolder_and_files(tmp_path):
    write_tree(tmp_path / "data", a_files(), "zip", zip_name="A_DeviceMotion_data.zip")
    folder = DataFolder(tmp_path)
    assert [e.logical for e in MotionSense().files(folder)] == sorted("data/" + k for k in a_files())
    assert len(MotionSense().load(folder, BadRows())) == 2


def test_rotation_keeps_its_sense(tmp_path):
    """A device turning at a constant rate: gravity must turn as d(acc)/dt = -omega x acc.

    This is what fails if the gyro is negated along with the acc (the reason is in the module
    docstring): the slope would be -1 instead of +1.
    """
    omega = np.array([0.3, -0.5, 0.8])  # rad/s, constant, device frame
    t = np.arange(500) / 50.0
    axis, speed = omega / np.linalg.norm(omega), np.linalg.norm(omega)
    g0 = np.array([0.0, 0.8, -0.6])  # iOS gravity (toward earth) at t = 0, in g
    # world-fixed vector in the device frame: rotate by -|omega| t about omega (Rodrigues)
    th = -speed * t[:, None]
    g = g0 * np.cos(th) + np.cross(axis, g0) * np.sin(th) + axis * (axis @ g0) * (1 - np.cos(th))
    assert np.allclose(np.gradient(g, t, axis=0)[5:-5], -np.cross(omega, g)[5:-5], atol=1e-3)
    write_tree(tmp_path, {"A_DeviceMotion_data/sit_5/sub_3.csv": motionsense_a_text(g, np.tile(omega, (500, 1)), 0 * g)})
    (r,), _ = load(tmp_path)
    num, den = rotation_slope(r.acc, r.gyro, r.rate)
    assert num / den == pytest.approx(1.0, abs=0.05)
    assert r.labels[0] == "sitting"


def test_unknown_activity_folder(tmp_path):
    files = a_files() | {"A_DeviceMotion_data/run_3/sub_1.csv": motionsense_a_text(G1, R1, U1)}
    write_tree(tmp_path, files)
    with pytest.raises(DataError, match="unknown activity folder 'run_3'") as e:
        load(tmp_path)
    assert "run_3" in e.value.path
    recs, bad = load(tmp_path, "skip")
    assert len(recs) == 2 and len(bad.skipped) == 1


def test_every_activity_prefix():
    assert set(ACTIVITIES) == {"dws", "ups", "wlk", "jog", "sit", "std"}
    assert ACTIVITIES["dws"] == "downstairs" and ACTIVITIES["jog"] == "jogging"


def test_wrong_header_is_an_error(tmp_path):
    text = motionsense_a_text(G1, R1, U1).replace(
        "gravity.x,gravity.y,gravity.z", "userAcceleration.x,userAcceleration.y,userAcceleration.z", 1)
    write_tree(tmp_path, {"A_DeviceMotion_data/std_6/sub_1.csv": text})
    with pytest.raises(DataError, match="unexpected header") as e:
        load(tmp_path)
    assert e.value.line == 1


@pytest.mark.parametrize("bad_line", ["9,1,2,3,0.1,0.9,0.1,0.1,0.2,0.3,oops,0.1,0.1",
                                      "9,1,2,3,0.1,0.9,0.1,0.1,0.2,0.3,0.1,0.1,0.1,0.5",  # 14 fields
                                      "9,1,2,3,0.1,0.9,0.1,0.1,0.2,0.3,0.1,0.1"])  # 12 fields
def test_bad_row_is_reported_with_its_line_and_skipped_alone(tmp_path, bad_line):
    lines = motionsense_a_text(G1, R1, U1).splitlines()
    lines[10] = bad_line  # line 11 = sample 9
    write_tree(tmp_path, {"A_DeviceMotion_data/std_6/sub_1.csv": "\n".join(lines) + "\n"})
    with pytest.raises(DataError) as e:
        load(tmp_path)
    assert e.value.line == 11 and e.value.path.endswith("sub_1.csv")
    (r,), bad = load(tmp_path, "skip")
    keep = np.arange(100) != 9
    assert len(r) == 99 and [s[1] for s in bad.skipped] == [11]
    np.testing.assert_allclose(r.gyro, R1[keep], rtol=1e-6)


@pytest.mark.parametrize("text", ["", ",attitude.roll", motionsense_a_text(G1, R1, U1).splitlines()[0]])
def test_file_without_data(tmp_path, text):
    write_tree(tmp_path, {"A_DeviceMotion_data/std_6/sub_1.csv": text})
    with pytest.raises(DataError, match="no data rows"):
        load(tmp_path)


def test_missing_is_missing_data(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(MissingDataError, match="A_DeviceMotion_data"):
        load(tmp_path)


# ---- layout B + C


def bc_files(n_acc: int = 100, n_gyro: int = 100) -> dict[str, str]:
    return {
        "B_Accelerometer_data/ups_3/sub_4.csv": motionsense_xyz_text((G1 + U1)[:n_acc]),  # raw = gravity + user
        "C_Gyroscope_data/ups_3/sub_4.csv": motionsense_xyz_text(R1[:n_gyro]),
    }


@pytest.mark.parametrize("n_acc, n_gyro", [(100, 100), (100, 99)])
def test_raw_accelerometer_and_gyroscope(tmp_path, n_acc, n_gyro):
    write_tree(tmp_path, bc_files(n_acc, n_gyro), "gz")
    (r,), _ = load(tmp_path)
    n = min(n_acc, n_gyro)
    np.testing.assert_allclose(r.acc, -(G1 + U1)[:n] * GRAVITY, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r.gyro, R1[:n], rtol=1e-6)
    assert (r.session, r.subject, r.labels[0], r.extra["layout"]) == ("ups_3/sub_4", "motion:04", "upstairs", "B+C")


def test_raw_streams_of_very_different_length(tmp_path):
    write_tree(tmp_path, bc_files(100, 90))
    with pytest.raises(DataError, match="has 90 rows but .* has 100"):
        load(tmp_path)


def test_raw_stream_without_partner(tmp_path):
    files = bc_files()
    del files["C_Gyroscope_data/ups_3/sub_4.csv"]
    write_tree(tmp_path, files)
    with pytest.raises(DataError, match="no matching gyroscope file"):
        load(tmp_path)


def test_device_motion_is_preferred(tmp_path):
    write_tree(tmp_path, a_files() | bc_files())
    assert [r.extra["layout"] for r in load(tmp_path)[0]] == ["A", "A"]


def test_registered():
    assert isinstance(DATASETS.create("motion"), MotionSense)
    assert MotionSense.url.endswith("A_DeviceMotion_data.zip")


# ---- real data


@pytest.fixture(scope="module")
def real_motion():
    folder = real_folder(MotionSense())
    t0 = time.perf_counter()
    recs = MotionSense().load(folder, BadRows())
    return folder, recs, time.perf_counter() - t0


@pytest.mark.realdata
def test_real_motionsense(real_motion, capsys):
    _, recs, seconds = real_motion
    assert len(recs) == 360 and len({r.subject for r in recs}) == 24
    assert len({r.session.split("/")[0] for r in recs}) == 15
    assert {r.labels[0] for r in recs} == set(ACTIVITIES.values())
    standing = np.concatenate([r.acc for r in recs if r.labels[0] == "standing"])
    assert abs(np.linalg.norm(standing, axis=1).mean() - 9.8) < 0.5
    with capsys.disabled():
        print(f"\n[motion] standing mean acc {np.round(standing.mean(axis=0), 2)} m/s^2, load {seconds:.1f} s")


def _uci_subset(tmp_path, experiments: int = 6) -> list:
    """The first real UCI experiments, copied (decompressed) into a tiny RawData folder."""
    folder = real_folder(UCI())
    raw = tmp_path / "RawData"
    raw.mkdir()
    for e in UCI().files(folder):
        name = e.logical.rsplit("/", 1)[-1]
        if name == "labels.txt":
            rows = read_bytes(e).decode().splitlines()
            keep = [r for r in rows if r.strip() and int(r.split()[0]) <= experiments]
            (raw / name).write_text("\n".join(keep) + "\n")
        elif int(name.split("_exp")[1][:2]) <= experiments:
            (raw / name).write_bytes(read_bytes(e))
    return UCI().load(DataFolder(tmp_path), BadRows())


@pytest.mark.realdata
def test_real_sign_convention_matches_uci(real_motion, tmp_path, capsys):
    """Both datasets in crosshar's Android convention, in a right-handed acc+gyro frame.

    UCI (an Android phone, x up along the body on the waist) reads +9.8 on x while standing.
    MotionSense's loaded acc must point opposite to Core Motion's gravity vector (which points to
    the earth), i.e. up, with the same magnitude; and in both, the acc vector turns the way the
    gyro says (slope +1; a negated gyro would give -1).
    """
    folder, recs, _ = real_motion
    uci = _uci_subset(tmp_path)
    uci_acc = np.concatenate([r.acc for r in uci])
    uci_standing = uci_acc[np.concatenate([r.labels for r in uci]) == "standing"].mean(axis=0)
    assert uci_standing[0] > 9.0 and abs(np.linalg.norm(uci_standing) - 9.8) < 0.5

    cosines = []
    for r in recs:
        if r.labels[0] != "standing":
            continue
        t = read_table(folder, folder.find(f"A_DeviceMotion_data/{r.session}.csv"), BadRows(), 13, ",", 1,
                       usecols=(4, 5, 6))
        g, a = t.values.mean(axis=0), r.acc.mean(axis=0).astype(np.float64)
        cosines.append(g @ a / np.linalg.norm(g) / np.linalg.norm(a))
        assert abs(np.linalg.norm(a) - 9.8) < 0.5
    assert len(cosines) == 48 and max(cosines) < -0.99  # acc = -gravity: up, not down

    slopes = {}
    for name, rs in (("uci", uci), ("motion", [r for r in recs if r.labels[0] == "sitting"])):
        num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in rs], axis=0)
        slopes[name] = num / den
        assert num / den > 0.8, (name, num / den)
    with capsys.disabled():
        print(f"\n[sign] uci standing {np.round(uci_standing, 2)}, motion acc.gravity cosines <= "
              f"{max(cosines):.3f}, rotation slopes {', '.join(f'{k} {v:.2f}' for k, v in slopes.items())}")
