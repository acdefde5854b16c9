"""MHEALTH (Banos et al. 2014): Shimmer2 sensors on the chest, right wrist and left ankle, 10 subjects, 50 Hz.

Ten volunteers wore three Shimmer2 units, "placed on the subject's chest, right wrist and left ankle" (the
dataset's README.txt, section 1; its column list calls the wrist unit "right-lower-arm"), and performed 12
activities out of the lab, each session video-recorded. The UCI archive (dataset 319, `mhealth+dataset.zip`;
the older `MHEALTHDATASET.zip` holds the same tree) is read in place, as are plain or .gz copies of
`MHEALTHDATASET/mHealth_subject1.log .. mHealth_subject10.log` (one file per subject).

Layout of a .log file (README section 3): one row per sample at 50 Hz ("all sensing modalities are recorded
at a sampling rate of 50 Hz"), no timestamp, 24 tab-separated columns (public loaders read them with
`sep='\\t'`, `read.table` or `np.loadtxt`): 1-3 chest acc x y z, 4-5 ECG leads 1 and 2, 6-8 left-ankle acc,
9-11 left-ankle gyro, 12-14 left-ankle magnetometer, 15-17 right-lower-arm acc, 18-20 right-lower-arm
gyro, 21-23 right-lower-arm magnetometer, 24 label. The three accelerometers, the two gyroscopes and the label
are parsed; the other columns (ECG, magnetometers) are counted (every line must have 24 fields; runs of spaces or tabs and blanks at
line ends are tolerated), not read. A file becomes one Recording per position: position "chest", "ankle" or "wrist",
subject "mhealth:<n>", session "<n>_<position>_<k>", the samples in file order at 50 Hz.

The chest: its unit has an accelerometer and ECG but no gyroscope (the README lists no chest gyro column), so its
recordings (position "chest", columns 1-3) hold acc alone (`Dataset.acc_only_positions`): read into acc-only windows
(`--channels acc`; `crosshar cross -td mhealth@chest` trains the source model on acc alone by itself, as for HHAR),
left out of 6-channel ones and counted there (prepare's kept/dropped line), never given a made-up gyroscope.
`mhealth@chest` with 6 channels is a one-line error saying so.

Labels (README section 2, "0 for the null class"): 1 standing still -> standing, 2 sitting and relaxing ->
sitting, 3 lying down -> lying, 4 walking, 5 climbing stairs -> "stairs" (up and down are one class, the
vocabulary's parent node, as WISDM's "C"), 9 cycling -> biking, 10 jogging, 11 running, 12 jump front &
back -> jumping. 0 (no activity; the stretches between the exercises) is unlabelled "" (windowing drops
it, as PAMAP2's 0). 6 waist bends forward, 7 frontal elevation of arms and 8 knees bending (crouching) have
no node in crosshar.data.labels.VOCAB: they are read as unlabelled too, and counted
(`extra["unnamed_rows"]`, reported by `crosshar data prepare` as left out by the reader). Any other label
is bad input.

Units. The README: "Units: Acceleration (m/s^2), gyroscope (deg/s), magnetic field (local), ecg (mV)" (its
copies in the UCI archive, `MHEALTHDATASET/README.txt`, and in public repositories; the UCI page repeats
the column list). These are word for word the calibrated units of Shimmer's own driver (CHANNEL_UNITS in
ShimmerEngineering's Java/Android API: "m/(s^2)", "deg/s", "local_flux", "mV"), which is how the data were
streamed (mHealthDroid on Android): so the gyroscope is read as deg/s and converted to rad/s
(np.deg2rad); acc is m/s^2 with gravity already. The first row of mHealth_subject1.log (as quoted by
public parsers' tests; label 0, the subject at rest) fits: ankle gyro (0.104, -0.841, -0.688), wrist gyro
(-0.449, -1.010, 0.034), about 1 deg/s of bias, where rad/s would mean 50-60 deg/s of turning while
still. Not confirmed here (no copy of the data on this machine): the deg/s reading over the moving
activities; the real-data test checks it by the rigid-body law d(acc)/dt = -w x acc (slope +1 in rad/s,
57 if the file were rad/s already), as `crosshar data prepare`'s rotation check does.

Signs: that first row reads acc (2.18, -9.70, 0.63) at the ankle and (-8.65, -4.58, 0.19) at the wrist
(and (-9.82, 0.01, 0.30) on the chest): gravity on one axis each, kept as shipped, i.e. assumed to be
specific force (crosshar's Android convention, +9.8 on the axis pointing up) with the ankle's -y and the
wrist's -x pointing up as worn. The Shimmer2 axis directions as strapped on are not documented in the
README, so this is inferred, not confirmed (a negated accelerometer passes the gravity and handedness checks
alike).

Bad input (through `bad`, with file and line): a line without 24 fields, a non-number in a parsed column,
a label that is not a whole number 0..12, a NaN, infinite or out-of-range value (crosshar.limits, checked in
m/s^2 and deg/s). A skipped line (skip mode) or a blank line ends the file's recordings there: the next rows
start the next piece ("_1", "_2"...), so no recording spans a hole.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording
from crosshar.data.rows import Col, Rows, blank_separated_rows
from crosshar.errors import DataError
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

ACTIVITIES: dict[int, str] = {
    0: "", 1: "standing", 2: "sitting", 3: "lying", 4: "walking", 5: "stairs", 6: "", 7: "", 8: "",
    9: "biking", 10: "jogging", 11: "running", 12: "jumping",
}
UNNAMED = (6, 7, 8)  # waist bends forward, frontal elevation of arms, knees bending: no canonical name
# the README's sensor: (body position, 0-based column of its acc x, of its gyro x or None: the chest has none)
SENSORS: dict[str, tuple[str, int, int | None]] = {
    "chest": ("chest", 0, None), "left-ankle": ("ankle", 5, 8), "right-lower-arm": ("wrist", 14, 17)}
LABEL_COLUMN = 23
NCOLS = 24
RATE = 50.0
DEVICE = "Shimmer2"
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
_COLS = (Col("label", LABEL_COLUMN),  # a number: checked to be a whole one below ("0" and "0.0" alike)
         *(Col(f"{pos}_{c}", (acc if c.startswith("acc") else gyro) + "xyz".index(c[-1]))
           for pos, acc, gyro in SENSORS.values() for c in CHANNELS if gyro is not None or c.startswith("acc")))
_NAMES = [c.name for c in _COLS[1:]]  # the parsed (n, 15) block's columns, in file order


def _block(position: str, gyro: int | None) -> tuple[slice, slice | None]:
    """A position's acc columns and gyro columns (None: the chest) in the parsed block."""
    i = _NAMES.index(f"{position}_acc_x")
    return slice(i, i + 3), None if gyro is None else slice(i + 3, i + 6)


_SLICES = {pos: _block(pos, gyro) for pos, _, gyro in SENSORS.values()}  # body position -> its columns there
# (15,) limits in the file's units: acc in m/s^2, gyro in deg/s (rounded: degrees(GYRO_LIMIT) is 3999.9999999999995,
# which refused a reading of exactly 4000 deg/s that PAMAP2's reader, in rad/s, accepts)
_LIMIT = np.array([limit_of(c) if c.startswith("acc") else round(float(np.degrees(limit_of(c))), 6)
                   for c in (n.split("_", 1)[1] for n in _NAMES)])
_UNITS = [" deg/s" if "gyro" in n else " m/s^2" for n in _NAMES]
_LABELS = np.array([ACTIVITIES[i] for i in range(len(ACTIVITIES))])  # label -> canonical
_FILE = re.compile(r"(?:^|/)mHealth_subject(\d+)\.log$")


@DATASETS.register("mhealth")
class MHEALTH(Dataset):
    """MHEALTH (Mobile HEALTH), one recording per body position (ankle, wrist) and file piece; see the module
    docstring for the layout, the chest, labels and units."""

    name = "mhealth"
    title = "MHEALTH (2014), chest / ankle / wrist Shimmer2 (the chest: acc only)"
    folders = ("mhealth", "MHEALTHDATASET", "MHEALTH")
    layouts = (
        "MHEALTHDATASET/mHealth_subject1.log .. mHealth_subject10.log (24 tab-separated columns per line); "
        "plain, .gz or inside the UCI zip (mhealth+dataset.zip or MHEALTHDATASET.zip)"
    )
    url = "https://archive.ics.uci.edu/static/public/319/mhealth+dataset.zip"  # size and sha256 unknown
    dropped = {"unnamed_rows": "rows of activities 6-8 (waist bends forward, frontal elevation of arms, knees "
                               "bending: no canonical activity), read as unlabelled"}
    # the positions of a file piece share its extra (first line, count): the rows are counted once, not per position
    dropped_per = "group"
    acc_only_positions = ("chest",)
    citation = (
        "O. Banos, R. Garcia, J. A. Holgado-Terriza, M. Damas, H. Pomares, I. Rojas, A. Saez, C. Villalonga. "
        "mHealthDroid: a novel framework for agile development of mobile health applications. 6th International "
        "Work-conference on Ambient Assisted Living and Active Ageing (IWAAL), 2014."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        """One entry per subject, by subject number; of two copies of one file (unpacked and zipped: the same file
        name) the shorter path. Two files of other names for one subject (mHealth_subject7.log and
        mHealth_subject007.log) are bad input, never one of them dropped unsaid."""
        best: dict[int, Entry] = {}
        for e in sorted(folder.glob("*mHealth_subject*.log"), key=lambda e: (len(e.logical), e.logical)):
            if m := _FILE.search(e.logical):
                first = best.setdefault(int(m.group(1)), e)
                if first is not e and _name(first) != _name(e):
                    raise DataError(f"a second file for MHEALTH subject {int(m.group(1))}, beside {first.display()}; "
                                    "keep one", e.display())
        return [best[k] for k in sorted(best)]

    def has_gyro(self, folder: DataFolder) -> bool:
        return True  # at the ankle and wrist (the chest, acc only: acc_only_positions)

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        if not (files := self.files(folder)):
            raise self.no_files(folder, "MHEALTH")
        recs: list[Recording] = []
        for e in files:
            rows = _read(folder, e, bad)
            if rows is not None:
                recs += self._recordings(rows, int(_FILE.search(e.logical).group(1)))  # type: ignore[union-attr]
        return recs

    def _recordings(self, rows: Rows, sid: int) -> list[Recording]:
        """Per position and piece (the rows between skipped or blank lines): acc in m/s^2, gyro deg/s -> rad/s (the
        chest: acc alone)."""
        cuts = [0, *(np.flatnonzero(np.diff(rows.lines) > 1) + 1).tolist(), len(rows)]
        label = rows["label"]
        recs = []
        for position, (acc, gyro) in _SLICES.items():
            for k, (s, e) in enumerate(zip(cuts[:-1], cuts[1:])):
                recs.append(Recording(
                    acc=rows["x"][s:e, acc], gyro=None if gyro is None else np.deg2rad(rows["x"][s:e, gyro]),
                    rate=RATE, labels=_LABELS[label[s:e]],
                    subject=f"mhealth:{sid}", dataset=self.name, source=rows.source, device=DEVICE,
                    position=position, session=f"{sid}_{position}_{k}",
                    extra={"first_line": int(rows.lines[s]), "unnamed_rows": int(np.isin(label[s:e], UNNAMED).sum())},
                ).validate())
        return recs


def _name(e: Entry) -> str:
    """The file name of an entry (without folders), whether plain, gzipped or in a zip."""
    return e.logical.rsplit("/", 1)[-1]


def _read(folder: DataFolder, entry: Entry, bad: BadRows) -> Rows | None:
    """The rows of one .log file that pass every check, with their line numbers; None if none."""
    rows = blank_separated_rows(folder, entry, _COLS, bad, "\t", NCOLS)  # None: a truncated .gz, reported
    if rows is None:
        return None
    rows.cols = {"label": rows["label"], "x": np.stack([rows[c.name] for c in _COLS[1:]], axis=1)}  # (n, 15)
    lab = rows["label"]
    known = np.isin(lab, list(ACTIVITIES))  # whole numbers 0..12 (NaN is not)
    rows = rows.reject(~known, lambda i: f"column {LABEL_COLUMN + 1} (label): unknown label {lab[i]:.12g}; MHEALTH's "
                       f"are the whole numbers 0 (no activity) .. {max(ACTIVITIES)}", bad)
    rows.cols["label"] = rows["label"].astype(np.int64)
    rows = rows.reject_beyond(rows["x"], _LIMIT, _COLS[1:], _UNITS, bad)
    if len(rows) == 0:
        bad("no readable data rows", rows.source)
        return None
    return rows
