"""Source windows split by subject: every source dataset keeps validation subjects of its own, and two body
positions of one dataset (the same people) are split as one."""

from __future__ import annotations

import numpy as np
import pytest

from crosshar.data.sources import concat, in_label_space, split_by_subject
from crosshar.data.windows import WindowSet
from crosshar.errors import ConfigError, DataError
from synthdata import WINDOW


def wset(name: str, subjects: list[str]) -> WindowSet:
    n = len(subjects)
    return WindowSet(np.zeros((n, 8, 6), np.float32), np.array(["walking"] * n), np.array(subjects),
                     np.array(subjects), name, WINDOW)


def test_two_positions_of_one_dataset_never_put_a_subject_on_both_sides():
    people = [f"pamap2:{i}" for i in range(101, 110)]
    for seed in range(20):  # the ankle misses one subject: alone, its split would differ from the chest's
        ws = concat([wset("pamap2@chest", people * 3), wset("pamap2@ankle", people[1:] * 3),
                     wset("uci", ["uci:1", "uci:2", "uci:3"] * 2)])
        train, val, split = split_by_subject(ws, 0.3, seed)
        assert not set(train.subjects.tolist()) & set(val.subjects.tolist())
        assert set(val.datasets.tolist()) >= {"uci"} and any(s.startswith("pamap2") for s in val.datasets.tolist())
        assert len(train) + len(val) == len(ws) and split["seed"] == seed


def test_in_label_space_keeps_the_spaces_activities_and_the_coarser_labels_over_them():
    labels = ["walking", "stairs", "eating_soup", "", "sitting", "jogging", "lying"]
    n = len(labels)
    ws = WindowSet(np.arange(n * 8 * 6, dtype=np.float32).reshape(n, 8, 6), np.array(labels), np.array(["s"] * n),
                   np.array(["s"] * n), "wisdm", WINDOW)
    kept = in_label_space(ws, "crosshar4")  # walking, upstairs, downstairs, sitting&standing
    assert kept.labels.tolist() == ["walking", "stairs", "sitting"]  # WISDM's stairs lies over up and down
    assert np.array_equal(kept.X, ws.X[[0, 1, 4]])
    assert in_label_space(ws, "locomotion6").labels.tolist() == ["walking", "stairs", "sitting", "lying"]
    assert in_label_space(ws, "") is ws
    with pytest.raises(ConfigError, match="unknown label space 'bogus'"):
        in_label_space(ws, "bogus")
    with pytest.raises(DataError, match="wisdm: no window lies in label space 'crosshar4'.*its activities: eating_soup$"):
        in_label_space(ws.subset(np.array([2, 3])), "crosshar4")
