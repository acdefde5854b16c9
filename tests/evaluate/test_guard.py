"""The leakage guard: a target that is a source, shares subjects or windows with it, or entered
the encoder's pretraining is refused with a message naming the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosshar.data.windows import WindowSet
from crosshar.errors import LeakageError
from crosshar import guard
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


def test_another_body_position_of_a_source_is_not_an_unseen_target():
    """pamap2@wrist from pamap2@chest (or from the whole pamap2) is the same people at the same moments."""
    for source, target in ((["pamap2@chest"], "pamap2@wrist"), (["uci", "shoaib"], "shoaib@wrist"),
                           (["shoaib@belt"], "shoaib")):
        with pytest.raises(LeakageError, match=f"'{target}' is also a source \\(another body position of it"):
            guard.check_names(source, target)
    guard.check_names(["shoaib@belt", "uci"], "motion")
    guard.check_names(["pamap2@chest"], "shoaib@chest")


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
    with pytest.raises(LeakageError, match="pretrained on 'motion@pocket'"):
        guard.check_run(meta, "motion@pocket")  # one body position of a pretraining dataset


@pytest.mark.parametrize("text", ['{"kind": "pretrain", "datas', "[]", '{"datasets": 5}', "\udcff"],
                         ids=["truncated", "a-list", "datasets-not-a-list", "not-utf8"])
def test_a_damaged_run_json_of_the_encoder_is_one_error_naming_it(tmp_path, text):
    """The guard read the encoder's run.json unguarded: cross ended in a JSONDecodeError or AttributeError traceback."""
    from crosshar.errors import CrossharError

    pre = _pretrain_run(tmp_path, ["uci"])
    (pre / "run.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CrossharError, match=f"^{pre / 'run.json'}: not a readable run.json .*the leakage check reads"):
        guard.check_run({"source": ["motion"], "pretrain_run": str(pre)}, "wisdm")


def test_model_trained_on_the_target_is_refused(tmp_path):
    with pytest.raises(LeakageError, match="also a source"):
        guard.check_run({"source": ["uci", "motion"], "pretrain_run": None}, "motion")


# ---- near-copies (issue 10): shifted, rounded or resampled copies under other names


def recordings(name: str, n_subjects: int, seed: int, seconds: float = 60.0):
    """Band-limited random motion plus gravity at 50 Hz: every subject and seed genuinely different."""
    from crosshar.data.recording import Recording
    from crosshar.limits import GRAVITY

    rng = np.random.default_rng(seed)
    n = int(seconds * 50)
    out = []
    for s in range(n_subjects):
        x = rng.standard_normal((n + 20, 6))
        x = np.stack([np.convolve(x[:, k], np.ones(12) / 12, "valid")[:n] for k in range(6)], 1) * 3.0
        x[:, 2] += GRAVITY
        out.append(Recording(acc=x[:, :3], gyro=x[:, 3:] / 3, rate=50.0, labels=np.full(n, "walking"),
                             subject=f"{name}:{s:02d}", dataset=name, source=f"{name}/{s}.csv").validate())
    return out


def windows(recs, name):
    from crosshar.config import WindowConfig
    from crosshar.data.windows import make_windows

    return make_windows(recs, WindowConfig(), name)


def renamed(recs, name, acc=lambda a: a, gyro=lambda g: g, start=0):
    from dataclasses import replace

    return [replace(r, acc=acc(r.acc[start:].astype(np.float64)), gyro=gyro(r.gyro[start:].astype(np.float64)),
                    labels=r.labels[start:], subject=r.subject.replace("uci", name), dataset=name).validate()
            for r in recs]


@pytest.mark.parametrize("how", ["first sample dropped", "rounded to 5 decimals (in g)", "resampled 50 -> 49 Hz"])
def test_near_copies_under_other_names_are_refused(how):
    from dataclasses import replace

    from crosshar.limits import GRAVITY

    recs = recordings("uci", 4, seed=0)
    if how == "first sample dropped":
        copy = renamed(recs, "mylab", start=1)
    elif how.startswith("rounded"):
        copy = renamed(recs, "mylab", acc=lambda a: np.round(a / GRAVITY, 5) * GRAVITY, gyro=lambda g: np.round(g, 5))
    else:
        from crosshar.data.windows import resample

        copy = [replace(r, acc=resample(r.acc, 50, 49), gyro=resample(r.gyro, 50, 49), rate=49.0,
                        labels=r.labels[: len(resample(r.acc, 50, 49))], subject=r.subject.replace("uci", "mylab"),
                        dataset="mylab").validate() for r in recs]
    src, tgt = windows(recs, "uci"), windows(copy, "mylab")
    assert not set(src.content_hashes().tolist()) & set(tgt.content_hashes().tolist())  # no bit-identical window
    with pytest.raises(LeakageError, match=r"4 target subject\(s\) of mylab are near-copies of uci .*e\.g\. mylab:0\d: "
                                           r"\d+ of \d+ moving windows lie within 0.35 .* of windows of uci:0\d"):
        guard.check_windows(src, tgt)


def test_genuinely_different_recordings_pass():
    src, tgt = windows(recordings("uci", 4, seed=0), "uci"), windows(recordings("mylab", 4, seed=1), "mylab")
    assert guard.near_copies(src, tgt) == []
    guard.check_windows(src, tgt)


def test_one_copied_subject_among_others_is_named():
    recs = recordings("uci", 4, seed=0)
    mixed = recordings("mylab", 3, seed=1) + renamed(recs[2:3], "mylab", start=1)
    mixed[-1].subject = "mylab:99"
    found = guard.near_copies(windows(recs, "uci"), windows(mixed, "mylab"))
    assert [c["subject"] for c in found] == ["mylab:99"] and list(found[0]["source_subjects"]) == ["uci:02"]


@pytest.mark.realdata
@pytest.mark.slow
def test_real_datasets_are_not_near_copies_but_a_shifted_copy_is(real_data):
    from crosshar.data.base import BadRows
    from crosshar.data.io import DataFolder
    from crosshar.data.store import get_dataset, prepare

    ws = {d: prepare(d, real_data) for d in ("uci", "motion", "wisdm")}
    for s in ws:
        for t in ws:
            if s != t:
                assert guard.near_copies(ws[s], ws[t]) == [], (s, t)
    ds = get_dataset("uci")
    recs = ds.load(DataFolder(ds.locate(real_data)), BadRows())
    copy = windows(renamed(recs, "mylab", start=1), "mylab")
    found = guard.near_copies(ws["uci"], copy)
    assert len(found) == 30 and all(c["matched"] >= 0.8 * c["compared"] for c in found)


def test_two_positions_of_your_own_data_are_one_dataset_however_the_path_is_typed(tmp_path, monkeypatch):
    """`cross -d ./lab@wrist -td ./lab@ankle` passed the name check ("./lab" against the run's "mylog") and was refused
    only after loading model and data, as "source and target share 4 subject(s)"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "crosshar.toml").write_text('name = "mylog"\nrate_hz = 50\nsubject_column = 0\nheader = false\n'
                                                    "[positions.wrist]\nacc_columns = [1, 2, 3]\n[positions.ankle]\n"
                                                    "acc_columns = [4, 5, 6]\n")
    for source, target in ((["mylog@wrist"], "./lab@ankle"), (["./lab@wrist"], str(tmp_path / "lab") + "@ankle"),
                           (["lab"], "mylog@ankle")):
        with pytest.raises(LeakageError, match="another body position of it"):
            guard.check_names(source, target)
