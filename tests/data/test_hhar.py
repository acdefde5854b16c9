"""HHAR loader: raw CSVs onto a uniform grid per phone, AdaTime windows, label ids, bad input."""

from __future__ import annotations

import gzip
import io
import time
import zipfile

import numpy as np
import pytest

from crosshar.config import WindowConfig
from crosshar.data.base import BadRows
from crosshar.data.readers.hhar import ADATIME_LABELS, HEADER, HHAR, RATE_ADATIME, HHARWatch
from crosshar.data.io import DataFolder
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, skips_truncated_gz, truncate_gz, write_tree

T0 = 1_424_696_631_913_248_572  # ns, a real Creation_Time: beyond float64's exact integers
RAW = "Activity recognition exp/"


def acc_of(t_s):
    return np.stack([t_s, 9.8 + 0 * t_s, -t_s], axis=-1)


def gyro_of(t_s):
    return np.stack([2 * t_s, 0.1 + 0 * t_s, t_s], axis=-1)


def csv_rows(t_ns, f, user, model, device, gt) -> list[str]:
    xyz = f((np.asarray(t_ns) - T0) / 1e9)
    return [f"{i},{t // 1_000_000},{t},{x!r},{y!r},{z!r},{user},{model},{device},{g}"
            for i, (t, (x, y, z), g) in enumerate(zip(np.asarray(t_ns).tolist(), xyz.tolist(), gt))]


def raw_files(acc_extra: list[str] = (), gyro_extra: list[str] = ()) -> dict[str, str]:
    """User a / nexus4_1 at ~100 Hz (jittered, partly out of order, one duplicate timestamp):
    2 s stand, 1.5 s null, 2 s walk; gyro 3 ms later. User b / s3_1: 1 s of acc, no gyro."""
    rng = np.random.default_rng(0)
    k = np.arange(550)
    ta = T0 + k * 10_000_000 + rng.integers(-1_000_000, 1_000_000, len(k))
    gt = ["stand"] * 200 + ["null"] * 150 + ["walk"] * 200
    acc = csv_rows(ta, acc_of, "a", "nexus4", "nexus4_1", gt)
    acc[10], acc[11] = acc[11], acc[10]  # out of order in the file: normal for HHAR
    dup = acc[20].split(",")
    dup[3:6] = ["99.0", "99.0", "99.0"]  # same Creation_Time as row 20: the first one is kept
    acc.insert(21, ",".join(dup))
    acc += csv_rows(T0 + np.arange(150) * 6_666_667, acc_of, "b", "s3", "s3_1", ["sit"] * 150)
    tg = T0 + 3_000_000 + k * 10_000_000
    gyro = csv_rows(tg, gyro_of, "a", "nexus4", "nexus4_1", gt)
    head = ",".join(HEADER)
    return {
        RAW + "Phones_accelerometer.csv": "\n".join([head, *acc, *acc_extra]) + "\n",
        RAW + "Phones_gyroscope.csv": "\n".join([head, *gyro, *gyro_extra]) + "\n",
    }


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    folder = DataFolder(HHAR().locate(root))
    return HHAR().load(folder, bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_raw_phones_on_a_uniform_grid(tmp_path, how):
    write_tree(tmp_path / "hhar", raw_files(), how)
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["a_nexus4_1_0", "a_nexus4_1_1", "b_s3_1_0"]
    stand, walk, sit = recs
    assert set(stand.labels) == {"standing"} and set(walk.labels) == {"walking"} and set(sit.labels) == {"sitting"}
    for r in (stand, walk):
        assert r.rate == pytest.approx(100, rel=0.01)
        assert (r.subject, r.device, r.position) == ("hhar:a", "nexus4", "waist pouch")
        t = r.acc[:, 0]  # seconds since T0 on the grid
        np.testing.assert_allclose(np.diff(t), 1 / r.rate, atol=1e-5)
        np.testing.assert_allclose(r.acc, acc_of(t), atol=1e-4)  # the duplicate's 99s are gone
        np.testing.assert_allclose(r.gyro, gyro_of(t), atol=1e-4)
        assert r.extra["null_rows"] == 150 and r.extra["duplicate_timestamps"] == 1 and r.extra["gyro"]
    assert stand.acc[0, 0] == pytest.approx(0.003, abs=2e-3) and walk.acc[0, 0] > 3.4  # split at the null gap
    assert len(stand) == pytest.approx(200, abs=2) and len(walk) == pytest.approx(200, abs=2)
    # a phone without gyroscope rows gives acc-only recordings
    assert sit.gyro is None and not sit.extra["gyro"] and sit.rate == pytest.approx(150, rel=0.01)
    assert len(HHAR().files(DataFolder(HHAR().locate(tmp_path)))) == 2


@pytest.mark.parametrize("row, message", [
    (f"0,1,{T0 + 10**9},0.1,9.8,0.2,a,nexus4,nexus4_1,jump", "unknown activity 'jump'"),
    (f"0,1,{T0 + 10**9},nan,9.8,0.2,a,nexus4,nexus4_1,walk", "NaN or infinite"),
    (f"0,1,{T0 + 10**9},0.1,9.8,a,nexus4,nexus4_1,walk", "expected 10 fields"),
    (f"0,1,{T0 + 10**9},0.1,9.8,x,a,nexus4,nexus4_1,walk", "cannot read 'x' as a number"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    write_tree(tmp_path / "hhar", raw_files(acc_extra=[row]))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == 703 and e.value.path.endswith("Phones_accelerometer.csv")
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and len(recs) == 3


def test_bad_header_and_timestamps_not_in_ns(tmp_path):
    files = raw_files()
    name = RAW + "Phones_gyroscope.csv"
    files[name] = files[name].replace("Creation_Time", "Created", 1)
    write_tree(tmp_path / "hhar", files)
    with pytest.raises(DataError, match="header lacks column.*Creation_Time") as e:
        load(tmp_path)
    assert e.value.line == 1
    head = ",".join(HEADER)
    still = lambda t: np.stack([0 * t, 9.8 + 0 * t, 0 * t], axis=-1)  # noqa: E731  (plausible values)
    ms = csv_rows(np.arange(100) * 10, still, "c", "s3", "s3_1", ["sit"] * 100)  # ms, not ns
    write_tree(tmp_path / "hhar2", {**raw_files(), RAW + "Phones_accelerometer.csv": "\n".join([head, *ms]) + "\n"})
    with pytest.raises(DataError, match="expected nanoseconds"):
        HHAR().load(DataFolder(tmp_path / "hhar2"), BadRows())


def test_missing_gyroscope_file(tmp_path):
    files = raw_files()
    write_tree(tmp_path / "hhar", {k: v for k, v in files.items() if "accelerometer" in k})
    with pytest.raises(MissingDataError, match="no Phones_gyroscope.csv"):
        load(tmp_path)


# ---- AdaTime windows


def npz_bytes(x, y) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, samples=x, labels=y)
    return buf.getvalue()


def adatime(root, users=(0, 3), n=6, y=None, x=None):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for u in users:
        xs = rng.standard_normal((n, 128, 3)) if x is None else x
        ys = (np.arange(n) % 6).astype(np.int32) if y is None else y
        (root / f"test_{u}.npz").write_bytes(npz_bytes(xs, ys))


def windows(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return HHAR().windows(DataFolder(HHAR().locate(root)), bad), bad


def test_adatime_windows(tmp_path):
    adatime(tmp_path / "hhar_sa_adatime")
    folder = DataFolder(HHAR().locate(tmp_path))
    ws = HHAR().windows(folder, BadRows())
    assert len(ws) == 12 and set(ws.subjects.tolist()) == {"hhar:0", "hhar:3"}
    assert ws.sessions[:3].tolist() == ["0_0", "0_1", "0_2"]
    assert ws.labels[:6].tolist() == ["biking", "sitting", "downstairs", "upstairs", "standing", "walking"]
    assert ws.X.shape == (12, 128, 3) and ws.X.dtype == np.float32 and set(ws.datasets.tolist()) == {"hhar"}
    with pytest.raises(DataError, match="fixed windows"):  # not one fake recording per window
        HHAR().load(folder, BadRows())
    assert HHAR().profile(folder) == WindowConfig(rate_hz=50.0, window=128, stride=128, channels="acc",
                                                  normalize="zscore_subject")
    assert not HHAR().has_gyro(folder)


def test_adatime_bad_windows(tmp_path):
    adatime(tmp_path / "hhar_sa_adatime", users=(0,), y=np.array([0, 6, 2, 3, 4, 5], np.int32))
    with pytest.raises(DataError, match="window 1: unknown label id 6") as e:
        windows(tmp_path)
    assert e.value.path.endswith("test_0.npz")
    ws, bad = windows(tmp_path, "skip")
    assert len(bad.skipped) == 1 and ws.sessions.tolist() == ["0_0", "0_2", "0_3", "0_4", "0_5"]
    x = np.zeros((6, 128, 3))
    x[4, 7, 1] = np.nan
    adatime(tmp_path / "nan" / "hhar", users=(2,), x=x)
    with pytest.raises(DataError, match="window 4: NaN"):
        windows(tmp_path / "nan")
    adatime(tmp_path / "shape" / "hhar", users=(2,), x=np.zeros((6, 3, 128)))
    with pytest.raises(DataError, match=r"expected samples \(N, 128, 3\)"):
        windows(tmp_path / "shape")


def test_adatime_inside_a_zip_and_gz(tmp_path):
    root = tmp_path / "hhar_sa_adatime"
    root.mkdir()
    x, y = np.zeros((2, 128, 3)), np.array([4, 5], np.int32)
    with zipfile.ZipFile(root / "HHAR_SA.zip", "w") as zf:
        zf.writestr("HHAR_SA/test_1.npz", npz_bytes(x, y))
    (root / "test_2.npz.gz").write_bytes(gzip.compress(npz_bytes(x, y)))
    ws, _ = windows(tmp_path)
    assert list(zip(ws.subjects.tolist(), ws.labels.tolist())) == [
        ("hhar:1", "standing"), ("hhar:1", "walking"), ("hhar:2", "standing"), ("hhar:2", "walking")]


def test_raw_layout_is_preferred(tmp_path):
    adatime(tmp_path / "hhar_sa_adatime")
    write_tree(tmp_path / "Activity recognition exp", {k[len(RAW):]: v for k, v in raw_files().items()})
    assert HHAR().locate(tmp_path).name == "Activity recognition exp"
    folder = DataFolder(HHAR().locate(tmp_path))
    assert HHAR().profile(folder) is None and HHAR().has_gyro(folder)
    with pytest.raises(MissingDataError, match="not found"):
        HHAR().locate(tmp_path / "nothing")


def watch_files() -> dict[str, str]:
    """The phones' rows as an LG watch's, in Watch_*.csv; the phones' own files hold only user b biking."""
    files = raw_files()
    swap = lambda text: text.replace("nexus4_1", "lgwatch_1").replace("nexus4", "lgwatch")  # noqa: E731
    return {RAW + "Watch_accelerometer.csv": swap(files[RAW + "Phones_accelerometer.csv"]),
            RAW + "Watch_gyroscope.csv": swap(files[RAW + "Phones_gyroscope.csv"]),
            **{RAW + f"Phones_{sensor}.csv": "\n".join([",".join(HEADER), *csv_rows(
                T0 + np.arange(150) * 10_000_000, f, "b", "s3", "s3_1", ["bike"] * 150)]) + "\n"
               for sensor, f in (("accelerometer", acc_of), ("gyroscope", gyro_of))}}


@pytest.mark.parametrize("how", ["plain", "zip"])
def test_the_watches_are_their_own_dataset_on_the_wrist(tmp_path, how):
    """hhar_watch reads Watch_*.csv beside the phones' files, the same way; hhar still reads only the phones."""
    write_tree(tmp_path / "hhar", watch_files(), how)
    folder = DataFolder(HHARWatch().locate(tmp_path))
    recs = HHARWatch().load(folder, BadRows("error"))
    assert [r.session for r in recs] == ["a_lgwatch_1_0", "a_lgwatch_1_1", "b_s3_1_0"]
    for r in recs[:2]:
        assert (r.dataset, r.subject, r.device, r.position) == ("hhar_watch", "hhar:a", "lgwatch", "wrist")
        t = r.acc[:, 0]
        np.testing.assert_allclose(r.acc, acc_of(t), atol=1e-4)
        np.testing.assert_allclose(r.gyro, gyro_of(t), atol=1e-4)
    assert {e.logical.rsplit("/", 1)[-1] for e in HHARWatch().files(folder)} == {"Watch_accelerometer.csv",
                                                                                  "Watch_gyroscope.csv"}
    assert HHARWatch().profile(folder) is None and HHARWatch().has_gyro(folder)
    phones = HHAR().load(DataFolder(HHAR().locate(tmp_path)), BadRows("error"))
    assert [(r.dataset, r.position, set(r.labels)) for r in phones] == [("hhar", "waist pouch", {"biking"})]


def test_watches_without_their_gyroscope_file_or_files_at_all(tmp_path):
    files = watch_files()
    del files[RAW + "Watch_gyroscope.csv"]
    write_tree(tmp_path / "hhar", files)
    with pytest.raises(MissingDataError, match="no Watch_gyroscope.csv"):
        HHARWatch().load(DataFolder(HHARWatch().locate(tmp_path)), BadRows("error"))
    adatime(tmp_path / "only_adatime" / "hhar_sa_adatime")  # AdaTime's windows are the phones': no watch data
    with pytest.raises(MissingDataError, match="no HHAR files"):
        HHARWatch().load(DataFolder(HHARWatch().locate(tmp_path / "only_adatime")), BadRows("error"))


def test_registered():
    assert isinstance(DATASETS.create("hhar"), HHAR) and isinstance(DATASETS.create("hhar_watch"), HHARWatch)
    assert HHAR.folders == ("hhar", "hhar_sa_adatime", "HHAR", "Activity recognition exp")
    assert sorted(ADATIME_LABELS) == sorted(["biking", "sitting", "standing", "walking", "upstairs", "downstairs"])


# ---- real data


@pytest.mark.realdata
def test_real_hhar_adatime():
    folder = real_folder(HHAR())
    if HHAR().profile(folder) is None:
        pytest.skip("the HHAR folder found holds the raw layout, not AdaTime's windows")
    t0 = time.perf_counter()
    ws = HHAR().windows(folder, BadRows())
    print(f"\nHHAR (AdaTime windows): {len(ws)} windows in {time.perf_counter() - t0:.2f} s")
    assert len(ws) == 4436
    assert len(set(ws.subjects.tolist())) == 9
    labels = ws.labels
    counts = dict(zip(*np.unique(labels, return_counts=True)))
    assert counts == {"biking": 854, "sitting": 630, "downstairs": 733, "upstairs": 736,
                      "standing": 648, "walking": 835}
    x = ws.X  # (N, 128, 3)
    # the label ids: the two still classes barely move inside a window, every other class does
    motion = x.std(axis=1).mean(axis=1)
    for lab in ("sitting", "standing"):
        assert motion[labels == lab].mean() < 0.15
    for lab in ("biking", "walking", "upstairs", "downstairs"):
        assert motion[labels == lab].mean() > 0.4
    # the rate: walking's step frequency sits at 3-4 cycles per 128 samples (50 Hz: 1.2-1.6 Hz)
    w = x[labels == "walking"] - x[labels == "walking"].mean(axis=1, keepdims=True)
    power = (np.abs(np.fft.rfft(w * np.hanning(128)[None, :, None], n=2048, axis=1)) ** 2).sum(axis=2)
    cycles = np.fft.rfftfreq(2048) * 128
    band = (cycles > 1) & (cycles < 12)
    peak = float(np.median(cycles[np.argmax(power * band, axis=1)]))
    print(f"walking: median spectral peak {peak:.2f} cycles / 128 samples "
          f"= {peak * RATE_ADATIME / 128:.2f} Hz at 50 Hz")
    assert 3.0 < peak < 4.5


def test_a_damaged_npz_member_is_bad_input_not_a_traceback(tmp_path):
    """A damaged deflate stream inside an AdaTime .npz raised zlib.error (a traceback, exit 1) instead of the
    reader's "not a readable .npz file", which --on-bad skip skips and lists."""
    import struct

    adatime(tmp_path / "hhar_sa_adatime")
    f = tmp_path / "hhar_sa_adatime" / "test_3.npz"
    b = bytearray(f.read_bytes())
    n, extra = struct.unpack("<HH", b[26:30])
    b[30 + n + extra] = 0x07  # the first member's first deflate block: a reserved block type
    f.write_bytes(bytes(b))
    with pytest.raises(DataError, match=r"test_3\.npz: not a readable \.npz file \(.*invalid block type"):
        windows(tmp_path)
    ws, bad = windows(tmp_path, "skip")
    assert len(bad.skipped) == 1 and set(ws.subjects.tolist()) == {"hhar:0"}


@pytest.mark.parametrize("cut", ["half", "tail"])
@pytest.mark.parametrize("name", ["Phones_accelerometer.csv", "Phones_gyroscope.csv", "test_3.npz"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, name, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip; now it is bad
    input: an error naming the file by default, skipped and listed in skip mode. The raw layout needs both files (no
    recording is left), AdaTime's windows lose that user's file only."""
    if name.endswith(".npz"):
        adatime(tmp_path / "hhar_sa_adatime")
        for f in (tmp_path / "hhar_sa_adatime").iterdir():
            f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
            f.unlink()
        gz = truncate_gz(tmp_path / "hhar_sa_adatime" / (name + ".gz"), cut)
        ws = skips_truncated_gz(windows, tmp_path, gz)
        assert len(ws) == 6 and set(ws.subjects.tolist()) == {"hhar:0"}
    else:
        write_tree(tmp_path / "hhar", raw_files(), "gz")
        gz = truncate_gz(tmp_path / "hhar" / (RAW + name + ".gz"), cut)
        assert skips_truncated_gz(load, tmp_path, gz) == []
