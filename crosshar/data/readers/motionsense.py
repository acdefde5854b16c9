"""MotionSense: iPhone 6s in the front trouser pocket, 24 subjects, 6 activities, 50 Hz.

Layouts (Malekzadeh et al. 2019; github mmalekzadeh/motion-sense):

- A (preferred): `A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv`, Core Motion's device motion:
  `,attitude.roll,attitude.pitch,attitude.yaw,gravity.x,gravity.y,gravity.z,rotationRate.x,
  rotationRate.y,rotationRate.z,userAcceleration.x,userAcceleration.y,userAcceleration.z`
  (first column = row index; gravity and userAcceleration in g, rotationRate in rad/s).
- B + C: `B_Accelerometer_data/<act>_<trial>/sub_<n>.csv` (raw accelerometer, g) and
  `C_Gyroscope_data/...` (raw gyroscope, rad/s), both `,x,y,z`, aligned row by row.

Also read from the distribution's zips (`A_DeviceMotion_data.zip`, ...) through DataFolder. One
Recording per (trial folder, subject); the activity comes from the folder prefix (dws, ups, wlk,
jog, sit, std).

Sign convention, and why acc is negated but gyro is not:

- iOS and Android share the same right-handed device frame (x to the right of the screen, y to
  its top edge, z out of the screen). They differ in what the accelerometer reports: Android
  reports the specific force (+1 g on the axis pointing up at rest: lying face up, z = +9.8);
  Core Motion reports its negative (lying face up, raw z = gravity.z = -1 g, with raw =
  gravity + userAcceleration). So the Android-convention total acceleration is
  -(gravity + userAcceleration) x 9.80665 m/s^2 (layout A) and -raw x 9.80665 (layout B).
- The rotation rate is an angular velocity in that same right-handed frame, positive by the
  right-hand rule on both platforms, so it is kept as is. Negating the three acc axes is not a
  change of frame (it would be a point reflection, not a rotation, and an angular velocity is an
  axial vector that a point reflection leaves unchanged anyway): it only converts one physical
  quantity into the other. Negating the gyro would make it rotate the wrong way.
- Checked on the real data (tests/data/test_motionsense.py): the slowly varying acc vector turns
  as the gyro says, d(acc)/dt = -omega x acc, with slope +0.90 pooled over the sitting trials
  (median trial 1.00; -1 would mean a flipped gyro); UCI's Android phone gives +0.92. Standing,
  the mean acc over all trials is (+0.25, -9.36, -0.12) m/s^2 (mean |acc| 9.87), pointing
  opposite to Core Motion's gravity vector in every trial: the phone sits top edge down in the
  pocket, so the axis pointing up is -y (UCI's waist phone: +x). That the total acceleration is
  the specific force and not its negative cannot be read off acc and gyro alone (the mirrored
  world with gravity pointing up produces the negated acc and the same gyro), so the overall
  sign rests on Apple's documented convention; the data confirm units, magnitude and the
  acc/gyro frame.
"""

from __future__ import annotations

import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording
from crosshar.limits import GRAVITY
from crosshar.data.rows import Table, read_table
from crosshar.limits import ACC_LIMIT, GYRO_LIMIT
from crosshar.registry import DATASETS

ACTIVITIES: dict[str, str] = {
    "dws": "downstairs", "ups": "upstairs", "wlk": "walking",
    "jog": "jogging", "sit": "sitting", "std": "standing",
}

A_COLUMNS: tuple[str, ...] = (
    "attitude.roll", "attitude.pitch", "attitude.yaw", "gravity.x", "gravity.y", "gravity.z",
    "rotationRate.x", "rotationRate.y", "rotationRate.z",
    "userAcceleration.x", "userAcceleration.y", "userAcceleration.z",
)
XYZ_COLUMNS: tuple[str, ...] = ("x", "y", "z")

MAX_LENGTH_MISMATCH = 0.01  # B and C files may differ in length by at most 1 % (then truncated)

_NAME = re.compile(r"(?:^|/)([ABC])_(?:DeviceMotion|Accelerometer|Gyroscope)_data/([^/]+)/sub_(\d+)\.csv$")
_TRIAL = re.compile(r"([a-z]+)_(\d+)$")


@DATASETS.register("motion")
class MotionSense(Dataset):
    """MotionSense iPhone dataset (see module docstring for layouts and the sign convention)."""

    name = "motion"
    title = "MotionSense"
    folders = ("motionsense", "MotionSense")
    layouts = (
        "A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv (or A_DeviceMotion_data.zip), or "
        "B_Accelerometer_data/<act>_<trial>/sub_<n>.csv with C_Gyroscope_data/<act>_<trial>/sub_<n>.csv; "
        "plain or .gz"
    )
    url = "https://github.com/mmalekzadeh/motion-sense/raw/master/data/A_DeviceMotion_data.zip"
    sha256 = ""
    size = 0
    citation = (
        "M. Malekzadeh, R. G. Clegg, A. Cavallaro, H. Haddadi. Mobile Sensor Data Anonymization. "
        "Proc. ACM/IEEE IoTDI 2019, 49-58."
    )
    device = "iPhone 6s"
    position = "front trouser pocket"
    rate = 50.0

    def _layout(self, folder: DataFolder, kind: str) -> dict[tuple[str, int], Entry]:
        """{(trial folder, subject): entry} for layout kind "A", "B" or "C" (shortest root only)."""
        dirname = {"A": "A_DeviceMotion_data", "B": "B_Accelerometer_data", "C": "C_Gyroscope_data"}[kind]
        hits = [e for e in folder.glob(f"*{dirname}/*/sub_*.csv") if _NAME.search(e.logical)]
        if not hits:
            return {}
        root = min((e.logical[: e.logical.rindex(dirname + "/")] for e in hits), key=lambda r: (len(r), r))
        out = {}
        for e in hits:
            m = _NAME.search(e.logical)
            if e.logical.startswith(root + dirname + "/"):
                out[(m.group(2), int(m.group(3)))] = e  # type: ignore[union-attr]
        return out

    def files(self, folder: DataFolder) -> list[Entry]:
        a = self._layout(folder, "A")
        entries = list(a.values()) if a else [*self._layout(folder, "B").values(), *self._layout(folder, "C").values()]
        if not entries:
            raise self.no_files(folder, "MotionSense")
        return sorted(entries, key=lambda e: e.logical)

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        a = self._layout(folder, "A")
        if a:
            return [r for key, e in sorted(a.items()) if (r := self._load_a(folder, bad, key, e)) is not None]
        b, c = self._layout(folder, "B"), self._layout(folder, "C")
        if not b and not c:
            raise self.no_files(folder, "MotionSense")
        recs = []
        for key in sorted(set(b) | set(c)):
            if key not in c:
                bad(f"no matching gyroscope file C_Gyroscope_data/{key[0]}/sub_{key[1]}.csv", b[key].display())
            elif key not in b:
                bad(f"no matching accelerometer file B_Accelerometer_data/{key[0]}/sub_{key[1]}.csv", c[key].display())
            elif (r := self._load_bc(folder, bad, key, b[key], c[key])) is not None:
                recs.append(r)
        return recs

    def _activity(self, trial: str, entry: Entry, bad: BadRows) -> str | None:
        m = _TRIAL.fullmatch(trial)
        if m is None or m.group(1) not in ACTIVITIES:
            bad(f"unknown activity folder {trial!r}; MotionSense trial folders are <act>_<trial> with act in "
                + ", ".join(f"{k} ({v})" for k, v in ACTIVITIES.items()), entry.display())
            return None
        return ACTIVITIES[m.group(1)]

    def _header_ok(self, table: Table, entry: Entry, bad: BadRows, expected: tuple[str, ...]) -> bool:
        first = table.header[0].rstrip("\r") if table.header else ""
        cols = [c.strip().strip('"') for c in first.split(",")]
        if tuple(cols[1:]) != expected:
            bad(f"unexpected header {first[:200]!r}; expected ',{','.join(expected)}' (first column = row index)",
                entry.display(), 1)
            return False
        return True

    def _recording(self, acc: np.ndarray, gyro: np.ndarray, activity: str, key: tuple[str, int],
                   source: str, layout: str) -> Recording:
        trial, sub = key
        return Recording(
            acc=acc,
            gyro=gyro,
            rate=self.rate,
            labels=np.full(len(acc), activity),
            subject=f"motion:{sub:02d}",
            dataset=self.name,
            source=source,
            device=self.device,
            position=self.position,
            session=f"{trial}/sub_{sub}",
            extra={"trial": int(trial.rsplit("_", 1)[1]), "layout": layout},
        ).validate()

    def _load_a(self, folder: DataFolder, bad: BadRows, key: tuple[str, int], e: Entry) -> Recording | None:
        activity = self._activity(key[0], e, bad)
        if activity is None:
            return None
        # parse only gravity, rotationRate and userAcceleration (columns 4..12)
        g, w = ACC_LIMIT / GRAVITY / 2, GYRO_LIMIT  # gravity and user acceleration in g (their sum is checked), rad/s
        t = read_table(folder, e, bad, 1 + len(A_COLUMNS), delimiter=",", header=1, usecols=tuple(range(4, 13)),
                       limit=np.array([g, g, g, w, w, w, g, g, g]))
        if t is None or not self._header_ok(t, e, bad, A_COLUMNS):
            return None
        v = t.values[t.ok]
        gravity, rotation, user = v[:, 0:3], v[:, 3:6], v[:, 6:9]
        return self._recording(-(gravity + user) * GRAVITY, rotation, activity, key, e.display(), "A")

    def _load_bc(self, folder: DataFolder, bad: BadRows, key: tuple[str, int], be: Entry, ce: Entry) -> Recording | None:
        activity = self._activity(key[0], be, bad)
        if activity is None:
            return None
        ta = read_table(folder, be, bad, 4, delimiter=",", header=1, limit=np.array([np.inf, *[ACC_LIMIT / GRAVITY] * 3]))
        if ta is None or not self._header_ok(ta, be, bad, XYZ_COLUMNS):
            return None
        tg = read_table(folder, ce, bad, 4, delimiter=",", header=1, limit=np.array([np.inf, *[GYRO_LIMIT] * 3]))
        if tg is None or not self._header_ok(tg, ce, bad, XYZ_COLUMNS):
            return None
        na, ng = len(ta.values), len(tg.values)
        if abs(na - ng) > MAX_LENGTH_MISMATCH * max(na, ng):
            bad(f"has {ng} rows but {be.logical} has {na}; the accelerometer and gyroscope files of a trial "
                f"must be aligned row by row (at most {MAX_LENGTH_MISMATCH:.0%} length difference)", ce.display())
            return None
        n = min(na, ng)
        keep = ta.ok[:n] & tg.ok[:n]
        acc = -ta.values[:n][keep, 1:4] * GRAVITY
        gyro = tg.values[:n][keep, 1:4]
        return self._recording(acc, gyro, activity, key, f"{be.display()} + {ce.display()}", "B+C")
