"""BasicMotions loader: the UEA .ts format, labels, gravity-free units, bad input, real data."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.readers.basicmotions import CLASSES, BasicMotions
from crosshar.data.io import DataFolder
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import real_folder, skips_truncated_gz, truncate_gz, ts_text, write_tree

T = 5  # samples per case in the tiny files (the real ones have 100)
RNG = np.random.default_rng(0)
TRAIN = [np.round(RNG.standard_normal((6, T)), 4) for _ in range(3)]
TEST = [np.round(RNG.standard_normal((6, T)), 4) for _ in range(2)]


def files(train_labels=("Standing", "Running", "Badminton"), train=TRAIN, **kw) -> dict[str, str]:
    return {
        "BasicMotions_TRAIN.ts": ts_text(train, list(train_labels), **kw),
        "BasicMotions_TEST.ts": ts_text(TEST, ["Walking", "Standing"]),
    }


def load(root, policy: str = "error"):
    bad = BadRows(policy)
    return BasicMotions().load(DataFolder(root), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_cases_become_recordings(tmp_path, how):
    write_tree(tmp_path, files(), how, zip_name="BasicMotions.zip")
    recs, _ = load(tmp_path)
    assert [r.session for r in recs] == ["train_00", "train_01", "train_02", "test_00", "test_01"]
    assert [r.labels[0] for r in recs] == ["standing", "running", "badminton", "walking", "standing"]
    r = recs[1]
    np.testing.assert_allclose(r.acc, TRAIN[1][:3].T, rtol=1e-6)  # (T, 3), values as shipped
    np.testing.assert_allclose(r.gyro, TRAIN[1][3:].T, rtol=1e-6)
    assert len(r) == T and (r.labels == "running").all() and r.rate == 10
    assert r.subject == "basicmotions:train_01" and r.position == "wrist"
    assert r.extra == {"gravity_removed": True, "split": "train"}
    assert "line 12" in r.source  # 10 header lines, then the cases


def test_unknown_class_is_reported_and_skipped(tmp_path):
    write_tree(tmp_path, files(train_labels=("Standing", "Jumping", "Running")))
    with pytest.raises(DataError, match="unknown class 'Jumping'") as e:
        load(tmp_path)
    assert e.value.line == 12 and e.value.path.endswith("BasicMotions_TRAIN.ts")
    recs, bad = load(tmp_path, "skip")
    # case indices still count the skipped case
    assert [r.session for r in recs][:2] == ["train_00", "train_02"] and len(bad.skipped) == 1


@pytest.mark.parametrize(
    "case, message",
    [
        (np.ones((5, T)), "expected 6 dimensions"),
        (np.ones((6, T + 1)), "must all have 5 samples"),
    ],
)
def test_malformed_case(tmp_path, case, message):
    write_tree(tmp_path, files(train=[TRAIN[0], case, TRAIN[2]]))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == 12


@pytest.mark.parametrize("token, message", [("abc", "could not convert"), ("?", "missing values")])
def test_non_numbers(tmp_path, token, message):
    text = ts_text(TRAIN, ["Standing"] * 3).replace("\n" + f"{TRAIN[2][0, 0]:g},", "\n" + token + ",", 1)
    write_tree(tmp_path, {"BasicMotions_TRAIN.ts": text})
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == 13


def test_unsupported_ts_variant(tmp_path):
    text = ts_text(TRAIN, ["Standing"] * 3).replace("@timeStamps false", "@timeStamps true")
    write_tree(tmp_path, {"BasicMotions_TRAIN.ts": text})
    with pytest.raises(DataError, match="@timestamps true is not supported"):
        load(tmp_path)


def test_not_a_ts_file(tmp_path):
    write_tree(tmp_path, {"BasicMotions_TEST.ts": "hello\n"})
    with pytest.raises(DataError, match="header"):
        load(tmp_path)


def test_missing(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(MissingDataError, match="BasicMotions_TRAIN.ts"):
        load(tmp_path)


def test_registered_and_classes():
    assert isinstance(DATASETS.create("basicmotions"), BasicMotions)
    assert set(CLASSES.values()) == {"standing", "running", "walking", "badminton"}


@pytest.mark.realdata
def test_real_basicmotions(capsys):
    folder = real_folder(BasicMotions())
    t0 = time.perf_counter()
    recs = BasicMotions().load(folder, BadRows())
    seconds = time.perf_counter() - t0
    assert len(recs) == 80 and all(len(r) == 100 for r in recs)
    labels = [r.labels[0] for r in recs]
    assert {c: labels.count(c) for c in CLASSES.values()} == dict.fromkeys(CLASSES.values(), 20)
    acc = {c: np.concatenate([r.acc for r in recs if r.labels[0] == c]) for c in CLASSES.values()}
    standing = acc["standing"].mean(axis=0)
    assert np.linalg.norm(standing) < 1.0  # gravity removed: neither 9.8 m/s^2 nor 1 g
    assert acc["running"].std(axis=0).max() > 5  # m/s^2 (as g this would be impossible)
    with capsys.disabled():
        print(f"\n[basicmotions] standing mean acc {np.round(standing, 3)} m/s^2 (gravity removed), "
              f"load {seconds:.2f} s")


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip. Now an error
    naming it by default; in skip mode it is listed, the other split read."""
    write_tree(tmp_path, files(), "gz")
    gz = truncate_gz(tmp_path / "BasicMotions_TEST.ts.gz", cut)
    recs = skips_truncated_gz(load, tmp_path, gz)
    assert [r.session for r in recs] == ["train_00", "train_01", "train_02"]
