"""WISDM 2019: smartphone (pocket) and smartwatch (wrist), 51 subjects, 18 activities, 20 Hz.

Layout (Weiss 2019, UCI id 507): `raw/{phone,watch}/{accel,gyro}/data_<id>_{accel,gyro}_{phone,watch}.txt`,
one sample per line, `subject,activity,timestamp_ns,x,y,z;` (note the trailing ";"). Accel in
m/s^2 including gravity, gyro in rad/s, nominally 20 Hz; each subject performed each activity for
about 3 minutes, as one contiguous run of lines.

Accelerometer and gyroscope are separate, unaligned streams (gyro usually starts ~0.15 s earlier),
so for every (subject, device, activity) both streams are cut at gaps > 1 s, their spans
intersected, and both interpolated linearly onto one 20 Hz grid over each common span
(crosshar.data.timegrid). The timestamps tick every 50.354 ms on most phones (19.86 Hz), so the
20 Hz grid is a true resampling, not a relabelling. An activity for which one sensor has no
overlapping rows at all is reported through `bad` ("no gyroscope rows overlap accelerometer rows
for subject S activity A"): on the 21 subjects checked (all phone files of 1600-1640 that we
have) every one of the 376 (subject, activity) runs has both sensors over >= 179.5 s, so a
missing stream means a damaged file, not a property of the dataset.

Units and sign: the phones (Nexus 5, Nexus 5X, Galaxy S6) are Android devices, whose
accelerometer reads +9.8 m/s^2 along the axis pointing up at rest: crosshar's convention, kept as
is. Checked on the real phone data: standing (E) has a mean |acc| of 9.82 m/s^2 (per subject
9.65-10.28). The mean vector is e.g. (-2.15, +9.51, +0.82) for 1600 but (+1.25, -9.59, -0.84) for
1632: the phone sits top-up in some pockets and top-down in others, so the vector averaged over
subjects means nothing. After alignment the gravity vector turns exactly as the gyroscope says
(d acc/dt = -omega x acc with slope +1.00 on the sitting runs; tests/data/test_wisdm.py), so acc
and gyro share one right-handed frame and one clock. (That the sign is Android's and not its
negative cannot be read off the data: a negated accelerometer is what a mirrored motion would
produce. It rests on the devices.)

Labels (activity_key.txt): A walking, B jogging, C stairs (up and down are not distinguished:
the vocabulary's parent node "stairs"), D sitting, E standing, F typing, G brushing_teeth,
H eating_soup, I eating_chips, J eating_pasta, K drinking, L eating_sandwich, M kicking,
O catching, P dribbling, Q writing, R clapping, S folding. There is no N.

Registered twice: "wisdm" reads the phone files, "wisdm_watch" the watch files (device "watch",
position "wrist"); the two are different sensors on different body parts and are kept apart.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.data.rows import Col, Rows, TextFile
from crosshar.data.timegrid import NS, PAIRING_DROPPED, grid, interpolate, intersect, sort_unique, spans
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

ACTIVITIES: dict[str, str] = {
    "A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing",
    "F": "typing", "G": "brushing_teeth", "H": "eating_soup", "I": "eating_chips",
    "J": "eating_pasta", "K": "drinking", "L": "eating_sandwich", "M": "kicking",
    "O": "catching", "P": "dribbling", "Q": "writing", "R": "clapping", "S": "folding",
}

RATE = 20.0  # Hz, the dataset's nominal rate and the grid both sensors are interpolated onto
MAX_GAP_S = 1.0  # a longer gap between two samples ends a span
PLAUSIBLE_RATE = (5.0, 80.0)  # Hz; outside this the timestamps are not nanoseconds at ~20 Hz
POSITIONS = {"phone": "pocket", "watch": "wrist"}

_FILE = re.compile(r"(?:^|/)raw/(phone|watch)/(accel|gyro)/data_(\d+)_(accel|gyro)_(phone|watch)\.txt$")
_COLS = (Col("subject", 0, "i"), Col("activity", 1, "s", 8), Col("t", 2, "i"),
         Col("x", 3), Col("y", 4), Col("z", 5))


@DATASETS.register("wisdm")
class WISDM(Dataset):
    """WISDM 2019 phone data (see module docstring: layout, alignment, units, labels)."""

    name = "wisdm"
    title = "WISDM 2019 smartphone"
    folders = ("wisdm_2019", "wisdm-dataset", "wisdm")
    layouts = (
        "raw/phone/accel/data_<id>_accel_phone.txt and raw/phone/gyro/data_<id>_gyro_phone.txt "
        "(lines 'subject,activity,timestamp_ns,x,y,z;'), plain, .gz or inside the UCI zip"
    )
    url = ("https://archive.ics.uci.edu/static/public/507/"
           "wisdm+smartphone+and+smartwatch+activity+and+biometrics+dataset.zip")
    sha256 = ""
    size = 0
    dropped = PAIRING_DROPPED
    citation = (
        "G. M. Weiss, K. Yoneda, T. Hayajneh. Smartphone and Smartwatch-Based Biometrics Using "
        "Activities of Daily Living. IEEE Access 7:133190-133202, 2019. (UCI Machine Learning "
        "Repository, WISDM Smartphone and Smartwatch Activity and Biometrics Dataset.)"
    )
    device = "phone"

    def _pairs(self, folder: DataFolder) -> dict[str, dict[str, Entry]]:
        """{subject id: {"accel": entry, "gyro": entry}} for this device."""
        out: dict[str, dict[str, Entry]] = {}
        for e in folder.glob(f"*raw/{self.device}/*/data_*_{self.device}.txt"):
            m = _FILE.search(e.logical)
            if m is None or m.group(2) != m.group(4) or m.group(1) != m.group(5):
                continue
            sensor, sid = m.group(2), m.group(3)
            if sensor in out.get(sid, {}):  # the same file twice (e.g. unpacked and zipped): first wins
                continue
            out.setdefault(sid, {})[sensor] = e
        return dict(sorted(out.items()))

    def files(self, folder: DataFolder) -> list[Entry]:
        return sorted((e for p in self._pairs(folder).values() for e in p.values()), key=lambda e: e.logical)

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        pairs = self._pairs(folder)
        if not pairs:
            raise self.no_files(folder, f"WISDM {self.device}")
        recs: list[Recording] = []
        for sid, files in pairs.items():
            missing = {"accel", "gyro"} - set(files)
            if missing:
                have = next(iter(files.values()))
                bad(f"no {missing.pop()} file data_{sid}_*_{self.device}.txt for subject {sid}", have.display())
                continue
            acc = _read(folder, files["accel"], int(sid), bad)
            gyro = _read(folder, files["gyro"], int(sid), bad)
            if acc is None or gyro is None:
                continue
            recs += self._align(acc, gyro, sid, bad)
        return recs

    def _align(self, acc: Rows, gyro: Rows, sid: str, bad: BadRows) -> list[Recording]:
        """One Recording per (activity, common span of both sensors), both at 20 Hz."""
        recs = []
        letters = sorted(set(acc["activity"].tolist()) | set(gyro["activity"].tolist()))
        for letter in letters:
            a = _stream(acc, letter)
            g = _stream(gyro, letter)
            if a is None or g is None:
                if g is None:
                    have, mine, other = acc, "accelerometer", "gyroscope"
                else:
                    have, mine, other = gyro, "gyroscope", "accelerometer"
                first = int(have.lines[np.flatnonzero(have["activity"] == letter)[0]])
                bad(f"no {other} rows overlap {mine} rows for subject {sid} activity {letter} "
                    f"({ACTIVITIES[letter]})", have.source, first)
                continue
            sa, sg = spans(a[0], MAX_GAP_S), spans(g[0], MAX_GAP_S)
            common = intersect(sa, sg)
            if len(common) == 0:
                first = int(acc.lines[np.flatnonzero(acc["activity"] == letter)[0]])
                bad(f"no gyroscope rows overlap accelerometer rows for subject {sid} activity "
                    f"{letter} ({ACTIVITIES[letter]})", acc.source, first)
                continue
            covered = float((common[:, 1] - common[:, 0]).sum()) / NS
            extra = {
                "activity": letter, "acc_rows": len(a[0]), "gyro_rows": len(g[0]),
                "duplicate_timestamps": a[2] + g[2],
                "acc_s_without_gyro": round(float((sa[:, 1] - sa[:, 0]).sum()) / NS - covered, 3),
                "gyro_s_without_acc": round(float((sg[:, 1] - sg[:, 0]).sum()) / NS - covered, 3),
            }
            for k, (start, end) in enumerate(common):
                t = grid(int(start), int(end), RATE)
                if len(t) < 2:
                    continue
                recs.append(Recording(
                    acc=interpolate(a[0], a[1], t),
                    gyro=interpolate(g[0], g[1], t),
                    rate=RATE,
                    labels=np.full(len(t), ACTIVITIES[letter]),
                    subject=f"wisdm:{sid}",
                    dataset=self.name,
                    source=f"{acc.source} + {gyro.source}",
                    device=self.device,
                    position=POSITIONS[self.device],
                    session=f"{sid}_{self.device}_{letter}_{k}",
                    extra=dict(extra),
                ).validate())
        return recs


@DATASETS.register("wisdm_watch")
class WISDMWatch(WISDM):
    """WISDM 2019 smartwatch data (LG G Watch on the wrist); same layout as the phone files."""

    name = "wisdm_watch"
    title = "WISDM 2019 smartwatch"
    layouts = (
        "raw/watch/accel/data_<id>_accel_watch.txt and raw/watch/gyro/data_<id>_gyro_watch.txt "
        "(lines 'subject,activity,timestamp_ns,x,y,z;'), plain, .gz or inside the UCI zip"
    )
    device = "watch"


def _read(folder: DataFolder, entry: Entry, sid: int, bad: BadRows) -> Rows | None:
    """Parse one sensor file and report bad rows; None when the file as a whole is unusable."""
    tf = TextFile.read(folder, entry, bad)  # a truncated .gz: bad input, skipped and listed with --on-bad skip
    if tf is None:
        return None
    rows = tf.rows(_COLS, bad, ncols=6, comments=";")
    if len(rows) == 0:
        bad("no data rows", entry.display())
        return None
    rows.cols["activity"] = np.char.strip(rows["activity"])
    rows = rows.reject(rows["subject"] != sid,
                       lambda i: f"subject {rows['subject'][i]} in the file of subject {sid}", bad)
    unknown = ~np.isin(rows["activity"], list(ACTIVITIES))
    rows = rows.reject(unknown, lambda i: f"unknown activity {str(rows['activity'][i])!r}; activity_key.txt has "
                       f"{', '.join(ACTIVITIES)}", bad)
    xyz = np.stack([rows["x"], rows["y"], rows["z"]], axis=1)
    limit = limit_of("gyro" if "_gyro_" in entry.logical else "acc")  # m/s^2 or rad/s
    rows = rows.reject(out_of_range(xyz, limit), lambda i: range_problem(xyz[i], limit), bad)
    rows = _monotonic(rows, bad)
    if len(rows) == 0:
        return None
    return _check_rate(rows, bad)


def _monotonic(rows: Rows, bad: BadRows) -> Rows:
    """Within each run of one activity, every timestamp must come after all earlier ones."""
    act, t = rows["activity"], rows["t"]
    starts = np.concatenate([[0], np.flatnonzero(act[1:] != act[:-1]) + 1, [len(act)]])
    back = np.zeros(len(t), bool)
    for s, e in zip(starts[:-1], starts[1:]):
        if e - s > 1:
            back[s + 1: e] = t[s + 1: e] <= np.maximum.accumulate(t[s: e - 1])
    return rows.reject(back, lambda i: f"timestamp {t[i]} ns is not after the earlier samples of "
                       f"activity {act[i]} (time went backwards or repeated)", bad)


def _check_rate(rows: Rows, bad: BadRows) -> Rows | None:
    act, t = rows["activity"], rows["t"]
    same = act[1:] == act[:-1]
    if not same.any():
        return rows
    rate = NS / float(np.median(np.diff(t)[same]))
    if not PLAUSIBLE_RATE[0] <= rate <= PLAUSIBLE_RATE[1]:
        bad(f"timestamps give a median sampling rate of {rate:.4g} Hz; WISDM timestamps are "
            f"nanoseconds at about {RATE:g} Hz", rows.source)
        return None
    return rows


def _stream(rows: Rows, letter: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(t (n,) increasing ns, xyz (n, 3), duplicates dropped) of one activity, or None."""
    m = rows["activity"] == letter
    if not m.any():
        return None
    t = rows["t"][m]
    xyz = np.stack([rows["x"][m], rows["y"][m], rows["z"][m]], axis=1)
    order, dup = sort_unique(t)
    return t[order], xyz[order], dup
