"""HHAR: Heterogeneity Human Activity Recognition (Stisen et al. 2015), phones in a waist pouch.

Nine users (a..i) carried eight Android phones (2 each of LG Nexus 4, Samsung Galaxy S3,
S3 mini and S+) in a pouch on the waist and biked, sat, stood, walked and took the stairs up and
down. Two layouts are read; the raw one is preferred when present (`locate`).

1. Raw (UCI id 344, `Activity recognition exp/`): `Phones_accelerometer.csv` (m/s^2, gravity
   included, Android convention already) and `Phones_gyroscope.csv` (rad/s), header
   `Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt`, Creation_Time in ns. Each phone
   sampled "as fast as it could" (roughly 50 to 200 Hz) with jitter, and acc and gyro are separate
   streams, so per (User, Device): rows are sorted by Creation_Time (rows out of order are normal
   in HHAR; of equal timestamps the first is kept and the rest counted in `extra`), acc and gyro
   are cut at gaps > 1 s, and both are interpolated linearly onto one uniform grid at that
   phone's median acc rate over each common span (crosshar.data.timegrid); each grid sample takes
   the label of the nearest acc row. gt "null" (the dataset's own "no activity") rows are left
   out, not reported as bad, and counted in `extra["null_rows"]`; a null stretch > 1 s therefore
   splits the recording. A phone with accelerometer rows but none at all in the gyroscope file
   gives acc-only recordings (gyro None, `extra["gyro"] = False`). gt: stand standing,
   sit sitting, walk walking, stairsup upstairs, stairsdown downstairs, bike biking.

   The smartwatches' files of the same archive (`Watch_accelerometer.csv`, `Watch_gyroscope.csv`, same
   columns; worn on the wrist) are read the same way as the dataset `hhar_watch` (HHARWatch).

2. AdaTime's preprocessed windows (`HHAR_SA`; Ragab et al. 2023), e.g. as in
   `hhar_sa_adatime/`: `test_<u>.npz` (also `train_`/`val_`), u = 0..8, with `samples` float64
   (N, 128, 3) acc x y z z-normalised per user (physical units and gravity's magnitude are lost),
   and `labels` int 0..5. These are read as windows (`windows()`), not as recordings: `profile()`
   fixes the window profile to the data's own (50 Hz, 128, stride 128, acc, zscore_subject).

   Label ids. AdaTime's config names the classes [bike, sit, stand, walk, stairs_up,
   stairs_down], but the arrays do not fit that order: ids 1 and 4 are the only still classes
   (mean within-window std 0.05 and 0.07 against 0.54-1.02 for the others), id 4 has the upright
   orientation of the gait classes while id 1 is tilted (sitting), id 5 is the most regular gait
   (every one of the 9 users: spectral peak at 3.4-3.9 cycles per window, autocorrelation peaks
   at 33 and 67 samples), id 3 the slowest (autocorrelation peaks at 67-89 samples in 5 users)
   and id 2 faster than id 5 in 7 of 9 users. That is the alphabetical order of HHAR's gt
   strings, i.e. what a label encoder produces: 0 bike, 1 sit, 2 stairsdown, 3 stairsup, 4 stand,
   5 walk. We use it (ADATIME_LABELS; pinned by the real-data test); with the config's order,
   "standing" would be a moving class and "stairs_up" a still one.

   Rate. The files do not record it. Estimated from the walking windows (id 5): the peak of each
   window's power spectrum (Hann window, mean removed, summed over axes, 1-12 cycles) lies at a
   median 3.69 cycles per 128 samples (interquartile range 3.50-3.88), and the mean
   autocorrelation repeats every 33-34 samples: the step. At the UCI-style 50 Hz (128 samples =
   2.56 s) that is a cadence of 1.44 Hz (86 steps/min), slow but plausible indoors; a typical
   1.6-2.0 Hz cadence would put the rate at 56-70 Hz. So RATE_ADATIME = 50 Hz is an assumption,
   consistent with the data within that range and with the 128-sample convention, not a measured fact.
   Nor is it what holds the transfer into HHAR back: the matrix's HHAR models score it replayed 1.25x as
   fast (as if recorded at 62.5 Hz) 56.3 on average against 55.9 as shipped (results/cadence_hhar.md).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from crosshar.config import WindowConfig
from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry, read_bytes_or_report
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.data.windows import WindowSet
from crosshar.data.rows import Col, Rows, TextFile, codes
from crosshar.data.timegrid import (
    NS, PAIRING_DROPPED, grid, interpolate, intersect, median_rate, nearest, sort_unique, spans,
)
from crosshar.errors import DataError, MissingDataError
from crosshar.limits import ACC_LIMIT, limit_of
from crosshar.registry import DATASETS

GT: dict[str, str] = {
    "stand": "standing", "sit": "sitting", "walk": "walking",
    "stairsup": "upstairs", "stairsdown": "downstairs", "bike": "biking",
}
NULL = "null"  # HHAR's own "no activity" label: excluded, counted
HEADER = ("Index", "Arrival_Time", "Creation_Time", "x", "y", "z", "User", "Model", "Device", "gt")
MAX_GAP_S = 1.0
PLAUSIBLE_RATE = (1.0, 1000.0)  # Hz; outside this Creation_Time is not nanoseconds
POSITION = "waist pouch"  # the phones; the watches are on the wrist (HHARWatch)

# AdaTime HHAR_SA: label id -> canonical name (alphabetical order of gt; see module docstring)
ADATIME_LABELS: tuple[str, ...] = ("biking", "sitting", "downstairs", "upstairs", "standing", "walking")
RATE_ADATIME = 50.0  # Hz, assumed (module docstring)
WINDOW_ADATIME = 128

_NPZ = re.compile(r"(?:^|/)(train|val|test)_(\d+)\.npz$")


@DATASETS.register("hhar")
class HHAR(Dataset):
    """HHAR phones (see module docstring for both layouts, the label ids and the rate)."""

    name = "hhar"
    title = "HHAR (Heterogeneity Human Activity Recognition), phones"
    prefix = "Phones"  # the raw files' name: <prefix>_accelerometer.csv, <prefix>_gyroscope.csv
    position = POSITION
    folders = ("hhar", "hhar_sa_adatime", "HHAR", "Activity recognition exp")
    layouts = (
        "Phones_accelerometer.csv + Phones_gyroscope.csv (raw, preferred; plain, .gz or inside the "
        "UCI zip), or AdaTime's HHAR_SA windows test_<u>.npz with samples (N, 128, 3) and labels"
    )
    url = "https://archive.ics.uci.edu/static/public/344/heterogeneity+activity+recognition.zip"
    sha256 = ""
    size = 0
    dropped = {"null_rows": "rows labelled null (no activity: left out, not bad)",
               **{k: v for k, v in PAIRING_DROPPED.items() if k != "gyro_s_without_acc"}}
    citation = (
        "A. Stisen, H. Blunck, S. Bhattacharya, T. S. Prentow, M. B. Kjærgaard, A. Dey, T. Sonne, "
        "M. M. Jensen. Smart Devices are Different: Assessing and Mitigating Mobile Sensing "
        "Heterogeneities for Activity Recognition. ACM SenSys 2015."
    )

    # ---- layout discovery

    def locate(self, data_dir: str | Path) -> Path:
        """The first candidate folder holding the raw CSVs, else the first holding anything."""
        found = [Path(data_dir) / f for f in self.folders if (Path(data_dir) / f).is_dir()]
        for p in found:
            if DataFolder(p).glob(f"*{self.prefix}_accelerometer.csv"):
                return p
        return found[0] if found else super().locate(data_dir)

    def _raw(self, folder: DataFolder) -> tuple[Entry, Entry | None] | None:
        accs = folder.glob(f"*{self.prefix}_accelerometer.csv")
        if not accs:
            return None
        acc = min(accs, key=lambda e: (len(e.logical), e.logical))
        gyro = folder.find(acc.logical.replace(f"{self.prefix}_accelerometer.csv", f"{self.prefix}_gyroscope.csv"))
        return acc, gyro

    def _npz(self, folder: DataFolder) -> list[tuple[str, str, Entry]]:
        """(split, user, entry) of AdaTime's files."""
        out = []
        for e in folder.glob("*.npz"):
            m = _NPZ.search(e.logical)
            if m:
                out.append((m.group(1), m.group(2), e))
        return out

    def files(self, folder: DataFolder) -> list[Entry]:
        raw = self._raw(folder)
        if raw is not None:
            return [e for e in raw if e is not None]
        return [e for _, _, e in self._npz(folder)]

    def has_gyro(self, folder: DataFolder) -> bool:
        return self._raw(folder) is not None

    def profile(self, folder: DataFolder) -> WindowConfig | None:
        if self._raw(folder) is not None or not self._npz(folder):
            return None
        return WindowConfig(rate_hz=RATE_ADATIME, window=WINDOW_ADATIME, stride=WINDOW_ADATIME,
                            channels="acc", normalize="zscore_subject")

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        raw = self._raw(folder)
        if raw is None:
            if self._npz(folder):
                raise DataError("HHAR is shipped here as AdaTime's fixed windows: read them with "
                                "windows() (crosshar.data.store.prepare does)", folder.root)
            raise self.no_files(folder, "HHAR")
        acc, gyro = raw
        if gyro is None:
            raise MissingDataError(f"{acc.display()} has no {self.prefix}_gyroscope.csv next to it")
        return self._load_raw(folder, acc, gyro, bad)

    def windows(self, folder: DataFolder, bad: BadRows) -> WindowSet:
        """AdaTime's windows as shipped (before the profile's per-subject z-normalisation)."""
        npz = self._npz(folder)
        if not npz:
            raise self.no_files(folder, "HHAR")
        parts = [self._read_npz(e, split, user, bad) for split, user, e in npz]
        parts = [p for p in parts if p is not None]
        cat = (lambda i, empty: np.concatenate([p[i] for p in parts]) if parts else empty)
        return WindowSet(cat(0, np.zeros((0, WINDOW_ADATIME, 3), np.float32)), cat(1, np.zeros(0, str)),
                         cat(2, np.zeros(0, str)), cat(3, np.zeros(0, str)), self.name, self.profile(folder))

    # ---- layout 1: raw CSVs

    def _load_raw(self, folder: DataFolder, acc_e: Entry, gyro_e: Entry, bad: BadRows) -> list[Recording]:
        acc = _read_raw(folder, acc_e, bad, drop_null=True)
        gyro = _read_raw(folder, gyro_e, bad, drop_null=False)
        if acc is None or gyro is None:
            return []
        rows, n_null = acc
        gyro_rows, _ = gyro
        gyro_groups = dict(_groups(gyro_rows))
        recs: list[Recording] = []
        for key, idx in _groups(rows):
            user, device = key
            a = rows.take(idx)
            g = gyro_rows.take(gyro_groups.pop(key)) if key in gyro_groups else None
            recs += self._group(a, g, user, device, n_null.get(key, 0), bad)
        for (user, device), idx in gyro_groups.items():
            bad(f"gyroscope rows of user {user} device {device} but no accelerometer rows "
                f"(other than gt null)", gyro_rows.source, int(gyro_rows.lines[idx[0]]))
        return recs

    def _group(self, a: Rows, g: Rows | None, user: str, device: str, n_null: int, bad: BadRows) -> list[Recording]:
        """Recordings of one (user, phone): common spans of acc and gyro on a uniform grid."""
        order, dup_a = sort_unique(a["t"])
        ta, xa, gt = a["t"][order], _xyz(a)[order], a.lookup["gt"][a["gt"][order]]
        rate = median_rate(ta)
        if not PLAUSIBLE_RATE[0] <= rate <= PLAUSIBLE_RATE[1]:
            bad(f"Creation_Time of user {user} device {device} gives a median sampling rate of "
                f"{rate:.4g} Hz; expected nanoseconds", a.source, int(a.lines[0]))
            return []
        rate = round(rate, 2)
        sa = spans(ta, MAX_GAP_S)
        if g is not None:
            gorder, dup_g = sort_unique(g["t"])
            tg, xg = g["t"][gorder], _xyz(g)[gorder]
            common = intersect(sa, spans(tg, MAX_GAP_S))
        else:
            dup_g, common = 0, sa
        model = str(a.lookup["model"][a["model"][0]])
        uncovered = float((sa[:, 1] - sa[:, 0]).sum() - (common[:, 1] - common[:, 0]).sum()) / NS
        extra = {"device_id": device, "gyro": g is not None, "null_rows": n_null,
                 "duplicate_timestamps": dup_a + dup_g, "acc_s_without_gyro": round(uncovered, 3)}
        recs = []
        for k, (start, end) in enumerate(common):
            t = grid(int(start), int(end), rate)
            if len(t) < 2:
                continue
            recs.append(Recording(
                acc=interpolate(ta, xa, t),
                gyro=interpolate(tg, xg, t) if g is not None else None,
                rate=rate,
                labels=gt[nearest(ta, t)],
                subject=f"hhar:{user}",
                dataset=self.name,
                source=f"{a.source} + {g.source}" if g is not None else a.source,
                device=model,
                position=self.position,
                session=f"{user}_{device}_{k}",
                extra=dict(extra),
            ).validate())
        return recs

    # ---- layout 2: AdaTime windows

    def _read_npz(self, e: Entry, split: str, user: str, bad: BadRows) -> tuple[np.ndarray, ...] | None:
        """(X (n, 128, 3) float32, labels, subjects, sessions) of one file's good windows."""
        if (raw := read_bytes_or_report(e, bad)) is None:  # a truncated .gz: reported, skipped and listed
            return None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # zlib.error: a damaged member
            bad(f"not a readable .npz file ({err})", e.display())
            return None
        if "samples" not in data or "labels" not in data:
            bad(f"expected arrays 'samples' and 'labels', found {sorted(data)}", e.display())
            return None
        x, y = data["samples"], data["labels"]
        if x.ndim != 3 or x.shape[1:] != (WINDOW_ADATIME, 3) or y.shape != (len(x),):
            bad(f"expected samples (N, {WINDOW_ADATIME}, 3) and labels (N,), got {x.shape} and {y.shape}", e.display())
            return None
        if not np.issubdtype(y.dtype, np.integer):
            bad(f"labels must be integers, got {y.dtype}", e.display())
            return None
        keep = []
        for i in range(len(x)):
            problem = ""
            if not 0 <= y[i] < len(ADATIME_LABELS):
                problem = f"unknown label id {int(y[i])}; HHAR_SA has 0..{len(ADATIME_LABELS) - 1}"
            elif out_of_range(x[i], ACC_LIMIT).any():
                problem = range_problem(x[i][out_of_range(x[i], ACC_LIMIT)][0], ACC_LIMIT)
            if problem:
                bad(f"window {i}: {problem}", e.display())
            else:
                keep.append(i)
        prefix = user if split == "test" else f"{user}_{split}"
        k = np.array(keep, dtype=np.int64)
        return (x[k].astype(np.float32), np.array(ADATIME_LABELS)[y[k].astype(np.int64)],
                np.full(len(k), f"hhar:{user}").astype(str), np.array([f"{prefix}_{i}" for i in keep], dtype=str))


@DATASETS.register("hhar_watch")
class HHARWatch(HHAR):
    """HHAR's smartwatches: `Watch_accelerometer.csv` + `Watch_gyroscope.csv` beside the phones' files in the
    same archive, with the same columns, units and reading (LG G Watch, model "lgwatch", about 200 Hz;
    Samsung Galaxy Gear, "gear", about 100 Hz; both Android), worn on the wrist. Raw files only: AdaTime's
    windows are the phones'."""

    name = "hhar_watch"
    title = "HHAR (Heterogeneity Human Activity Recognition), smartwatches"
    prefix = "Watch"
    position = "wrist"
    layouts = ("Watch_accelerometer.csv + Watch_gyroscope.csv (raw; plain, .gz or inside the UCI zip), "
               "beside HHAR's Phones_*.csv")

    def _npz(self, folder: DataFolder) -> list[tuple[str, str, Entry]]:
        return []  # AdaTime's HHAR_SA windows are the phones'


def _read_raw(folder: DataFolder, entry: Entry, bad: BadRows, drop_null: bool) -> tuple[Rows, dict] | None:
    """Parse one raw CSV and report bad rows.

    Returns (rows, {(user, device): gt-null rows dropped}). The text columns user, model, device
    and gt come back as int32 codes into `rows.lookup[name]` (13 M rows of four strings would
    take gigabytes); the gt lookup holds canonical names when `drop_null`.
    """
    tf = TextFile.read(folder, entry, bad)  # None: a truncated .gz, reported (skipped and listed in skip mode)
    if tf is None:
        return None
    head = tf.head(1)
    names = [h.strip() for h in head[0]] if head else []
    missing = [h for h in HEADER[2:] if h not in names]
    if missing:
        bad(f"header lacks column(s) {', '.join(missing)}; expected {','.join(HEADER)}", tf.source, 1)
        return None
    ix = {h: names.index(h) for h in HEADER[2:]}
    cols = [Col("t", ix["Creation_Time"], "i"), Col("x", ix["x"]), Col("y", ix["y"]), Col("z", ix["z"]),
            Col("user", ix["User"], "b", 8), Col("model", ix["Model"], "b", 16),
            Col("device", ix["Device"], "b", 24), Col("gt", ix["gt"], "b", 16)]
    rows = tf.rows(cols, bad, skip=1, ncols=len(names))
    for k in ("user", "model", "device", "gt"):  # few distinct values: decode each once
        code, uniq = codes(rows[k])
        text = np.array([u.decode("latin-1").strip() for u in uniq], dtype=str)
        distinct, remap = np.unique(text, return_inverse=True)  # "a" and "a " are one user
        rows.cols[k], rows.lookup[k] = remap.reshape(-1).astype(np.int32)[code], distinct
    gt_names = rows.lookup["gt"]
    known = np.isin(gt_names, [*GT, NULL])
    rows = rows.reject(~known[rows["gt"]], lambda i: f"unknown activity {str(gt_names[rows['gt'][i]])!r}; "
                       f"HHAR's gt is one of {', '.join([*GT, NULL])}", bad)
    xyz, limit = _xyz(rows), limit_of("gyro" if "gyroscope" in entry.logical else "acc")  # m/s^2 or rad/s
    rows = rows.reject(out_of_range(xyz, limit), lambda i: range_problem(xyz[i], limit), bad)
    n_null: dict = {}
    if drop_null:
        null = gt_names[rows["gt"]] == NULL
        for key, idx in _groups(rows.take(null)):
            n_null[key] = len(idx)
        rows = rows.take(~null)
        rows.lookup["gt"] = np.array([GT.get(g, "") for g in gt_names], dtype=str)
    if len(rows) == 0:
        bad("no data rows" + (" other than gt null" if drop_null else ""), tf.source)
        return None
    return rows, n_null


def _groups(rows: Rows):
    """((user, device), row indices) for each phone, sorted by name."""
    if len(rows) == 0:
        return
    n_dev = len(rows.lookup["device"])
    key = rows["user"].astype(np.int64) * n_dev + rows["device"]
    order = np.argsort(key, kind="stable")
    ks = key[order]
    cuts = np.concatenate([[0], np.flatnonzero(ks[1:] != ks[:-1]) + 1, [len(ks)]])
    groups = []
    for s, e in zip(cuts[:-1], cuts[1:]):
        u, d = divmod(int(ks[s]), n_dev)
        groups.append(((str(rows.lookup["user"][u]), str(rows.lookup["device"][d])), order[s:e]))
    yield from sorted(groups, key=lambda g: g[0])


def _xyz(rows: Rows) -> np.ndarray:
    return np.stack([rows["x"], rows["y"], rows["z"]], axis=1)
