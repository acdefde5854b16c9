"""UCI-HAR / HAPT loader: both public layouts, units, labels, stitching and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.limits import GRAVITY
from crosshar.data.readers.uci import ACTIVITIES, UCI
from crosshar.data.rows import read_table
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, rotation_slope, uci_har_files, uci_labels_text, uci_raw_text, windows, write_tree

N1, N2 = 300, 200  # samples of the two tiny experiments


def _streams(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    acc = np.array([1.0, -0.1, 0.05]) + 0.01 * rng.standard_normal((n, 3))  # g, x up
    return acc, 0.1 * rng.standard_normal((n, 3))


ACC1, GYRO1 = _streams(N1, 1)
ACC2, GYRO2 = _streams(N2, 2)
LABELS = [(1, 1, 5, 10, 109), (1, 1, 7, 110, 149), (2, 2, 1, 0, 199)]


def raw_files(labels=LABELS, acc1=ACC1, gyro2=GYRO2) -> dict[str, str]:
    return {
        "RawData/acc_exp01_user01.txt": uci_raw_text(acc1) if isinstance(acc1, np.ndarray) else acc1,
        "RawData/gyro_exp01_user01.txt": uci_raw_text(GYRO1),
        "RawData/acc_exp02_user02.txt": uci_raw_text(ACC2),
        "RawData/gyro_exp02_user02.txt": uci_raw_text(gyro2),
        "RawData/labels.txt": uci_labels_text(labels),
    }


def load(root, policy: str = "error"):
    bad = BadRows(policy)
    return UCI().load(DataFolder(root), bad), bad


# ---- layout 1: HAPT RawData


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_rawdata_units_labels_and_metadata(tmp_path, how):
    write_tree(tmp_path, raw_files(), how, zip_name="HAPT Data Set.zip")
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["exp01", "exp02"]
    r1, r2 = recs
    np.testing.assert_allclose(r1.acc, ACC1 * GRAVITY, rtol=1e-6)  # g -> m/s^2, sign kept
    np.testing.assert_allclose(r1.gyro, GYRO1, rtol=1e-6)
    assert r1.acc.dtype == np.float32 and r1.rate == 50
    assert (r1.subject, r2.subject, r1.dataset) == ("uci:01", "uci:02", "uci")
    assert (r1.device, r1.position) == ("Samsung Galaxy S II", "waist")
    assert r2.extra["split"] == "test" and r1.extra["split"] == "train"  # subject 2 is a UCI test subject
    # 0-based inclusive segments; samples outside every segment are unlabelled
    assert list(r1.labels[[9, 10, 109, 110, 149, 150]]) == ["", "standing", "standing", "stand_to_sit", "stand_to_sit", ""]
    assert (r2.labels == "walking").all()
    assert "acc_exp01_user01.txt" in r1.source


def test_all_twelve_activity_ids(tmp_path):
    segs = [(1, 1, a, 20 * (a - 1), 20 * a - 1) for a in range(1, 13)]
    write_tree(tmp_path, raw_files(labels=segs))
    r1 = load(tmp_path)[0][0]
    assert [r1.labels[20 * (a - 1)] for a in range(1, 13)] == list(ACTIVITIES)
    assert ACTIVITIES[5] == "lying" and ACTIVITIES[11] == "lie_to_stand"


def test_files_lists_what_is_read(tmp_path):
    write_tree(tmp_path, raw_files(), "gz")
    names = [e.logical for e in UCI().files(DataFolder(tmp_path))]
    assert names == sorted(raw_files())


@pytest.mark.parametrize(
    "row, message",
    [
        ((1, 1, 13, 0, 5), "unknown activity id 13"),
        ((1, 1, 5, 250, 300), "outside experiment 1's 300 samples"),
        ((1, 1, 5, 100, 120), "overlaps"),
        ((1, 2, 5, 200, 210), "belongs to user 1"),
        ((3, 3, 5, 0, 10), "experiment 3 has no acc/gyro files"),
        ((1, 1, 5, 7.5, 8), "must be integers"),
    ],
)
def test_bad_label_row_names_file_and_line(tmp_path, row, message):
    write_tree(tmp_path, raw_files(labels=[*LABELS, row]))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.path.endswith("labels.txt") and e.value.line == 4
    # skip mode: exactly that segment is dropped, the others stay
    recs, bad = load(tmp_path, "skip")
    assert [(s[1], message in s[2]) for s in bad.skipped] == [(4, True)]
    assert (recs[0].labels == "standing").sum() == 100 and (recs[1].labels == "walking").all()


def test_bad_number_is_reported_and_its_row_dropped_from_every_stream(tmp_path):
    lines = uci_raw_text(ACC1).splitlines(keepends=True)
    lines[5] = "0.99 oops 0.1\n"  # sample 5 = line 6
    write_tree(tmp_path, raw_files(acc1="".join(lines)))
    with pytest.raises(DataError, match="could not convert") as e:
        load(tmp_path)
    assert e.value.path.endswith("acc_exp01_user01.txt") and e.value.line == 6
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1
    r1 = recs[0]
    assert len(r1) == N1 - 1
    keep = np.arange(N1) != 5
    np.testing.assert_allclose(r1.gyro, GYRO1[keep], rtol=1e-6)  # gyro row 5 dropped too
    np.testing.assert_allclose(r1.acc, ACC1[keep] * GRAVITY, rtol=1e-6)
    assert r1.labels[9] == "standing" and r1.labels[8] == ""  # labels stay with their samples


@pytest.mark.parametrize("text, line", [("1 2\n", 1), ("1 2 3\n1 2 3 4\n", 2), ("1 2 3\n\n1 nan 3\n", 3),
                                        ("1 2 3\n1 2 inf\n", 2), ("", None), ("\n\n", None)])
def test_wrong_column_count_or_nan(tmp_path, text, line):
    write_tree(tmp_path, raw_files(acc1=text))
    with pytest.raises(DataError) as e:
        load(tmp_path)
    assert e.value.line == line and "acc_exp01" in e.value.path


def test_length_mismatch_drops_the_experiment(tmp_path):
    write_tree(tmp_path, raw_files(gyro2=GYRO2[:-3]))
    with pytest.raises(DataError, match="has 197 samples but .*acc_exp02_user02.txt has 200"):
        load(tmp_path)
    recs, bad = load(tmp_path, "skip")
    assert [r.session for r in recs] == ["exp01"]  # exp02's label rows are not reported again
    assert len(bad.skipped) == 1


def test_missing_gyro_file(tmp_path):
    files = raw_files()
    del files["RawData/gyro_exp02_user02.txt"]
    write_tree(tmp_path, files)
    with pytest.raises(DataError, match="no gyroscope file gyro_exp02_user02.txt"):
        load(tmp_path)


def test_empty_folder_is_missing_data(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(MissingDataError, match="RawData"):
        load(tmp_path)


def test_read_table_line_numbers_survive_blank_lines(tmp_path):
    (tmp_path / "t.txt").write_text("1 2 3\n\n4 5 6\n\n")
    folder = DataFolder(tmp_path)
    t = read_table(folder, folder.find("t.txt"), BadRows(), 3)
    assert t.lines.tolist() == [1, 3] and t.values.tolist() == [[1, 2, 3], [4, 5, 6]]


# ---- layout 2: UCI HAR Dataset windows


def _har_tree(tmp_path, how="plain", prefix="UCI HAR Dataset/"):
    rng = np.random.default_rng(0)
    sig = lambda n: np.round(rng.standard_normal((n, 6)), 4)  # noqa: E731
    a, b, c, d = sig(256), sig(192), sig(128), sig(192)  # continuous signals (acc g, gyro)
    # train: subject 1 standing (3 windows), then subject 1 walking (2 windows)
    wa, wb = windows(a), windows(b)
    train = np.concatenate([wa, wb])
    files = uci_har_files("train", train[..., :3], train[..., 3:], [1] * 5, [5, 5, 5, 1, 1], prefix)
    # test: subject 3 walking, one window, then two windows of another walk (no overlap: a break)
    wc, wd = windows(c), windows(d)
    test = np.concatenate([wc, wd])
    files |= uci_har_files("test", test[..., :3], test[..., 3:], [3] * 3, [1] * 3, prefix)
    write_tree(tmp_path, files, how, zip_name="UCI HAR Dataset.zip")
    return [a, b, c, d]


@pytest.mark.parametrize("how", ["plain", "zip"])
def test_windows_are_stitched_back_into_recordings(tmp_path, how):
    signals = _har_tree(tmp_path, how)
    recs, _ = load(tmp_path)
    assert [len(r) for r in recs] == [256, 192, 128, 192]
    assert [r.labels[0] for r in recs] == ["standing", "walking", "walking", "walking"]
    assert [r.subject for r in recs] == ["uci:01", "uci:01", "uci:03", "uci:03"]
    assert [r.session for r in recs] == ["train:1-3", "train:4-5", "test:1-1", "test:2-3"]
    for r, s in zip(recs, signals):
        np.testing.assert_allclose(r.acc, s[:, :3] * GRAVITY, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r.gyro, s[:, 3:], rtol=1e-6, atol=1e-7)
        assert (r.labels == r.labels[0]).all() and r.extra["split"] == r.session.split(":")[0]


def test_window_files_must_agree_in_length(tmp_path):
    _har_tree(tmp_path, prefix="")
    (tmp_path / "train" / "y_train.txt").write_text("5\n5\n5\n1\n")
    with pytest.raises(DataError, match="one row per window"):
        load(tmp_path)


def test_unknown_window_label(tmp_path):
    _har_tree(tmp_path, prefix="")
    (tmp_path / "test" / "y_test.txt").write_text("1\n7\n1\n")
    with pytest.raises(DataError, match="activity ids must be integers in 1..6") as e:
        load(tmp_path)
    assert e.value.line == 2
    recs, _ = load(tmp_path, "skip")  # the bad window is dropped and breaks its run
    assert [r.session for r in recs] == ["train:1-3", "train:4-5", "test:1-1", "test:3-3"]


def test_rawdata_is_preferred_over_windows(tmp_path):
    _har_tree(tmp_path)
    write_tree(tmp_path, raw_files())
    assert [r.session for r in load(tmp_path)[0]] == ["exp01", "exp02"]


def test_registered():
    assert isinstance(DATASETS.create("uci"), UCI)
    assert UCI.url.startswith("https://archive.ics.uci.edu/") and UCI.folders[0] == "uci_hapt"


# ---- real data


@pytest.mark.realdata
def test_real_uci_hapt(capsys):
    folder = real_folder(UCI())
    t0 = time.perf_counter()
    recs = UCI().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    assert len(recs) == 61 and len({r.subject for r in recs}) == 30
    assert sum(len(r) for r in recs) == 1_122_772
    labels = np.concatenate([r.labels for r in recs])
    assert set(labels) - {""} == set(ACTIVITIES)
    acc = np.concatenate([r.acc for r in recs])
    standing = acc[labels == "standing"]
    assert abs(np.linalg.norm(standing, axis=1).mean() - 9.8) < 0.5  # m/s^2 with gravity
    mean = standing.mean(axis=0)
    assert mean[0] > 9.0  # x points up along the body of a waist-worn phone: +9.8 (Android)
    num, den = np.sum([rotation_slope(r.acc, r.gyro, r.rate) for r in recs[::6]], axis=0)
    assert num / den > 0.8  # acc and gyro share one right-handed frame
    with capsys.disabled():
        print(f"\n[uci] standing mean acc {np.round(mean, 2)} m/s^2, load {seconds:.1f} s, "
              f"rotation slope {num / den:.2f}")


def test_an_orphan_gyro_file_is_reported(tmp_path):
    files = raw_files()
    files["RawData/gyro_exp03_user03.txt"] = files["RawData/gyro_exp02_user02.txt"]
    write_tree(tmp_path, files)
    with pytest.raises(DataError, match="gyroscope file without its accelerometer file acc_exp03_user03.txt") as e:
        load(tmp_path)
    assert e.value.path.endswith("gyro_exp03_user03.txt")
    recs, bad = load(tmp_path, "skip")
    assert len(recs) == 2 and len(bad.skipped) == 1


def test_a_damaged_gz_stream_is_an_error_naming_the_file(tmp_path):
    """A .gz whose deflate data is damaged (not truncated: a flipped block) raised zlib.error: a traceback naming no
    file, exit 1, instead of one line naming the file."""
    write_tree(tmp_path, raw_files(), "gz")
    gz = tmp_path / "RawData" / "gyro_exp02_user02.txt.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x07" * 16)  # a reserved deflate block type
    with pytest.raises(DataError, match=r"gyro_exp02_user02\.txt\.gz: cannot read \(.*invalid block type"):
        load(tmp_path)


def test_a_plain_copy_beside_its_gz_is_reported_never_silently_shadowed(tmp_path, monkeypatch):
    """acc.txt beside acc.txt.gz (`gunzip -k`, then an edit): the .gz was read and the plain copy ignored without a
    word, and a change to the plain copy never invalidated the cache."""
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare as prep

    def prepare(*a, **k):
        return prep(*a, cfg=WindowConfig(window=20, stride=20), **k)  # 1 s windows: the tiny experiments give some

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    root = tmp_path / "data" / "uci_hapt"
    write_tree(root, raw_files(), "gz")
    ws = prepare("uci", tmp_path / "data", on_bad="skip")
    assert ws.manifest["skipped"] == []
    plain = root / "RawData" / "acc_exp01_user01.txt"
    plain.write_text(uci_raw_text(ACC1[:50]))  # a partial, differing copy
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt: a second copy of RawData/acc_exp01_user01\.txt "
                                        r"\(only acc_exp01_user01\.txt\.gz is read\)"):
        prepare("uci", tmp_path / "data")
    ws2 = prepare("uci", tmp_path / "data", on_bad="skip")  # not the cache of the folder without the copy
    assert [s["file"] for s in ws2.manifest["skipped"]] == [str(plain)]
    assert ws2.manifest["key"] != ws.manifest["key"] and len(ws2) == len(ws)


def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path):
    """A truncated .gz in the middle of RawData stopped `--on-bad skip` too (a plain error, not skippable): one
    interrupted download made the whole dataset unreadable. Now its experiment is skipped and the file listed."""
    write_tree(tmp_path, raw_files(), "gz")
    gz = tmp_path / "RawData" / "acc_exp02_user02.txt.gz"
    gz.write_bytes(gz.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"acc_exp02_user02\.txt\.gz: cannot read \(Compressed file ended") as e:
        load(tmp_path)
    assert e.value.skippable
    recs, bad = load(tmp_path, "skip")
    assert [r.session for r in recs] == ["exp01"]
    assert [(p.endswith("acc_exp02_user02.txt.gz"), ln) for p, ln, _ in bad.skipped] == [(True, None)]
