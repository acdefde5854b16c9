"""WISDM 2019 loader: acc/gyro alignment on a 20 Hz grid, layouts, labels and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.wisdm import ACTIVITIES, WISDM, WISDMWatch
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, rotation_slope, write_tree

T0 = 252_207_666_810_782  # ns, like the real files (time since boot)
STEP = 50_000_000  # 20 Hz exactly, so the grid falls on acc samples


def acc_of(t_s):
    """A linear signal: interpolation on the grid must reproduce it exactly."""
    return np.stack([t_s, 9.8 + 0 * t_s, -t_s], axis=-1)


def gyro_of(t_s):
    return np.stack([2 * t_s, 0.1 + 0 * t_s, t_s], axis=-1)


def lines(sid: int, letter: str, t_ns: np.ndarray, f) -> list[str]:
    xyz = f((t_ns - T0) / 1e9)
    return [f"{sid},{letter},{t},{x!r},{y!r},{z!r};" for t, (x, y, z) in zip(t_ns.tolist(), xyz.tolist())]


def wisdm_files(sid: int = 1600, device: str = "phone", acc_extra: list[str] = (), gyro_extra: list[str] = ()) -> dict:
    """Walking (A) 0..3 s, then standing (E) 10..13 s; gyro 10 ms later and 0.2 s longer."""
    ta = np.concatenate([T0 + STEP * np.arange(61), T0 + 10 * 10**9 + STEP * np.arange(61)])
    tg = ta + 10_000_000
    tg = np.concatenate([tg, [tg[-1] + STEP * k for k in range(1, 5)]])
    acc = lines(sid, "A", ta[:61], acc_of) + lines(sid, "E", ta[61:], acc_of) + list(acc_extra)
    gyro = lines(sid, "A", tg[:61], gyro_of) + lines(sid, "E", tg[61:], gyro_of) + list(gyro_extra)
    d = f"raw/{device}"
    return {
        f"{d}/accel/data_{sid}_accel_{device}.txt": "\n".join(acc) + "\n",
        f"{d}/gyro/data_{sid}_gyro_{device}.txt": "\n".join(gyro) + "\n",
    }


def load(root, on_bad: str = "error", ds=None):
    ds = ds or WISDM()
    bad = BadRows(on_bad)
    return ds.load(DataFolder(root), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_acc_and_gyro_on_one_20hz_grid(tmp_path, how):
    write_tree(tmp_path, {"wisdm-dataset/" + k: v for k, v in wisdm_files().items()}, how)
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["1600_phone_A_0", "1600_phone_E_0"]
    assert [r.labels[0] for r in recs] == ["walking", "standing"]
    for r in recs:
        assert (r.rate, r.subject, r.device, r.position) == (20.0, "wisdm:1600", "phone", "pocket")
        assert (r.labels == r.labels[0]).all()
        # the common span starts at the gyro's first sample (10 ms after the acc's) and ends at
        # the acc's last: 59 intervals of 50 ms fit, so 60 samples
        assert len(r) == 60
        t = r.acc[:, 0]  # = seconds since T0 on the grid
        np.testing.assert_allclose(np.diff(t), 0.05, atol=1e-5)
        np.testing.assert_allclose(r.acc, acc_of(t), atol=1e-5)
        np.testing.assert_allclose(r.gyro, gyro_of(t), atol=1e-5)  # same instants as acc
    assert recs[0].acc[0, 0] == pytest.approx(0.01)
    assert recs[1].acc[0, 0] == pytest.approx(10.01)
    assert recs[1].extra["gyro_s_without_acc"] == pytest.approx(0.21)
    assert recs[1].extra["acc_s_without_gyro"] == pytest.approx(0.01)


def test_gap_longer_than_a_second_splits(tmp_path):
    files = wisdm_files()
    acc_name = next(k for k in files if "accel" in k)
    gyro_name = next(k for k in files if "gyro" in k)
    late = T0 + 5 * 10**9 + STEP * np.arange(30)  # walking again 2 s after the first run ended
    for name, t, f in ((acc_name, late, acc_of), (gyro_name, late + 10**7, gyro_of)):
        files[name] = files[name].replace("1600,E", "\n".join(lines(1600, "A", t, f)) + "\n1600,E", 1)
    write_tree(tmp_path, files)
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["1600_phone_A_0", "1600_phone_A_1", "1600_phone_E_0"]
    assert len(recs[1]) == 29


def test_watch_files_are_a_separate_dataset(tmp_path):
    write_tree(tmp_path, {**wisdm_files(1600, "phone"), **wisdm_files(1601, "watch")})
    phone, _ = load(tmp_path)
    watch, _ = load(tmp_path, ds=WISDMWatch())
    assert {r.subject for r in phone} == {"wisdm:1600"} and {r.device for r in phone} == {"phone"}
    assert {r.subject for r in watch} == {"wisdm:1601"}
    assert {(r.device, r.position) for r in watch} == {("watch", "wrist")}
    assert len(WISDM().files(DataFolder(tmp_path))) == 2


def test_unknown_activity_letter(tmp_path):
    write_tree(tmp_path, wisdm_files(acc_extra=[f"1600,N,{T0 + 20 * 10**9},1.0,2.0,3.0;"]))
    with pytest.raises(DataError, match="unknown activity 'N'") as e:
        load(tmp_path)
    assert e.value.line == 123 and e.value.path.endswith("data_1600_accel_phone.txt")
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and bad.skipped[0][1] == 123
    assert [r.labels[0] for r in recs] == ["walking", "standing"]


@pytest.mark.parametrize("line, message", [
    (f"1600,E,{T0 + 13 * 10**9 + STEP},nan,9.8,0.1;", "NaN or infinite"),
    (f"1600,E,{T0 + 13 * 10**9 + STEP},0.1,9.8;", "expected 6 fields"),
    (f"1600,E,{T0 + 13 * 10**9 + STEP},0.1,oops,0.2;", "cannot read 'oops' as a number"),
    (f"1600,E,{T0 + 12 * 10**9},0.1,9.8,0.2;", "not after the earlier samples"),
    (f"1601,E,{T0 + 13 * 10**9 + STEP},0.1,9.8,0.2;", "subject 1601 in the file of subject 1600"),
])
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    write_tree(tmp_path, wisdm_files(gyro_extra=[line]))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == 127 and e.value.path.endswith("data_1600_gyro_phone.txt")
    recs, bad = load(tmp_path, "skip")  # exactly that row is skipped, the rest loads
    assert [m for _, _, m in bad.skipped] and len(bad.skipped) == 1
    assert len(recs) == 2 and len(recs[1]) == 60


def test_activity_without_gyroscope_rows(tmp_path):
    extra = lines(1600, "B", T0 + 20 * 10**9 + STEP * np.arange(40), acc_of)
    write_tree(tmp_path, wisdm_files(acc_extra=extra))
    message = "no gyroscope rows overlap accelerometer rows for subject 1600 activity B"
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == 123
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and [r.extra["activity"] for r in recs] == ["A", "E"]


def test_missing_gyro_file_and_missing_data(tmp_path):
    files = wisdm_files()
    write_tree(tmp_path, {k: v for k, v in files.items() if "accel" in k})
    with pytest.raises(DataError, match="no gyro file"):
        load(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingDataError, match="no WISDM phone files"):
        load(tmp_path / "empty")


def test_registered_and_vocabulary():
    from crosshar.data.labels import VOCAB

    assert isinstance(DATASETS.create("wisdm"), WISDM) and isinstance(DATASETS.create("wisdm_watch"), WISDMWatch)
    assert set(ACTIVITIES.values()) <= set(VOCAB) and len(ACTIVITIES) == 18 and "N" not in ACTIVITIES
    assert ACTIVITIES["C"] == "stairs"  # up and down are not distinguished


# ---- real data


@pytest.mark.realdata
def test_real_wisdm_phone():
    folder = real_folder(WISDM())
    t0 = time.perf_counter()
    recs = WISDM().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    print(f"\nWISDM phone: {len(recs)} recordings, {sum(len(r) for r in recs):,} samples, loaded in {seconds:.1f} s")
    assert len({r.subject for r in recs}) == 21
    assert {r.extra["activity"] for r in recs} == set(ACTIVITIES)  # every letter present
    standing = np.concatenate([r.acc for r in recs if r.labels[0] == "standing"])
    norm = float(np.linalg.norm(standing, axis=1).mean())
    print(f"standing: mean |acc| {norm:.3f} m/s^2, mean vector {standing.mean(axis=0).round(2)}")
    assert 9.5 < norm < 10.1  # m/s^2, gravity included
    still = [r for r in recs if r.labels[0] in ("sitting", "typing")]
    num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in still], axis=0)
    assert num / den > 0.9  # acc and gyro aligned in time and sharing one right-handed frame


def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path):
    """A truncated .gz (an interrupted download) stopped `--on-bad skip` too: a plain error, not skippable, so one
    damaged subject file made the whole dataset unreadable; now that subject is skipped and the file listed."""
    write_tree(tmp_path, {**wisdm_files(1600), **wisdm_files(1601)}, "gz")
    gz = tmp_path / "raw" / "phone" / "gyro" / "data_1601_gyro_phone.txt.gz"
    gz.write_bytes(gz.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"data_1601_gyro_phone\.txt\.gz: cannot read \(Compressed file ended"):
        load(tmp_path)
    recs, bad = load(tmp_path, "skip")
    assert {r.subject for r in recs} == {"wisdm:1600"}
    assert [(p.endswith("data_1601_gyro_phone.txt.gz"), ln) for p, ln, _ in bad.skipped] == [(True, None)]
