"""Source windows split by subject: every source dataset keeps validation subjects of its own, and two body
positions of one dataset (the same people) are split as one."""

from __future__ import annotations

import numpy as np

from crosshar.data.sources import concat, split_by_subject
from crosshar.data.windows import WindowSet
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
