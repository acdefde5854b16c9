"""UCI-HAR / HAPT: Samsung Galaxy S II on the waist, 30 subjects, acc + gyro at 50 Hz.

Two public layouts are read:

1. HAPT `RawData/` (Reyes-Ortiz et al. 2016): `acc_expEE_userUU.txt` (g), `gyro_expEE_userUU.txt`
   (rad/s), one "x y z" sample per line, and `labels.txt` (`exp user activity start end`, 0-based
   inclusive sample indices). One Recording per experiment, labelled with all 12 activities
   (including the six postural transitions); samples outside every segment are unlabelled ("").
   This is what LIMU-BERT and CrossHAR use as "UCI" (method notes, section Data).
2. UCI-HAR `{train,test}/Inertial Signals/` (Anguita et al. 2013): 2.56 s windows (128 samples,
   50 % overlap) of `total_acc_*` (g) and `body_gyro_*` (rad/s), one window per row. The
   continuous signal is rebuilt by stitching consecutive rows of the same subject and label whose
   64 overlapping samples agree; any break starts a new Recording. Only the six basic activities.

Layout 1 is used when `RawData/` is present (it holds strictly more), else layout 2.

Units and signs: the accelerometer of an Android phone already reads +1 g along the axis pointing
up at rest, which is crosshar's convention (Recording). On the waist the phone's x axis points up
along the body: standing reads a mean acc of about (+9.8, -1.6, -0.2) m/s^2 on the real data
(magnitude of the mean 9.96, mean magnitude 10.1). g is converted with 9.80665 m/s^2.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording
from crosshar.data.rows import Table, integers, read_table
from crosshar.errors import MissingDataError
from crosshar.limits import ACC_LIMIT, GRAVITY, GYRO_LIMIT
from crosshar.registry import DATASETS

# 1-based activity ids of HAPT (activity_labels.txt); UCI-HAR uses the first six.
ACTIVITIES: tuple[str, ...] = (
    "walking", "upstairs", "downstairs", "sitting", "standing", "lying",
    "stand_to_sit", "sit_to_stand", "sit_to_lie", "lie_to_sit", "stand_to_lie", "lie_to_stand",
)
HAR_ACTIVITIES: int = 6  # UCI-HAR's y_*.txt use ids 1..6 only

# The official UCI-HAR test subjects; recorded in `extra["split"]` for reference.
TEST_SUBJECTS: frozenset[int] = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})

WINDOW = 128  # samples per UCI-HAR window
OVERLAP = 64  # samples shared by consecutive windows
STITCH_ATOL = 1e-6

_RAW = re.compile(r"(?:^|.*/)RawData/acc_exp(\d+)_user(\d+)\.txt$")


@DATASETS.register("uci")
class UCI(Dataset):
    """UCI-HAR / HAPT smartphone dataset (see module docstring for layouts, units and signs)."""

    name = "uci"
    title = "UCI-HAR / HAPT"
    folders = ("uci_hapt", "uci_har", "UCI HAR Dataset", "UCI_HAR_Dataset", "uci")
    layouts = (
        "RawData/acc_expEE_userUU.txt, RawData/gyro_expEE_userUU.txt, RawData/labels.txt (HAPT), "
        "or {train,test}/Inertial Signals/total_acc_x_train.txt ... with subject_train.txt and "
        "y_train.txt (UCI HAR Dataset); plain, .gz or inside the distribution's zip"
    )
    url = ("https://archive.ics.uci.edu/static/public/341/"
           "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip")
    sha256 = ""
    size = 0
    citation = (
        "J.-L. Reyes-Ortiz, L. Oneto, A. Samà, X. Parra, D. Anguita. Transition-Aware Human "
        "Activity Recognition Using Smartphones. Neurocomputing 171:754-767, 2016. "
        "D. Anguita, A. Ghio, L. Oneto, X. Parra, J. L. Reyes-Ortiz. A Public Domain Dataset for "
        "Human Activity Recognition Using Smartphones. ESANN 2013."
    )
    device = "Samsung Galaxy S II"
    position = "waist"
    rate = 50.0

    # ---- layout discovery

    def _raw(self, folder: DataFolder) -> tuple[str, list[Entry]] | None:
        """(RawData prefix, acc entries) of layout 1, or None."""
        accs = [e for e in folder.glob("*RawData/acc_exp*_user*.txt") if _RAW.match(e.logical)]
        if not accs:
            return None
        prefixes = {e.logical[: e.logical.rindex("RawData/") + len("RawData/")] for e in accs}
        prefix = min(prefixes, key=lambda p: (len(p), p))
        return prefix, [e for e in accs if e.logical.startswith(prefix) and "/" not in e.logical[len(prefix):]]

    def _har(self, folder: DataFolder) -> dict[str, dict[str, Entry]]:
        """Layout 2: {split: {"total_acc_x": entry, ..., "subject": entry, "y": entry}}."""
        out: dict[str, dict[str, Entry]] = {}
        for split in ("train", "test"):
            tail = f"{split}/Inertial Signals/total_acc_x_{split}.txt"
            hits = [e.logical for e in folder.glob("*" + tail) if e.logical == tail or e.logical.endswith("/" + tail)]
            if not hits:
                continue
            base = min((h[: -len(tail)] for h in hits), key=lambda p: (len(p), p)) + split + "/"
            names = {f"{s}_{a}": f"{base}Inertial Signals/{s}_{a}_{split}.txt"
                     for s in ("total_acc", "body_gyro") for a in "xyz"}
            names |= {"subject": f"{base}subject_{split}.txt", "y": f"{base}y_{split}.txt"}
            files = {}
            for key, logical in names.items():
                e = folder.find(logical)
                if e is None:
                    raise MissingDataError(f"UCI HAR layout is incomplete: {logical} is missing", folder.root)
                files[key] = e
            out[split] = files
        return out

    def files(self, folder: DataFolder) -> list[Entry]:
        raw = self._raw(folder)
        if raw is not None:
            prefix, accs = raw
            out = list(accs)
            for e in accs:
                g = folder.find(prefix + e.logical[len(prefix):].replace("acc_", "gyro_", 1))
                if g is not None:
                    out.append(g)
            lab = folder.find(prefix + "labels.txt")
            return sorted(out + ([lab] if lab else []), key=lambda e: e.logical)
        har = self._har(folder)
        if not har:
            raise self.no_files(folder, "UCI-HAR / HAPT")
        return sorted((e for files in har.values() for e in files.values()), key=lambda e: e.logical)

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        raw = self._raw(folder)
        if raw is not None:
            return self._load_raw(folder, bad, *raw)
        har = self._har(folder)
        if not har:
            raise self.no_files(folder, "UCI-HAR / HAPT")
        return [r for split, files in har.items() for r in self._load_windows(folder, bad, split, files)]

    # ---- layout 1: HAPT RawData

    def _load_raw(self, folder: DataFolder, bad: BadRows, prefix: str, accs: list[Entry]) -> list[Recording]:
        exps: dict[int, dict] = {}  # exp -> parsed streams
        skipped: set[int] = set()  # experiments dropped (in skip mode) for bad files
        have = {e.logical for e in accs}
        for g in folder.glob(prefix + "gyro_exp*_user*.txt"):
            if prefix + g.logical[len(prefix):].replace("gyro_", "acc_", 1) not in have:
                bad(f"a gyroscope file without its accelerometer file "
                    f"{g.logical[len(prefix):].replace('gyro_', 'acc_', 1)}: not used", g.display())
        for acc_e in accs:
            exp_s, user_s = _RAW.match(acc_e.logical).groups()  # type: ignore[union-attr]
            exp, user = int(exp_s), int(user_s)
            gyro_e = folder.find(f"{prefix}gyro_exp{exp_s}_user{user_s}.txt")
            if gyro_e is None:
                bad(f"no gyroscope file gyro_exp{exp_s}_user{user_s}.txt next to it", acc_e.display())
                skipped.add(exp)
                continue
            acc = read_table(folder, acc_e, bad, 3, limit=ACC_LIMIT / GRAVITY)  # g
            gyro = read_table(folder, gyro_e, bad, 3, limit=GYRO_LIMIT) if acc is not None else None
            if acc is None or gyro is None:
                skipped.add(exp)
                continue
            if len(acc.values) != len(gyro.values):
                bad(f"has {len(gyro.values)} samples but {acc_e.logical} has {len(acc.values)}; "
                    "the two files must be sample-aligned", gyro_e.display())
                skipped.add(exp)
                continue
            if exp in exps:
                bad(f"experiment {exp} appears twice (also {exps[exp]['acc_e'].logical})", acc_e.display())
                continue
            exps[exp] = dict(acc=acc, gyro=gyro, user=user, acc_e=acc_e, exp_s=exp_s, user_s=user_s,
                             labels=np.full(len(acc.values), "", dtype=object))

        lab_e = folder.find(prefix + "labels.txt")
        if lab_e is None:
            raise MissingDataError(f"HAPT labels file {prefix}labels.txt is missing", folder.root)
        table = read_table(folder, lab_e, bad, 5)
        if table is not None:
            self._apply_labels(table, lab_e, bad, exps, skipped)

        recs = []
        for exp in sorted(exps):
            d = exps[exp]
            keep = d["acc"].ok & d["gyro"].ok
            recs.append(Recording(
                acc=d["acc"].values[keep] * GRAVITY,
                gyro=d["gyro"].values[keep],
                rate=self.rate,
                labels=d["labels"][keep].astype(str),
                subject=f"uci:{d['user']:02d}",
                dataset=self.name,
                source=d["acc_e"].display(),
                device=self.device,
                position=self.position,
                session=f"exp{d['exp_s']}",
                extra={"split": "test" if d["user"] in TEST_SUBJECTS else "train", "layout": "RawData"},
            ).validate())
        return recs

    def _apply_labels(self, table: Table, lab_e: Entry, bad: BadRows, exps: dict[int, dict], skipped: set[int]) -> None:
        table = integers(table, lab_e, bad, 0, 10**9, "exp, user, activity, start and end")
        for row, line in zip(table.values[table.ok].astype(np.int64), table.lines[table.ok]):
            exp, user, act, start, end = (int(v) for v in row)
            line = int(line)
            if exp in skipped:
                continue  # its files were already reported
            if exp not in exps:
                bad(f"experiment {exp} has no acc/gyro files", lab_e.display(), line)
                continue
            d = exps[exp]
            n = len(d["labels"])
            if user != d["user"]:
                bad(f"experiment {exp} belongs to user {d['user']} ({d['acc_e'].logical}), not {user}",
                    lab_e.display(), line)
            elif not 1 <= act <= len(ACTIVITIES):
                bad(f"unknown activity id {act}; HAPT has 1..{len(ACTIVITIES)}", lab_e.display(), line)
            elif not 0 <= start <= end < n:
                bad(f"segment {start}..{end} lies outside experiment {exp}'s {n} samples "
                    "(0-based, inclusive)", lab_e.display(), line)
            elif (d["labels"][start: end + 1] != "").any():
                bad(f"segment {start}..{end} overlaps another labelled segment of experiment {exp}",
                    lab_e.display(), line)
            else:
                d["labels"][start: end + 1] = ACTIVITIES[act - 1]

    # ---- layout 2: UCI HAR Dataset windows

    def _load_windows(self, folder: DataFolder, bad: BadRows, split: str, files: dict[str, Entry]) -> list[Recording]:
        tables = {}
        for key, e in files.items():
            limit = (np.inf if key in ("subject", "y") else GYRO_LIMIT if key.startswith("body_gyro")
                     else ACC_LIMIT / GRAVITY)  # ids, rad/s, g
            t = read_table(folder, e, bad, 1 if key in ("subject", "y") else WINDOW, limit=limit)
            if t is None:
                return []  # reported; without one of the files the split cannot be read
            tables[key] = t
        lens = {k: len(t.values) for k, t in tables.items()}
        if len(set(lens.values())) != 1:
            bad(f"the {split} files must have one row per window each, but have "
                + ", ".join(f"{files[k].logical}: {n}" for k, n in lens.items()), files["y"].display())
            return []
        tables["subject"] = integers(tables["subject"], files["subject"], bad, 1, 10**6, "subject ids")
        tables["y"] = integers(tables["y"], files["y"], bad, 1, HAR_ACTIVITIES, "activity ids")
        ok = np.logical_and.reduce([t.ok for t in tables.values()])
        acc = np.stack([tables[f"total_acc_{a}"].values for a in "xyz"], axis=-1)  # (N, 128, 3)
        gyro = np.stack([tables[f"body_gyro_{a}"].values for a in "xyz"], axis=-1)
        subj = tables["subject"].values[:, 0]
        y = tables["y"].values[:, 0]

        both = np.concatenate([acc, gyro], axis=-1)  # (N, 128, 6)
        link = (
            ok[:-1] & ok[1:] & (subj[:-1] == subj[1:]) & (y[:-1] == y[1:])
            & (np.abs(both[:-1, WINDOW - OVERLAP:] - both[1:, :OVERLAP]) <= STITCH_ATOL).all(axis=(1, 2))
        )
        starts = [i for i in range(len(ok)) if ok[i] and (i == 0 or not link[i - 1])]
        recs = []
        for s in starts:
            e = s
            while e < len(link) and link[e]:
                e += 1
            a = np.concatenate([acc[s], acc[s + 1: e + 1, WINDOW - OVERLAP:].reshape(-1, 3)])
            g = np.concatenate([gyro[s], gyro[s + 1: e + 1, WINDOW - OVERLAP:].reshape(-1, 3)])
            first, last = int(tables["y"].lines[s]), int(tables["y"].lines[e])
            recs.append(Recording(
                acc=a * GRAVITY,
                gyro=g,
                rate=self.rate,
                labels=np.full(len(a), ACTIVITIES[int(y[s]) - 1]),
                subject=f"uci:{int(subj[s]):02d}",
                dataset=self.name,
                source=f"{files['total_acc_x'].display()} (rows {first}-{last})",
                device=self.device,
                position=self.position,
                session=f"{split}:{first}-{last}",
                extra={"split": split, "layout": "UCI HAR windows", "windows": e - s + 1},
            ).validate())
        return recs
