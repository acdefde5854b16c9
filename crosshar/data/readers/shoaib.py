"""Shoaib et al. 2014: five Samsung Galaxy S II phones on the body at once, 10 participants, 50 Hz.

"Fusion of smartphone motion sensors for physical activity recognition" (Sensors 14(6), 2014).
Each participant walked, stood, jogged, sat, biked and went up and down stairs carrying phones in
the left and right trouser pockets, on the wrist, on the upper arm and on the belt. The public
archive is a .rar (`sensors-activity-recognition-dataset-shoaib.rar`), which Python cannot unpack
without extra tools: unpack it yourself (e.g. `unrar x` or `7z x`) so that `DataSet/Participant_<N>.csv`
lie under the data folder (.gz and .zip re-packings are read too).

Layout of `Participant_<N>.csv`: two header lines, then one line per sample.
- Line 1 names the body position of each block of columns ("Left_pocket", "Right_pocket",
  "Wrist", "Upper_arm", "Belt"), in the block's first cell.
- Line 2 names the columns of each block, `Time_Stamp,Ax,Ay,Az,Lx,Ly,Lz,Gx,Gy,Gz,Mx,My,Mz`
  (acc, linear acc, gyro, magnetometer), blocks separated by an empty column; the activity label
  is the last column (header "Activity_Label" in some copies, empty in others).
Columns are located by name from line 2, so copies with or without the separator columns, or
with another block order, read the same. Only Ax..Az (m/s^2, gravity included, Android
convention, as the phones are Android devices) and Gx..Gz (rad/s) are used; the magnetometer and
the phone's own linear acceleration are not.

One Recording per (participant, position), in file order at the nominal 50 Hz; the sample order
is trusted and Time_Stamp is not used. (In skip mode a skipped row ends the recording, and the
rest of the file continues as session "<N>_<position>_1", ...) Labels: walking, standing, jogging, sitting, biking,
upstairs (spelled "upsatirs" in the files), downstairs; anything else is reported through `bad`.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.data.rows import Col, TextFile
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

LABELS: dict[str, str] = {
    "walking": "walking", "standing": "standing", "jogging": "jogging", "sitting": "sitting",
    "biking": "biking", "upstairs": "upstairs", "upsatirs": "upstairs", "downstairs": "downstairs",
}
RATE = 50.0
DEVICE = "Samsung Galaxy S II"
ACC = ("Ax", "Ay", "Az")
GYRO = ("Gx", "Gy", "Gz")
_LABEL_HEADERS = {"activity_label", "activity", "label", "activity label"}
_FILE = re.compile(r"(?:^|/)Participant_(\d+)\.csv$")


@DATASETS.register("shoaib")
class Shoaib(Dataset):
    """Shoaib et al. 2014 five-position phone dataset (see module docstring)."""

    name = "shoaib"
    title = "Shoaib et al. 2014 (five body positions)"
    folders = ("shoaib", "Shoaib", "DataSet")
    layouts = (
        "DataSet/Participant_<N>.csv, N = 1..10 (two header lines: positions, then "
        "Time_Stamp,Ax,Ay,Az,Lx,Ly,Lz,Gx,Gy,Gz,Mx,My,Mz per position, then the activity). The "
        "official archive is a .rar, which crosshar cannot unpack: extract it first (unrar or 7z)"
    )
    url = "https://www.utwente.nl/en/eemcs/ps/dataset-folder/sensors-activity-recognition-dataset-shoaib.rar"
    sha256 = ""
    size = 0
    citation = (
        "M. Shoaib, S. Bosch, O. D. Incel, H. Scholten, P. J. M. Havinga. Fusion of Smartphone "
        "Motion Sensors for Physical Activity Recognition. Sensors 14(6):10146-10176, 2014."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        return [e for e in folder.glob("*Participant_*.csv") if _FILE.search(e.logical)]

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        files = self.files(folder)
        if not files:
            raise self.no_files(folder, "Shoaib")
        recs: list[Recording] = []
        for e in files:
            recs += self._participant(folder, e, bad)
        return recs

    def _participant(self, folder: DataFolder, e: Entry, bad: BadRows) -> list[Recording]:
        pid = int(_FILE.search(e.logical).group(1))  # type: ignore[union-attr]
        tf = TextFile.read(folder, e, bad)  # None: a truncated .gz, reported (skipped and listed in skip mode)
        if tf is None:
            return []
        head = tf.head(3)
        if len(head) < 3 or not head[2]:
            bad("no data rows after the two header lines", tf.source)
            return []
        layout = _blocks(head, tf.source, bad)
        if layout is None:
            return []
        blocks, label_ix = layout
        ncols = len(head[2])
        if max(label_ix, *(j for _, ix in blocks for j in ix.values())) >= ncols:
            bad(f"the first data line has {ncols} fields, fewer than the header's columns", tf.source, 3)
            return []
        cols = [Col("label", label_ix, "s", 24)]
        for b, (_, ix) in enumerate(blocks):
            cols += [Col(f"{b}{name}", ix[name]) for name in ACC + GYRO]
        # every line must have as many fields as the first data line: a stray delimiter would
        # otherwise shift the values of every later column
        rows = tf.rows(cols, bad, skip=2, ncols=ncols)
        labels = np.char.lower(np.char.strip(rows["label"]))
        known = np.isin(labels, list(LABELS))
        rows = rows.reject(~known, lambda i: f"unknown activity {str(rows['label'][i])!r}; expected one of "
                           f"{', '.join(LABELS)}", bad)
        labels = labels[known]
        values = np.stack([rows[c.name] for c in cols[1:]], axis=1)  # (n, 6 * blocks)
        limit = np.array([limit_of("gyro" if name in GYRO else "acc") for _ in blocks for name in ACC + GYRO])
        finite = ~out_of_range(values, limit)
        rows = rows.reject(~finite, lambda i: range_problem(values[i], limit), bad)
        labels, values = labels[finite], values[finite]
        if len(rows) == 0:
            bad("no data rows", tf.source)
            return []
        canon = np.array([LABELS[k] for k in labels.tolist()], dtype=str) if len(labels) else labels
        # a skipped row (skip mode) is a hole in time: the recording ends there
        cuts = [0, *(np.flatnonzero(np.diff(rows.lines) > 1) + 1).tolist(), len(rows)]
        recs = []
        for b, (position, _) in enumerate(blocks):
            for k, (s, e) in enumerate(zip(cuts[:-1], cuts[1:])):
                v = values[s:e, 6 * b: 6 * b + 6]
                recs.append(Recording(
                    acc=v[:, :3],
                    gyro=v[:, 3:],
                    rate=RATE,
                    labels=canon[s:e],
                    subject=f"shoaib:{pid}",
                    dataset=self.name,
                    source=tf.source,
                    device=DEVICE,
                    position=position,
                    session=f"{pid}_{position}" + (f"_{k}" if k else ""),
                ).validate())
        return recs


def _blocks(head: list[list[str]], source: str, bad: BadRows) -> tuple[list[tuple[str, dict[str, int]]], int] | None:
    """([(position, {column name: index})] per block, label column index).

    From the two header lines, and the first data line when the activity column has no name.
    """
    if len(head) < 2:
        bad("expected two header lines (positions, then column names)", source, 1)
        return None
    names = [h.strip() for h in head[1]]
    places = [h.strip() for h in head[0]]
    starts = [j for j, h in enumerate(names) if h.lower().replace("_", "") == "timestamp"]
    if not starts:
        bad("the second header line has no Time_Stamp column; expected Time_Stamp,Ax,Ay,Az,Lx,Ly,Lz,"
            "Gx,Gy,Gz,Mx,My,Mz per position", source, 2)
        return None
    blocks = []
    used: set[int] = set()
    for b, s in enumerate(starts):
        end = starts[b + 1] if b + 1 < len(starts) else len(names)
        ix = {}
        for want in ACC + GYRO:
            hits = [j for j in range(s, end) if names[j] == want]
            if not hits:
                bad(f"column {want} missing from the block starting at column {s + 1}", source, 2)
                return None
            ix[want] = hits[0]
        used.update(j for j in range(s, end) if names[j])
        named = [places[j] for j in range(s, min(end, len(places))) if places[j]]
        if not named:
            bad(f"the first header line names no body position for the block starting at column {s + 1}", source, 1)
            return None
        blocks.append((_position(named[0]), ix))
    label = [j for j, h in enumerate(names) if h.lower() in _LABEL_HEADERS]
    if label:
        return blocks, label[0]
    # unnamed: the last non-empty field of the first data line, after every sensor column
    first = head[2] if len(head) > 2 else []
    filled = [j for j, v in enumerate(first) if v.strip()]
    if not filled or filled[-1] <= max(used):
        bad("no activity column: expected an Activity_Label header, or the activity as the last "
            "field of each line after the sensor columns", source, 3)
        return None
    return blocks, filled[-1]


def _position(name: str) -> str:
    """"Left_pocket" -> "left_pocket", "Upper arm" -> "upper_arm"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
