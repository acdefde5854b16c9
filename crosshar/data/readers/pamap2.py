"""PAMAP2 (Reiss & Stricker 2012): three IMUs on the wrist, chest and ankle, 9 subjects, 100 Hz.

Nine subjects wore three Colibri wireless IMUs (Trivisio): "over the wrist on the dominant arm", "on
the chest" and "on the dominant side's ankle", and followed a protocol of 12 activities; some of them
also performed optional ones. The UCI archive (dataset 231) holds `readme.pdf` and `PAMAP2_Dataset.zip`;
both zips are read in place (`crosshar data download -d pamap2` unpacks the outer one), as are plain
or .gz copies of `PAMAP2_Dataset/Protocol/subject101.dat .. subject109.dat` and
`PAMAP2_Dataset/Optional/subject1NN.dat` (101, 105, 106, 108, 109).

Layout of a .dat file (the dataset's readme, section II.1): space-separated text, one row every
0.01 s, 54 columns: 1 timestamp (s), 2 activityID, 3 heart rate (bpm, ~9 Hz, mostly NaN: unused),
4-20 IMU hand, 21-37 IMU chest, 38-54 IMU ankle. Each IMU block of 17: temperature (°C), acceleration
±16 g (m/s^2), acceleration ±6 g (m/s^2; "not precisely calibrated with the first one" and saturates
above 6 g, so the readme recommends the ±16 g one, used here), gyroscope (rad/s), magnetometer (μT),
4 orientation values ("invalid in this data collection"). Only the timestamp, activityID, ±16 g
acceleration and gyroscope columns are parsed; the others are counted (every line must have 54
fields; tabs, runs of spaces and blanks at line ends are tolerated), not read.

Labels (readme II.2): 1 lying, 2 sitting, 3 standing, 4 walking, 5 running, 6 cycling (biking),
7 Nordic walking, 9 watching TV, 10 computer work, 11 car driving, 12 ascending stairs (upstairs),
13 descending stairs (downstairs), 16 vacuum cleaning, 17 ironing, 18 folding laundry (folding),
19 house cleaning, 20 playing soccer, 24 rope jumping; 0 "other (transient activities)", which the
readme says to discard, is kept as unlabelled "" (windowing drops it). Any other id is bad input.

Missing values: "missing values are indicated with NaN" (wireless data dropping; the readme gives
effective rates of 99.63, 99.89 and 99.65 Hz for hand, chest and ankle). Per IMU, rows where its
acc or gyro holds a NaN are dropped and counted (`extra["nan_rows"]`: those from the recording's
first row, or before it for the first, up to the next recording's; an IMU without a valid row in a
stretch between skipped lines gives no recording there); the rest are cut into spans at time gaps
> MAX_GAP_S and each span is interpolated linearly onto a uniform 100 Hz grid
(crosshar.data.timegrid); a grid sample takes the label of the row nearest in time. So a recording
is one IMU (one body position) over one span: Recording.acc, .gyro (n, 3), .labels (n,), position
"wrist" (the hand IMU), "chest" or "ankle", session "<subject>_<protocol|optional>_<position>_<k>".
The same subject in Protocol and Optional is one subject ("pamap2:101").

Bad input (through `bad` with file and line): a line without 54 fields, a non-number in a parsed
column, an unknown activityID, a timestamp that is not a number, a value beyond crosshar.limits. A
skipped line (skip mode) or a blank line ends the recordings there, and so does a timestamp that is
not after the previous row's: the readme says parts of an aborted recording were joined, so time
stepping back (or standing still) is read as the start of another piece, not as bad input.

Units and signs: m/s^2 with gravity and rad/s already. The first row of Protocol/subject101.dat
(activityID 0, gyro below 0.1 rad/s: still) reads a ±16 g acc of (0.24, 9.80, -1.69) on the chest,
(9.66, -1.66, -0.10) on the ankle and (2.37, 8.60, 3.51) on the hand: one axis near +9.8, as for a
specific-force sensor whose chest y and ankle x axes point up (the Android convention, used as is).
Not confirmed: the Colibri's axis directions as worn (so +9.8 on an up axis is inferred, not
documented), whether the timestamps of the real files ever step back (handled either way), and the
files' exact whitespace.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording
from crosshar.data.rows import Col, Rows, blank_separated_rows
from crosshar.data.timegrid import NS, grid, interpolate, nearest, spans
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

ACTIVITIES: dict[int, str] = {
    0: "", 1: "lying", 2: "sitting", 3: "standing", 4: "walking", 5: "running", 6: "biking",
    7: "nordic_walking", 9: "watching_tv", 10: "computer_work", 11: "car_driving", 12: "upstairs",
    13: "downstairs", 16: "vacuum_cleaning", 17: "ironing", 18: "folding", 19: "house_cleaning",
    20: "playing_soccer", 24: "rope_jumping",
}
# the readme's IMU name: (body position, 0-based first column of its block of 17)
IMUS: dict[str, tuple[str, int]] = {"hand": ("wrist", 3), "chest": ("chest", 20), "ankle": ("ankle", 37)}
NCOLS = 54
RATE = 100.0
# Rows come every 0.01 s, so 0.1 s bridges up to 9 missing rows: the short wireless drop-outs, which
# the readme calls very rare, are interpolated over, while a longer loss (a lost connection or a
# crash, the readme's other cause of missing data) starts a new recording instead of a straight line.
# 0.1 s is two samples at the canonical 20 Hz: a bridge is never longer than that.
MAX_GAP_S = 0.1
DEVICE = "Trivisio Colibri wireless IMU"
CHANNELS = ("acc16_x", "acc16_y", "acc16_z", "gyro_x", "gyro_y", "gyro_z")
_OFFSETS = (1, 2, 3, 7, 8, 9)  # of CHANNELS within an IMU block: the ±16 g accelerometer, the gyroscope
_COLS = (Col("timestamp", 0), Col("activityID", 1, "i"),
         *(Col(f"{imu}_{c}", start + o) for imu, (_, start) in IMUS.items() for c, o in zip(CHANNELS, _OFFSETS)))
_LIMIT = np.array([limit_of(c) for _ in IMUS for c in CHANNELS])  # (18,)
_UNITS = [" rad/s" if "gyro" in c.name else " m/s^2" for c in _COLS[2:]]
_LABELS = np.array([ACTIVITIES.get(i, "") for i in range(max(ACTIVITIES) + 1)])  # activityID -> canonical
_FILE = re.compile(r"(?:^|/)(Protocol|Optional)/subject(\d+)\.dat$")


@DATASETS.register("pamap2")
class PAMAP2(Dataset):
    """PAMAP2 Physical Activity Monitoring, one recording per IMU and span (see module docstring)."""

    name = "pamap2"
    title = "PAMAP2 Physical Activity Monitoring (2012), wrist / chest / ankle IMUs"
    folders = ("pamap2", "PAMAP2_Dataset", "PAMAP2")
    layouts = (
        "PAMAP2_Dataset/Protocol/subject101.dat .. subject109.dat and PAMAP2_Dataset/Optional/subject1NN.dat "
        "(54 space-separated columns per line); plain, .gz, inside PAMAP2_Dataset.zip or inside the UCI zip "
        "that holds it"
    )
    # the UCI archive: readme.pdf + PAMAP2_Dataset.zip; size and sha256 unknown
    url = "https://archive.ics.uci.edu/static/public/231/pamap2+physical+activity+monitoring.zip"
    dropped = {"nan_rows": "rows of an IMU with a NaN in its acc or gyro (wireless drop-outs)"}
    dropped_per = "recording"  # each recording counts its own rows
    citation = (
        "A. Reiss, D. Stricker. Introducing a New Benchmarked Dataset for Activity Monitoring. 16th IEEE "
        "International Symposium on Wearable Computers (ISWC), 2012."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        """One entry per (session, subject), Protocol before Optional; of two copies the shorter path."""
        best: dict[tuple[int, str], Entry] = {}
        for e in sorted(folder.glob("*subject*.dat"), key=lambda e: (len(e.logical), e.logical)):
            if m := _FILE.search(e.logical):
                best.setdefault((int(m.group(2)), m.group(1)), e)
        return [best[k] for k in sorted(best, key=lambda k: (k[0], k[1] != "Protocol"))]

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        if not (files := self.files(folder)):
            raise self.no_files(folder, "PAMAP2")
        recs: list[Recording] = []
        for e in files:
            kind, sid = _FILE.search(e.logical).groups()  # type: ignore[union-attr]
            rows = _read(folder, e, bad)
            if rows is not None:
                recs += self._recordings(rows, int(sid), kind.lower())
        return recs

    def _recordings(self, rows: Rows, sid: int, kind: str) -> list[Recording]:
        """Per IMU: NaN rows out, spans at gaps > MAX_GAP_S (and at skipped lines), each on a 100 Hz grid."""
        t = np.round(rows["timestamp"] * NS).astype(np.int64)
        labels = _LABELS[rows["activityID"]]
        # recordings end at a skipped line and where time does not go forward (pieces joined in one file)
        cut = (np.diff(rows.lines) > 1) | (np.diff(t) <= 0)
        cuts = [0, *(np.flatnonzero(cut) + 1).tolist(), len(rows)]
        recs = []
        for b, (position, _) in enumerate(IMUS.values()):
            x = rows["x"][:, 6 * b: 6 * b + 6]  # (n, 6) acc, gyro
            k = 0
            for s, e in zip(cuts[:-1], cuts[1:]):
                ts, xs = t[s:e], x[s:e]
                nan = np.isnan(xs).any(axis=1)
                tv, xv = ts[~nan], xs[~nan]
                sp = spans(tv, MAX_GAP_S)  # (p, 2) first and last ns
                owner = np.searchsorted(sp[:, 0], ts[nan], side="right") - 1  # the recording a NaN row counts in
                n_nan = np.bincount(np.maximum(owner, 0), minlength=len(sp))
                for j, (first, last) in enumerate(sp):
                    g = grid(int(first), int(last), RATE)
                    v = interpolate(tv, xv, g)  # (m, 6)
                    recs.append(Recording(
                        acc=v[:, :3], gyro=v[:, 3:], rate=RATE, labels=labels[s:e][nearest(ts, g)],
                        subject=f"pamap2:{sid}", dataset=self.name, source=rows.source, device=DEVICE,
                        position=position, session=f"{sid}_{kind}_{position}_{k}",
                        extra={"nan_rows": int(n_nan[j])},
                    ).validate())
                    k += 1
        return recs


def _read(folder: DataFolder, entry: Entry, bad: BadRows) -> Rows | None:
    """The rows of one .dat file that pass every check, with their line numbers; None if none."""
    rows = blank_separated_rows(folder, entry, _COLS, bad, " ", NCOLS)  # None: a truncated .gz, reported
    if rows is None:
        return None
    rows.cols = {"timestamp": rows["timestamp"], "activityID": rows["activityID"],
                 "x": np.stack([rows[c.name] for c in _COLS[2:]], axis=1)}  # (n, 18): 6 per IMU, NaN = missing
    act = rows["activityID"]
    rows = rows.reject(~np.isin(act, list(ACTIVITIES)), lambda i: f"unknown activityID {act[i]}; PAMAP2's are "
                       f"{', '.join(map(str, ACTIVITIES))}", bad)
    rows = rows.reject_beyond(rows["x"], _LIMIT, _COLS[2:], _UNITS, bad, nan_ok=True)  # NaN: a missing sample
    t = rows["timestamp"]
    rows = rows.reject(~np.isfinite(t), lambda i: f"timestamp {t[i]} is not a finite number of seconds", bad)
    if len(rows) == 0:
        bad("no readable data rows", rows.source)
        return None
    return rows
