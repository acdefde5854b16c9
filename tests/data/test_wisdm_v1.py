"""WISDM v1.1 loader: records split at every ";", runs of one user and activity, units, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.wisdm_v1 import SCALE, WISDMv1
from crosshar.errors import DataError, MissingDataError
from crosshar.registry import DATASETS
from rawfmt import skips_truncated_gz, truncate_gz, write_tree

T0 = 49_105_962_326_000  # ns, like the real file (the phone's uptime)
STEP = 50_000_000  # 20 Hz


def records(user: int, activity: str, n: int, t0: int = T0, z: float = 0.5) -> list[str]:
    return [f"{user},{activity},{t0 + STEP * i},{0.01 * i!r},{10.0},{z};" for i in range(n)]


def raw_text(extra: list[str] = ()) -> str:
    """User 33 walking 50 records (two of them on one line), then jogging 30 with a zero timestamp and, after
    a 5 s gap, 20 more; user 7 standing 40."""
    walk = records(33, "Walking", 50)
    walk[10:12] = [walk[10] + walk[11]]  # two records on one line
    jog = records(33, "Jogging", 30, T0 + 10**10)
    jog[3] = "33,Jogging,0,0.0,10.0,0.5;"  # a zero timestamp: trusted in file order
    jog2 = records(33, "Jogging", 20, T0 + 10**10 + 30 * STEP + 5 * 10**9)
    stand = records(7, "Standing", 40, T0)
    return "\n".join([*walk, *jog, *jog2, *stand, *extra]) + "\n"


def load(root, on_bad: str = "error"):
    bad = BadRows(on_bad)
    return WISDMv1().load(DataFolder(WISDMv1().locate(root)), bad), bad


@pytest.mark.parametrize("how", ["plain", "gz", "zip"])
def test_records_runs_and_units(tmp_path, how):
    write_tree(tmp_path / "WISDM_ar_v1.1", {"WISDM_ar_v1.1_raw.txt": raw_text()}, how)
    recs, _ = load(tmp_path)
    assert [(r.session, len(r)) for r in recs] == [("33_walking_0", 50), ("33_jogging_0", 30), ("33_jogging_1", 20),
                                                   ("7_standing_0", 40)]
    walk = recs[0]
    assert walk.gyro is None and walk.rate == 20.0 and set(walk.labels) == {"walking"}
    assert (walk.subject, walk.position, walk.dataset) == ("wisdm_v1:33", "pocket", "wisdm_v1")
    np.testing.assert_allclose(walk.acc[:, 0], 0.01 * np.arange(50) * SCALE, rtol=1e-6)  # the line of two records too
    np.testing.assert_allclose(walk.acc[:, 1], 10.0 * SCALE, rtol=1e-6)  # "10 = 1g": 9.81 m/s^2
    assert recs[1].extra["zero_timestamps"] == 1
    assert not WISDMv1().has_gyro(DataFolder(WISDMv1().locate(tmp_path)))


@pytest.mark.parametrize("row, message", [
    ("11,Walking,1867172363000,4.4,4.4,;", "cannot read '' as a number"),
    ("11,Walking,1867172313000,4.4,4.4;", "expected 6 fields"),
    ("11,Skipping,1867172313000,4.4,4.4,1.0;", "unknown activity 'Skipping'"),
    ("11,Walking,1867172313000,nan,4.4,1.0;", "NaN or infinite"),
])
def test_a_bad_record_names_its_line(tmp_path, row, message):
    text = raw_text(extra=[row])
    write_tree(tmp_path / "WISDM_ar_v1.1", {"WISDM_ar_v1.1_raw.txt": text})
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path)
    assert e.value.line == len(text.splitlines())  # the last line, though one line above holds two records
    recs, bad = load(tmp_path, "skip")
    assert len(bad.skipped) == 1 and bad.skipped[0][1] == e.value.line and sum(len(r) for r in recs) == 140


def test_subject_21_trailing_comma_records(tmp_path):
    """The real file ends some records (user 21's) with an empty seventh field, "x,y,z,;": read as x, y, z (public
    loaders of WISDM_ar_v1.1_raw.txt drop that field)."""
    rows = [f"21,Walking,{117003963904000 + STEP * i},0.65,9.51,{0.01 * i!r},;" for i in range(30)]
    write_tree(tmp_path / "WISDM_ar_v1.1", {"WISDM_ar_v1.1_raw.txt": raw_text(extra=rows)})
    recs, _ = load(tmp_path)
    r = recs[-1]
    assert (r.session, len(r)) == ("21_walking_0", 30)
    np.testing.assert_allclose(r.acc[:, 2], 0.01 * np.arange(30) * SCALE, rtol=1e-6)


def test_the_known_broken_record_is_noted_not_an_error(tmp_path):
    """Line "11,Walking,1867172313000,4.4,4.4," of the real file has no z and no ";" (public loaders name it and drop
    it): a note, as a known gap of the distribution, so that the default policy still reads the file."""
    walk = [f"11,Walking,{1867122313000 + STEP * i},4.4,9.0,1.0;" for i in range(20)]
    extra = [*walk, "11,Walking,1867172313000,4.4,4.4,", "11,Walking,1867222270000,5.48,8.43,9.724928;"]
    text = raw_text(extra=extra)
    write_tree(tmp_path / "WISDM_ar_v1.1", {"WISDM_ar_v1.1_raw.txt": text})
    bad = BadRows("error")
    recs = WISDMv1().load(DataFolder(WISDMv1().locate(tmp_path)), bad)
    assert not bad.skipped and len(bad.notes) == 1 and "1867172313000" in bad.notes[0][1]
    assert sum(len(r) for r in recs) == 140 + 21


def test_missing_file_and_registration(tmp_path):
    (tmp_path / "wisdm_v1").mkdir()
    with pytest.raises(MissingDataError, match="WISDM_ar_v1.1_raw.txt"):
        load(tmp_path)
    assert isinstance(DATASETS.create("wisdm_v1"), WISDMv1)


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_a_truncated_gz_is_bad_input_that_skip_lists(tmp_path, cut):
    """A truncated .gz (an interrupted download) was a plain error that --on-bad skip could not skip. Now an error
    naming it by default; in skip mode it is listed (the dataset's one file: no recording is left)."""
    write_tree(tmp_path / "WISDM_ar_v1.1", {"WISDM_ar_v1.1_raw.txt": raw_text()}, "gz")
    gz = truncate_gz(tmp_path / "WISDM_ar_v1.1" / "WISDM_ar_v1.1_raw.txt.gz", cut)
    assert skips_truncated_gz(load, tmp_path, gz) == []
