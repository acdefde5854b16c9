"""The leakage guard: a target that is a source, shares subjects or windows with it, or entered
the encoder's pretraining is refused with a message naming the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosshar.data.windows import WindowSet
from crosshar.errors import LeakageError
from crosshar.evaluate import guard
from synthdata import WINDOW


def wset(name: str, subjects: list[str], seed: int, X: np.ndarray | None = None) -> WindowSet:
    rng = np.random.default_rng(seed)
    n = len(subjects)
    X = rng.standard_normal((n, 8, 6)).astype(np.float32) if X is None else X
    return WindowSet(X, np.array(["walking"] * n), np.array(subjects), np.array(["s"] * n), name, WINDOW)


def test_target_equal_to_a_source_is_refused():
    with pytest.raises(LeakageError, match="'uci' is also a source"):
        guard.check_names(["motion", "uci"], "uci")
    guard.check_names(["motion"], "uci")  # a different dataset passes


def test_shared_subjects_are_refused():
    src = wset("uci", ["uci:01", "uci:02"], 0)
    tgt = wset("mix", ["mix:01", "uci:02"], 1)
    with pytest.raises(LeakageError, match=r"share 1 subject.*uci:02"):
        guard.check_windows(src, tgt)


def test_identical_windows_are_refused_even_under_other_subject_ids():
    src = wset("uci", ["uci:01", "uci:02", "uci:03"], 0)
    X = wset("copy", ["copy:01"] * 3, 1).X
    X[2] = src.X[1]  # the same recording shipped in another dataset
    tgt = wset("copy", ["copy:01"] * 3, 1, X)
    with pytest.raises(LeakageError, match=r"1 target window\(s\) of copy are identical.*target window 2"):
        guard.check_windows(src, tgt)


def test_distinct_data_passes():
    guard.check_windows(wset("uci", ["uci:01", "uci:02"], 0), wset("motion", ["motion:01"] * 4, 1))


def _pretrain_run(tmp_path, datasets):
    d = tmp_path / "pre"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"kind": "pretrain", "datasets": datasets, "finished": True}))
    (d / "best.pt").write_bytes(b"")
    return d


@pytest.mark.parametrize("as_file", [False, True], ids=["run-folder", "checkpoint"])
def test_encoder_pretrained_on_the_target_is_refused(tmp_path, as_file):
    pre = _pretrain_run(tmp_path, ["uci", "motion"])
    meta = {"source": ["uci"], "pretrain_run": str(pre / "best.pt" if as_file else pre)}
    with pytest.raises(LeakageError, match="pretrained on 'motion'"):
        guard.check_run(meta, "motion")
    guard.check_run(meta, "wisdm")  # a target the encoder never saw passes


def test_model_trained_on_the_target_is_refused(tmp_path):
    with pytest.raises(LeakageError, match="also a source"):
        guard.check_run({"source": ["uci", "motion"], "pretrain_run": None}, "motion")
