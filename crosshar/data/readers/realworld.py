"""RealWorld (HAR) 2016 (Sztyler & Stuckenschmidt): seven body positions at once, 15 subjects, 50 Hz.

Fifteen subjects ("probands") wore seven devices at once, on the chest, forearm, head, shin, thigh,
upper arm and waist, and performed eight activities, each for about ten minutes (jumping: less than
two). The University of Mannheim distributes `realworld2016_dataset.zip`; `crosshar data download -d
realworld` unpacks it (or unpack it yourself), and the per-sensor archives inside are read in place:

    proband<N>/data/<sensor>_<activity>_csv.zip   sensor acc, gyr (also mag, gps, lig, mic: not read)

Each holds one CSV per position, `<Sensor>_<activity>_<position>.csv` with Sensor `acc` or
`Gyroscope` (a subject who recorded an activity again has `<Sensor>_<activity>_2_<position>.csv`,
sometimes without a first one); for a few subjects (4, 7, 14) the climbing archives hold one zip per
session instead (`acc_climbingup_2_csv.zip` inside `acc_climbingup_csv.zip`), read in place too.
Unpacked copies of the CSVs (plain or .gz, under `proband<N>/data/`) are read alike. The CSV layout:
a header `id,attr_time,attr_x,attr_y,attr_z`, then one sample per line, attr_time in milliseconds
(Unix epoch), acc in m/s^2 including gravity, gyro in rad/s (the Android sensors' own units), about
50 Hz.

Acc and gyro are separate, unaligned streams, as in HHAR and WISDM, so for every (subject, activity,
position) the rows of all its session files are sorted by time (equal timestamps: the first kept, the
rest counted in `extra`), both streams cut at gaps > MAX_GAP_S, their spans intersected, and both
interpolated linearly onto one 50 Hz grid over each common span (crosshar.data.timegrid). A recording
is one position over one such span: position one of POSITIONS (the dataset's own names), subject
"realworld:<N>", session "<N>_<activity>_<position>_<k>". Labels from the file name, the whole
file: climbingdown downstairs, climbingup upstairs, jumping, lying, running, sitting, standing,
walking. (The dataset's activities were recorded as whole sessions: the first and last seconds of a
file, putting the devices on or taking them off, carry the file's label as they do in the dataset.)

Bad input (through `bad`): a header other than the one above (line 1), a line without 5 fields or with
a non-number, a non-finite time, a value beyond crosshar.limits, timestamps whose median interval does
not give 5-500 Hz (not milliseconds), an acc file without the gyroscope file of the same activity and
position (or the reverse), no overlapping rows between the two, a stretch of UNPAIRED_S or more of one
stream with no rows of the other (a session file without its partner); each named with its file and line.
Shorter unpaired stretches are counted in `extra` (acc_s_without_gyro, gyro_s_without_acc). Two
(proband, activity, position) are shipped without data, as public parsers of the dataset note and skip
(KNOWN_GAPS: proband2 climbingup forearm, proband6 jumping thigh): whatever is missing or unreadable there
is listed in the manifest's "notes" and in prepare's summary, never an error, so the dataset as published
prepares without --on-bad skip.
A distribution zip left packed (whose per-sensor zips are then too deeply nested to be read in place)
is an error saying to unpack it.

Not confirmed (no copy of the dataset here): the devices (the dataset's page names Samsung Galaxy S4
phones and an LG G Watch R; the watch is taken to be the forearm's, device "smartwatch", the others
"smartphone"), the sign of the accelerometers (Android's: +9.8 m/s^2 along the axis pointing up at
rest, kept as is; a negated accelerometer is, in the gravity frame, a mirror image, which the default
augmentation covers), whether timestamps ever repeat or step back (handled either way), the download
address. The real-data test checks gravity at rest, the rate and the rigid-body law per position when
the data is under CROSSHAR_DATA.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.data.rows import Col, Rows, TextFile
from crosshar.data.timegrid import NS, PAIRING_DROPPED, grid, interpolate, intersect, sort_unique, spans
from crosshar.errors import DataError
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

ACTIVITIES: dict[str, str] = {
    "climbingdown": "downstairs", "climbingup": "upstairs", "jumping": "jumping", "lying": "lying",
    "running": "running", "sitting": "sitting", "standing": "standing", "walking": "walking",
}
POSITIONS = ("chest", "forearm", "head", "shin", "thigh", "upperarm", "waist")
STREAMS = {"acc": "acc", "Gyroscope": "gyro"}  # a CSV's name prefix -> the stream it holds
HEADER = ("id", "attr_time", "attr_x", "attr_y", "attr_z")
RATE = 50.0  # Hz, the dataset's nominal rate and the grid both streams are interpolated onto
MAX_GAP_S = 1.0  # a longer gap between two samples ends a span (HHAR's and WISDM's rule for phone streams)
PLAUSIBLE_RATE = (5.0, 500.0)  # Hz; outside this attr_time is not milliseconds at about 50 Hz
UNPAIRED_S = 6.0  # a stretch of one stream this long (a window) with no rows of the other is reported; shorter
#                   ones (the seconds one sensor starts before the other) are counted in `extra`

# (proband, activity, position) that the distribution ships without data: named by public parsers of the dataset,
# which skip them. A missing or empty file there is a note in the manifest (BadRows.note), not an error, so that the
# dataset as published prepares without --on-bad skip; any other missing partner file is still bad input.
KNOWN_GAPS = frozenset({(2, "climbingup", "forearm"), (6, "jumping", "thigh")})

_CSV = re.compile(r"(?:^|/)proband(\d+)/data/(acc|Gyroscope)_([a-z]+?)(?:_(\d+))?_([a-z]+)\.csv$")
_PACKED = re.compile(r"(?:^|/)proband(\d+)/data/([a-z]+)_([a-z]+?)(?:_\d+)?_csv\.zip$")
SENSORS = {"acc": "acc", "Gyroscope": "gyr"}  # a CSV's name prefix -> its archive's (acc_..., gyr_..._csv.zip)
_COLS = (Col("t", 1), Col("x", 2), Col("y", 3), Col("z", 4))


@DATASETS.register("realworld")
class RealWorld(Dataset):
    """RealWorld (HAR) 2016: one recording per position and common span of acc and gyro (see module docstring)."""

    name = "realworld"
    title = "RealWorld (HAR) 2016, seven body positions"
    folders = ("realworld", "realworld2016_dataset", "realworld2016", "RealWorld")
    layouts = (
        "proband<N>/data/acc_<activity>_csv.zip and gyr_<activity>_csv.zip (CSVs "
        "'<acc|Gyroscope>_<activity>[_<k>]_<position>.csv', header id,attr_time,attr_x,attr_y,attr_z), or those "
        "CSVs unpacked (plain or .gz); unpack realworld2016_dataset.zip first"
    )
    url = "https://wifo5-14.informatik.uni-mannheim.de/sensor/dataset/realworld2016/realworld2016_dataset.zip"
    dropped = PAIRING_DROPPED
    citation = (
        "T. Sztyler, H. Stuckenschmidt. On-body Localization of Wearable Devices: An Investigation of "
        "Position-Aware Activity Recognition. IEEE PerCom 2016."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        """The acc and gyroscope CSVs of the known activities and positions, sorted by logical path."""
        out = []
        for e in folder.glob("*proband*/data/*.csv"):
            m = _CSV.search(e.logical)
            if m and m.group(3) in ACTIVITIES and m.group(5) in POSITIONS:
                out.append(e)
        have = {(m.group(1), SENSORS[m.group(2)], m.group(3)) for m in map(_CSV.search, (e.logical for e in out))}
        for e in folder.glob("*proband*/data/*_csv.zip"):  # a zip DataFolder did not open: nested too deep
            m = _PACKED.search(e.logical)
            if m and m.group(2) in SENSORS.values() and (m.group(1), m.group(2), m.group(3)) not in have:
                raise DataError("a per-sensor zip nested too deep to read in place (the distribution zip is still "
                                "packed): unpack realworld2016_dataset.zip first (`crosshar data download -d "
                                "realworld` does), so that proband<N>/data/*_csv.zip lie in the folder", e.display())
        return out

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        if not (files := self.files(folder)):
            raise self.no_files(folder, "RealWorld")
        groups: dict[tuple[int, str, str], dict[str, list[Entry]]] = defaultdict(lambda: {"acc": [], "gyro": []})
        for e in files:
            sid, sensor, act, _k, pos = _CSV.search(e.logical).groups()  # type: ignore[union-attr]
            groups[(int(sid), act, pos)][STREAMS[sensor]].append(e)
        recs: list[Recording] = []
        for (sid, act, pos), streams in sorted(groups.items()):
            if (sid, act, pos) in KNOWN_GAPS:  # whatever is wrong there is the distribution's gap: noted, not an error
                gap = BadRows("skip")
                recs += self._group(folder, streams, sid, act, pos, gap)
                for path, _line, why in gap.skipped:
                    bad.note(f"proband{sid} {act} {pos}: {why}", path)
                continue
            recs += self._group(folder, streams, sid, act, pos, bad)
        return recs

    def _group(self, folder: DataFolder, streams: dict[str, list[Entry]], sid: int, act: str, pos: str,
               bad: BadRows) -> list[Recording]:
        """The recordings of one (proband, activity, position): its acc and gyroscope files, read and aligned."""
        if not streams["acc"] or not streams["gyro"]:
            have, missing = ("acc", "Gyroscope") if streams["acc"] else ("Gyroscope", "acc")
            bad(f"no {missing} file for proband{sid} {act} {pos} (its {have} file is here)",
                streams["acc" if have == "acc" else "gyro"][0].display())
            return []
        acc = _stream([_read(folder, e, "acc", bad) for e in streams["acc"]])
        gyro = _stream([_read(folder, e, "gyro", bad) for e in streams["gyro"]])
        if acc is None or gyro is None:
            return []  # every file of a stream reported bad
        return self._align(acc, gyro, sid, act, pos, bad)

    def _align(self, acc: "_Stream", gyro: "_Stream", sid: int, act: str, pos: str, bad: BadRows) -> list[Recording]:
        """One Recording per common span of the two streams, both at 50 Hz."""
        sa, sg = spans(acc.t, MAX_GAP_S), spans(gyro.t, MAX_GAP_S)
        common = intersect(sa, sg)
        if len(common) == 0:
            bad(f"no Gyroscope rows overlap acc rows for proband{sid} {act} {pos}", acc.source)
            return []
        alone = {}  # seconds of each stream with no rows of the other at the same time
        for name, own, other, s in (("acc", sa, "Gyroscope", acc), ("Gyroscope", sg, "acc", gyro)):
            alone[name] = 0.0
            for a, b in own:
                covered = sum(max(0, min(b, c1) - max(a, c0)) for c0, c1 in common)
                alone[name] += (b - a - covered) / NS
                if covered == 0 and (b - a) / NS >= UNPAIRED_S:  # a whole session without its partner file
                    bad(f"{name} rows of proband{sid} {act} {pos} over {(b - a) / NS:.0f} s (from attr_time "
                        f"{a // 1_000_000} ms) have no {other} rows at the same time: a session file without its "
                        f"partner?", s.source)
        extra = {"acc_rows": len(acc.t), "gyro_rows": len(gyro.t), "duplicate_timestamps": acc.dup + gyro.dup,
                 "acc_s_without_gyro": round(alone["acc"], 2), "gyro_s_without_acc": round(alone["Gyroscope"], 2)}
        recs = []
        for k, (start, end) in enumerate(common):
            t = grid(int(start), int(end), RATE)
            if len(t) < 2:
                continue
            recs.append(Recording(
                acc=interpolate(acc.t, acc.x, t), gyro=interpolate(gyro.t, gyro.x, t), rate=RATE,
                labels=np.full(len(t), ACTIVITIES[act]), subject=f"realworld:{sid}", dataset=self.name,
                source=f"{acc.source} + {gyro.source}", device="smartwatch" if pos == "forearm" else "smartphone",
                position=pos, session=f"{sid}_{act}_{pos}_{k}", extra=dict(extra),
            ).validate())
        return recs


class _Stream(NamedTuple):
    """One sensor's rows of one (subject, activity, position), every session file merged."""

    t: np.ndarray  # (n,) increasing ns
    x: np.ndarray  # (n, 3) m/s^2 or rad/s
    dup: int  # equal timestamps dropped
    source: str  # the file(s)


def _stream(parts: list[Rows | None]) -> _Stream | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    t = np.concatenate([p["t"] for p in parts])
    x = np.concatenate([p["x"] for p in parts])
    order, dup = sort_unique(t)
    return _Stream(t[order], x[order], dup, " + ".join(p.source for p in parts))


def _read(folder: DataFolder, entry: Entry, kind: str, bad: BadRows) -> Rows | None:
    """One CSV's rows that pass every check: "t" int64 ns, "x" (n, 3) in m/s^2 or rad/s; None if none."""
    tf = TextFile.read(folder, entry, bad)  # None: a truncated .gz, reported (skipped and listed in skip mode)
    if tf is None:
        return None
    head = [h.strip() for h in (tf.head(1) or [[]])[0]]
    if tuple(head) != HEADER:
        bad(f"header {','.join(head)!r} is not {','.join(HEADER)!r}", tf.source, 1)
        return None
    rows = tf.rows(_COLS, bad, skip=1, ncols=len(HEADER))
    ms = rows["t"]
    rows = rows.reject(~np.isfinite(ms), lambda i: f"attr_time {ms[i]} is not a finite number of milliseconds", bad)
    xyz = np.stack([rows["x"], rows["y"], rows["z"]], axis=1)
    limit = limit_of(kind)
    unit = " m/s^2" if kind == "acc" else " rad/s"
    rows = rows.reject(out_of_range(xyz, limit), lambda i: range_problem(xyz[i], limit, unit), bad)
    if len(rows) == 0:
        bad("no data rows", tf.source)
        return None
    t = np.round(rows["t"] * 1e6).astype(np.int64)  # ms -> ns (epoch ms are exact in float64)
    if len(t) > 1:
        dt = np.diff(np.sort(t))
        rate = NS / float(np.median(dt)) if np.median(dt) > 0 else float("inf")
        if not PLAUSIBLE_RATE[0] <= rate <= PLAUSIBLE_RATE[1]:
            bad(f"attr_time gives a median sampling rate of {rate:.4g} Hz; RealWorld's attr_time is milliseconds "
                f"at about {RATE:g} Hz", tf.source)
            return None
    return Rows({"t": t, "x": np.stack([rows["x"], rows["y"], rows["z"]], axis=1)}, rows.lines, rows.source)
