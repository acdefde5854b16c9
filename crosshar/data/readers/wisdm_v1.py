"""WISDM v1.1 (Kwapisz, Weiss, Moore 2010): one Android phone's accelerometer, front trouser pocket, 20 Hz.

Thirty-six users walked, jogged, sat, stood and went up and down stairs with the phone in the front
pocket of their trousers. The public archive (`WISDM_ar_latest.tar.gz`) is a tar.gz, which is not read
in place: `crosshar data download -d wisdm_v1` unpacks it, or unpack it yourself so that
`WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt` lies under the data folder (the file itself may be gzipped or inside
a zip).

Layout of `WISDM_ar_v1.1_raw.txt`: records `user,activity,timestamp,x,y,z;` (user 1..36; activity
Walking, Jogging, Upstairs, Downstairs, Sitting, Standing; timestamp "generally the phone's uptime in
nanoseconds"; x, y, z acceleration, gravity included, Android convention). Usually one record a line,
but a line may hold several records, each ended by ";": records are split at every ";" and each keeps
its line number for messages. Two quirks of the published file, named by public loaders of it: some
records (user 21's) end "x,y,z,;" with an empty seventh field, which is dropped; and one line,
"11,Walking,1867172313000,4.4,4.4," (no z, no ";"), is left out with a note (`KNOWN_BROKEN`), not an
error. Any other record that cannot be read (a missing value, an unknown activity) is reported through
`bad` with its line.

Units: the dataset's readme says "a value of 10 = 1g = 9.81 m/s^2", so values are multiplied by
g / 10 into m/s^2 (`SCALE`; the physical checks of `crosshar data prepare` report the median |acc| at
rest either way).

Time: the records are trusted in file order at the nominal 20 Hz (the timestamps have zeros and jumps).
A recording is a run of consecutive records of one user and one activity; it also ends where two
consecutive nonzero timestamps step back or jump by more than MAX_GAP_S, and where a skipped record
(skip mode) left a hole. Accelerometer only: no gyroscope (`has_gyro` is False), so the windows are
acc-only (`channels = "acc"`), and `crosshar cross` trains a matching acc-only model.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.data.rows import Col, Rows, TextFile
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

LABELS = ("walking", "jogging", "upstairs", "downstairs", "sitting", "standing")  # the file's, lower-cased: canonical
RATE = 20.0
SCALE = 9.80665 / 10.0  # "a value of 10 = 1g"
MAX_GAP_S = 1.0
DEVICE = "Android phone"
POSITION = "pocket"
_FILE = re.compile(r"(?:^|/)WISDM_ar_v1\.1_raw\.txt$")
# records of the published file that cannot be read, named by public loaders of it: noted and left out, not errors
KNOWN_BROKEN = frozenset({b"11,Walking,1867172313000,4.4,4.4,"})
_COLS = (Col("user", 0, "i"), Col("activity", 1, "s", 16), Col("t", 2, "i"), Col("x", 3), Col("y", 4), Col("z", 5))


@DATASETS.register("wisdm_v1")
class WISDMv1(Dataset):
    """WISDM v1.1 raw accelerometer data (see module docstring)."""

    name = "wisdm_v1"
    title = "WISDM v1.1 (2010), smartphone accelerometer"
    folders = ("wisdm_v1", "WISDM_ar_v1.1", "wisdm_ar_v1.1", "WISDM_ar_latest")
    layouts = (
        "WISDM_ar_v1.1_raw.txt (records 'user,activity,timestamp,x,y,z;'; plain, .gz or inside a zip). The "
        "official archive WISDM_ar_latest.tar.gz is not read in place: `crosshar data download -d wisdm_v1` "
        "unpacks it, or extract it yourself"
    )
    url = "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz"  # size, sha256 unknown
    citation = (
        "J. R. Kwapisz, G. M. Weiss, S. A. Moore. Activity Recognition using Cell Phone Accelerometers. "
        "SensorKDD (KDD-10 workshop), 2010."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        found = [e for e in folder.glob("*WISDM_ar_v1.1_raw.txt") if _FILE.search(e.logical)]
        return sorted(found, key=lambda e: (len(e.logical), e.logical))[:1]  # the same file twice: the first

    def has_gyro(self, folder: DataFolder) -> bool:
        return False

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        if not (files := self.files(folder)):
            raise self.no_files(folder, "WISDM v1.1")
        rows = _read(folder, files[0], bad)
        return [] if rows is None else self._recordings(rows)

    def _recordings(self, rows: Rows) -> list[Recording]:
        user, act, t = rows["user"], rows["activity"], rows["t"]
        new = np.ones(len(rows), bool)
        if len(rows) > 1:
            both = (t[1:] > 0) & (t[:-1] > 0)
            dt = (t[1:] - t[:-1]).astype(np.float64) / 1e9
            new[1:] = ((user[1:] != user[:-1]) | (act[1:] != act[:-1]) | (np.diff(rows.lines) > 1)
                       | (both & ((dt < 0) | (dt > MAX_GAP_S))))
        starts = np.flatnonzero(new).tolist() + [len(rows)]
        xyz = np.stack([rows["x"], rows["y"], rows["z"]], axis=1)  # m/s^2 (_read scaled them)
        recs, count = [], {}
        for s, e in zip(starts[:-1], starts[1:]):
            u, a = int(user[s]), str(act[s])
            k = count[(u, a)] = count.get((u, a), -1) + 1
            recs.append(Recording(
                acc=xyz[s:e], gyro=None, rate=RATE, labels=np.full(e - s, a),
                subject=f"wisdm_v1:{u}", dataset=self.name, source=rows.source, device=DEVICE, position=POSITION,
                session=f"{u}_{a}_{k}", extra={"zero_timestamps": int((t[s:e] == 0).sum())},
            ).validate())
        return recs


def _read(folder: DataFolder, entry: Entry, bad: BadRows) -> Rows | None:
    """The file's records, one per ";" (a line may hold several), with their line numbers; None if none."""
    tf = TextFile.read(folder, entry, bad)  # None: a truncated .gz, reported (skipped and listed in skip mode)
    if tf is None:
        return None
    pieces, origin = [], []
    for i, line in enumerate(tf.raw.split(b"\n"), 1):
        for rec in line.split(b";"):
            rec = rec.strip()
            if rec.endswith(b",") and rec.count(b",") == 6:  # "x,y,z,;" (user 21): an empty seventh field
                rec = rec[:-1]
            if rec in KNOWN_BROKEN:
                bad.note(f"line {i}: {rec.decode()!r} has no z value (a known defect of the file): left out", tf.source)
            elif rec:
                pieces.append(rec)
                origin.append(i)
    if not pieces:
        bad("no records", tf.source)
        return None
    origin_of = np.asarray(origin, dtype=np.int64)
    tf.raw = b"\n".join(pieces) + b"\n"  # one record a line; origin_of maps its line numbers back

    def bad_here(message: str, path=None, line: int | None = None) -> None:
        bad(message, path, int(origin_of[line - 1]) if line else None)

    rows = tf.rows(_COLS, bad_here, ncols=6)
    rows = Rows(rows.cols, origin_of[rows.lines - 1], rows.source, dict(rows.lookup))
    act = np.char.lower(np.char.strip(rows["activity"]))
    known = np.isin(act, LABELS)
    rows = rows.reject(~known, lambda i: f"unknown activity {str(rows['activity'][i])!r}; expected one of "
                       "Walking, Jogging, Upstairs, Downstairs, Sitting, Standing", bad)
    rows.cols["activity"] = act[known].astype(str)
    for c in "xyz":
        rows.cols[c] = rows[c] * SCALE
    xyz = np.stack([rows["x"], rows["y"], rows["z"]], axis=1)
    limit = limit_of("acc")
    rows = rows.reject(out_of_range(xyz, limit), lambda i: range_problem(xyz[i], limit), bad)
    if len(rows) == 0:
        bad("no readable records", tf.source)
        return None
    return rows
