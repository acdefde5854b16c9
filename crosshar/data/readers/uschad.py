"""USC-HAD (Zhang & Sawchuk 2012): one MotionNode IMU on the front right hip, 14 subjects, 100 Hz.

Each subject performed 12 activities 5 times; each trial is one MATLAB v5 file,
`USC-HAD/Subject<n>/a<activity>t<trial>.mat` (read plain, gzipped or inside `USC-HAD.zip`, which
`crosshar data download -d uschad` fetches). One file becomes one Recording: subject "uschad:<n>"
(from the folder), session "<n>_a<activity>t<trial>", label constant, device "MotionNode", position "hip".

What the dataset's readme says (its "Data collection Specification", found as copies of Readme.txt
in public repositories; sipi.usc.edu itself was not among the search results): MotionNode, 100 Hz,
±6 g, ±500 dps; files named a"m"t"n".mat; 13 fields (title, version, date, subject number, age,
height, weight, activity name, activity number, trial number, sensor_location, sensor_orientation,
sensor_readings); `sensor_readings` is (N, 6): acc x, y, z in g, then gyro x, y, z in deg/s; the
activities 1..12 as in ACTIVITIES. Variable names, from public loaders of the real files:
`sensor_readings`, `activity_number`, `subject`, `trial`, `activity` (the name), ...; `activity_number`
and `subject` are stored as text ("1"; MATLAB loaders call str2num on them), and some files (Subject
13's, says one loader) spell `activity_numbr`: both spellings, text or number, are read. The
activity is taken from that field and must agree with the file name; `subject`, when present, with
the folder. Anything else wrong (not a .mat file, no or a non-(N, 6) `sensor_readings`) goes to `bad`
naming the file; a NaN, infinite or out-of-range sample (crosshar.limits, checked in g and deg/s) goes
to `bad` with its 0-based sample index, and in skip mode the recording is cut there ("_1", "_2"...).

Units and signs: acc × 9.80665 -> m/s^2, gyro deg/s -> rad/s. Not confirmed from a primary source:
the "front right hip" placement (third-party descriptions; the paper's text was not readable here),
and the axes: one third-party summary says +x points down, +y forward, +z right. Nor is the sign:
values are kept as shipped, i.e. assumed to be specific force as a MEMS accelerometer measures it
(crosshar's Android convention, +1 g along the axis pointing up at rest). Gravity's size and the
acc/gyro handedness checks cannot tell a negated accelerometer; the turn of the walking circles can:
"Walking Left" is a full counter-clockwise circle (the paper's activity table, as crosshar.data.labels
notes; the readme copies only name it), so with a right-handed gyro its windows turn
counter-clockwise about the mean acc only if acc points up (`crosshar data prepare`'s turning figure,
and the real-data test in tests/data/test_uschad.py).
"""

from __future__ import annotations

import io
import re

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry, read_bytes_or_report
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.limits import GRAVITY, limit_of
from crosshar.registry import DATASETS

# activity_number 1..12: Walking Forward, Walking Left (a counter-clockwise circle), Walking Right
# (clockwise), Walking Upstairs, Walking Downstairs, Running Forward, Jumping Up, Sitting, Standing,
# Sleeping, Elevator Up, Elevator Down
ACTIVITIES: tuple[str, ...] = (
    "walking", "walking_left", "walking_right", "upstairs", "downstairs", "running", "jumping",
    "sitting", "standing", "lying", "elevator_up", "elevator_down",
)
RATE = 100.0
DEVICE = "MotionNode"
POSITION = "hip"
ACTIVITY_KEYS = ("activity_number", "activity_numbr")  # the second: a known misspelling in some files
# (6,) limits in the file's units: acc in g, gyro in deg/s
LIMIT = np.array([limit_of("acc") / GRAVITY] * 3 + [np.degrees(limit_of("gyro"))] * 3)
_FILE = re.compile(r"(?:^|/)Subject(\d+)/a(\d+)t(\d+)\.mat$")


@DATASETS.register("uschad")
class USCHAD(Dataset):
    """USC-HAD hip-worn MotionNode dataset (see module docstring for the format, units and signs)."""

    name = "uschad"
    title = "USC-HAD (USC human activity dataset)"
    folders = ("uschad", "USC-HAD", "usc-had")
    layouts = (
        "USC-HAD/Subject<n>/a<activity>t<trial>.mat (MATLAB v5 files; n 1..14, activity 1..12, trial 1..5), "
        "plain, .gz or inside USC-HAD.zip"
    )
    url = "https://sipi.usc.edu/had/USC-HAD.zip"  # the archive offered at https://sipi.usc.edu/had/
    sha256 = ""
    size = 0
    citation = (
        "M. Zhang, A. A. Sawchuk. USC-HAD: A Daily Activity Dataset for Ubiquitous Activity Recognition "
        "Using Wearable Sensors. ACM UbiComp 2012 Workshop on Situation, Activity and Goal Awareness "
        "(SAGAware), 2012."
    )

    def files(self, folder: DataFolder) -> list[Entry]:
        """The a<activity>t<trial>.mat entries, by subject, activity and trial."""
        return sorted((e for e in folder.glob("*Subject*/a*t*.mat") if _FILE.search(e.logical)), key=_order)

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        files = self.files(folder)
        if not files:
            raise self.no_files(folder, "USC-HAD")
        recs: list[Recording] = []
        seen: dict[tuple[int, int, int], str] = {}
        for e in files:
            subject, act, trial, _ = _order(e)
            if (subject, act, trial) in seen:
                bad(f"subject {subject}, activity {act}, trial {trial} again (also {seen[subject, act, trial]})",
                    e.display())
                continue
            seen[subject, act, trial] = e.logical
            x = _read(e, subject, act, bad)
            if x is not None:
                recs += _recordings(self.name, e, x, subject, act, trial, bad)
        return recs


def _read(e: Entry, subject: int, act: int, bad: BadRows) -> np.ndarray | None:
    """The file's sensor_readings, (n, 6) float64 in g and deg/s, once its fields are checked; None if bad."""
    from scipy.io import loadmat  # the [train] extra; .mat v5 holds arrays only (no pickle)

    where, raw = e.display(), read_bytes_or_report(e, bad)  # None: a truncated .gz, reported (skipped in skip mode)
    if raw is None:
        return None
    try:
        mat = loadmat(io.BytesIO(raw))
    except Exception as err:  # scipy raises MatReadError, ValueError, IndexError... on other bytes
        bad(f"not a readable MATLAB .mat file ({type(err).__name__}: {err})", where)
        return None
    key = next((k for k in ACTIVITY_KEYS if k in mat), None)
    number = _whole(mat[key]) if key else None
    subj = _whole(mat["subject"]) if "subject" in mat else subject
    x = np.asarray(mat.get("sensor_readings", []))
    if "sensor_readings" not in mat:
        bad("no sensor_readings variable (the (n, 6) samples)", where)
    elif x.ndim != 2 or x.shape[1] != 6 or len(x) == 0 or x.dtype.kind not in "fiu":
        bad(f"sensor_readings must be (n, 6) numbers (acc x y z in g, gyro x y z in deg/s), got {x.dtype} "
            f"{x.shape}", where)
    elif key is None:
        bad("no activity_number variable: the activity cannot be checked", where)
    elif number is None or not 1 <= number <= len(ACTIVITIES):
        bad(f"unknown {key} {_text(mat[key])!r}; USC-HAD has 1..{len(ACTIVITIES)}", where)
    elif number != act:
        bad(f"{key} {number} ({ACTIVITIES[number - 1]}) disagrees with the file name's activity {act}", where)
    elif subj != subject:
        bad(f"subject {_text(mat['subject'])!r} disagrees with the folder Subject{subject}", where)
    else:
        return x.astype(np.float64)
    return None


def _recordings(dataset: str, e: Entry, x: np.ndarray, subject: int, act: int, trial: int,
                bad: BadRows) -> list[Recording]:
    """x: (n, 6) in g and deg/s -> Recordings in m/s^2 and rad/s; bad samples reported and cut out."""
    off = out_of_range(x, LIMIT)
    for i in np.flatnonzero(off).tolist():
        bad(f"sample {i}: {range_problem(x[i], LIMIT)} (acc in g, gyro in deg/s)", e.display())
    bounds = np.flatnonzero(np.diff(np.r_[0, (~off).astype(np.int8), 0])).reshape(-1, 2)  # [start, end) runs
    return [Recording(
        acc=x[s:t, :3] * GRAVITY,
        gyro=np.deg2rad(x[s:t, 3:]),
        rate=RATE,
        labels=np.full(t - s, ACTIVITIES[act - 1]),
        subject=f"{dataset}:{subject}",
        dataset=dataset,
        source=e.display(),
        device=DEVICE,
        position=POSITION,
        session=f"{subject}_a{act}t{trial}" + (f"_{k}" if k else ""),
        extra={"trial": trial, "first_sample": int(s)},
    ).validate() for k, (s, t) in enumerate(bounds.tolist())]


def _order(e: Entry) -> tuple[int, int, int, str]:
    """(subject, activity, trial, logical path) of an a<activity>t<trial>.mat entry."""
    subject, act, trial = (int(g) for g in _FILE.search(e.logical).groups())  # type: ignore[union-attr]
    return subject, act, trial, e.logical


def _whole(v: np.ndarray) -> int | None:
    """A whole number stored as a 1-element number or text array ("1", [[1]], "1.0"); None otherwise."""
    a = np.asarray(v).ravel()
    try:
        f = float(str(a[0]).strip()) if a.size == 1 else float("nan")
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def _text(v: np.ndarray) -> str:
    a = np.asarray(v).ravel()
    return str(a[0]).strip() if a.size == 1 else str(a.tolist())[:40]
