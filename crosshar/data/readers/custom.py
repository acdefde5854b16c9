"""Your own data: CSV files plus a `crosshar.toml` descriptor that says how to read them.

Point `--data-dir` (or CROSSHAR_DATA) at the folder holding `crosshar.toml`, or put that folder
at `<data dir>/custom/`, and use the dataset name `custom`. Files are read through DataFolder, so
they may be plain, gzip-compressed (`.csv.gz`) or inside a zip. A worked example is in
docs/custom_data.md. The descriptor's keys (unknown keys are an error):

    name                  short name, prefixes subject ids ("mylab:07")        default "custom"
    rate_hz               sampling rate in Hz                                   required
    files                 glob of the data files, relative to the folder        default "*.csv"
    delimiter             one character, "\\t" for tab-separated                default ","
    header                the first line holds column names                     default true
    acc_columns           three column names (needs header) or 0-based indices  required
    gyro_columns          three columns, or leave out for acc-only data         optional
    acc_unit              "m/s^2" or "g"                                        default "m/s^2"
    gyro_unit             "rad/s" or "deg/s"                                    default "rad/s"
    sign_convention       "android" (+9.8 up at rest) or "ios" (-1 g up)        default "android"
    gravity_included      must be true: crosshar needs acc including gravity    default true
    label_column          column holding the activity, or                       optional
    label_from_filename   regex with a named group (?P<label>...) on the path   optional
    subject_column        column holding the subject id, or                     one is required
    subject_from_filename regex with a named group (?P<subject>...) on the path
    timestamp_column      column holding time stamps (checked, resampled)       optional
    timestamp_unit        "s", "ms", "us" or "ns"                               default "s"
    max_gap_s             a longer gap between time stamps starts a new recording default 1.0
    position, device      free text, e.g. "pocket", "Pixel 7"                   optional
    [positions.NAME]      several body positions in one file (a table each, instead of the top-level
                          acc_columns, gyro_columns and position): acc_columns, gyro_columns and
                          optionally acc_unit, gyro_unit, sign_convention, axes, device; every file
                          gives one recording per position, selected as NAME@POSITION
    axes                  device axes in crosshar's frame, e.g. ["-y", "x", "z"]  default ["x", "y", "z"]
                          (applied to acc and gyro together, after units and sign_convention)
    join                  join consecutive files of one subject and activity    default false
                          into one recording (files cut into short pieces)
    [labels]              table: your label -> canonical name (crosshar.data.labels.VOCAB);
                          "" marks a label as unlabelled. Without it, labels must be canonical.

Why gravity must be included: crosshar's models read gravity (it is what separates sitting from
standing), and its physics-based augmentation rotates the full specific force. iOS reports the
negative of Android's specific force, so "ios" negates acc (the gyroscope has the same sign on
both platforms).

Without timestamps, rows are taken as uniformly sampled at rate_hz, and a recording ends where a
row was skipped (`--on-bad skip`) or a blank line interrupts the file. With them, time must
increase within each subject's run of rows (a row that goes back is reported through `bad`, unless
it goes back by more than max_gap_s and the rows after it go on from it: a clock reset, which starts
a new recording); the run is cut at gaps > max_gap_s; a span whose median rate is more than 10 % away from rate_hz
is reported (the declared rate would be wrong); a span with jitter (an interval more than 5 %
off 1/rate_hz) is linearly interpolated onto a uniform rate_hz grid, labels from the nearest row.
An empty label cell means "unlabelled" (kept for pretraining, never used as a class).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crosshar.config import _Config
from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry, read_bytes
from crosshar.data.labels import VOCAB
from crosshar.data.recording import Recording, out_of_range, range_problem
from crosshar.limits import GRAVITY
from crosshar.data.rows import Col, Rows, TextFile
from crosshar.data.timegrid import NS, grid, interpolate, nearest
from crosshar.errors import ConfigError, DataError, MissingDataError
from crosshar.limits import limit_of
from crosshar.registry import DATASETS

DESCRIPTOR = "crosshar.toml"
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
RATE_TOLERANCE = 0.10  # median rate vs rate_hz
JITTER_TOLERANCE = 0.05  # any interval vs 1 / rate_hz: beyond this, resample

ColumnRef = str | int
# what a [positions.NAME] table may set (the rest of the descriptor is shared by the positions)
POSITION_KEYS = ("acc_columns", "gyro_columns", "acc_unit", "gyro_unit", "sign_convention", "axes", "device")
POSITION_SEP = "@"  # crosshar.data.store's selector: NAME@POSITION


@dataclass(frozen=True)
class CustomDescriptor(_Config):
    """The parsed `crosshar.toml` (see module docstring for every key)."""

    name: str = "custom"
    rate_hz: float = 0.0
    files: str = "*.csv"
    delimiter: str = ","
    header: bool = True
    acc_columns: tuple = ()
    gyro_columns: tuple | None = None
    acc_unit: str = "m/s^2"
    gyro_unit: str = "rad/s"
    sign_convention: str = "android"
    gravity_included: bool = True
    label_column: ColumnRef | None = None
    label_from_filename: str | None = None
    subject_column: ColumnRef | None = None
    subject_from_filename: str | None = None
    timestamp_column: ColumnRef | None = None
    timestamp_unit: str = "s"
    max_gap_s: float = 1.0
    labels: dict = field(default_factory=dict)
    position: str | None = None
    device: str | None = None
    axes: tuple = ("x", "y", "z")
    join: bool = False
    positions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(isinstance(self.name, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", self.name)),
             f"name must be a short word (letters, digits, _ . -), got {self.name!r}")
        need(_number(self.rate_hz) and self.rate_hz > 0, "rate_hz is required and must be a positive number of Hz")
        need(isinstance(self.files, str) and bool(self.files), "files must be a glob such as \"*.csv\"")
        need(isinstance(self.delimiter, str) and len(self.delimiter) == 1,
             f"delimiter must be one character (\"\\t\" for tabs), got {self.delimiter!r}")
        need(isinstance(self.header, bool), "header must be true or false")
        need(self.gravity_included is True,
             "gravity_included = false: crosshar needs the accelerometer's total acceleration, gravity "
             "included (it separates sitting from standing and is what the rotation augmentation "
             "rotates). Export the raw accelerometer, or add the gravity vector back (on iOS: "
             "userAcceleration + gravity), then set gravity_included = true")
        for key in ("acc_columns", "gyro_columns"):
            cols = getattr(self, key)
            if cols is None and key == "gyro_columns" or self.positions and cols == ():
                continue
            need(isinstance(cols, tuple) and len(cols) == 3, f"{key} must list three columns (x, y, z)")
            for c in cols:
                self._check_ref(key, c)
        for key in ("label_column", "subject_column", "timestamp_column"):
            if getattr(self, key) is not None:
                self._check_ref(key, getattr(self, key))
        need(self.acc_unit in ("m/s^2", "g"), f"acc_unit must be \"m/s^2\" or \"g\", got {self.acc_unit!r}")
        need(self.gyro_unit in ("rad/s", "deg/s"), f"gyro_unit must be \"rad/s\" or \"deg/s\", got {self.gyro_unit!r}")
        need(self.sign_convention in ("android", "ios"),
             f"sign_convention must be \"android\" or \"ios\", got {self.sign_convention!r}")
        need(self.timestamp_unit in TIME_UNITS,
             f"timestamp_unit must be one of {', '.join(TIME_UNITS)}, got {self.timestamp_unit!r}")
        need(_number(self.max_gap_s) and self.max_gap_s > 0, "max_gap_s must be a positive number of seconds")
        need(not (self.label_column is not None and self.label_from_filename),
             "give label_column or label_from_filename, not both")
        need((self.subject_column is not None) != bool(self.subject_from_filename),
             "give exactly one of subject_column or subject_from_filename: crosshar splits train and "
             "test by subject, so it must know whose data each row is")
        for key, group in (("label_from_filename", "label"), ("subject_from_filename", "subject")):
            rx = getattr(self, key)
            if rx is None:
                continue
            try:
                compiled = re.compile(rx)
            except re.error as e:
                raise ValueError(f"{key} is not a valid regular expression ({e})") from None
            need(group in compiled.groupindex, f"{key} needs a named group (?P<{group}>...), got {rx!r}")
        need(isinstance(self.labels, dict), "labels must be a table: [labels] your_name = \"canonical_name\"")
        for k, v in self.labels.items():
            need(isinstance(v, str) and (v == "" or v in VOCAB),
                 f"labels.{k} = {v!r} is not a canonical activity; use one of {', '.join(VOCAB)} "
                 "(or \"\" for unlabelled)")
        for key in ("position", "device"):
            need(getattr(self, key) is None or isinstance(getattr(self, key), str), f"{key} must be text")
        axes_matrix(self.axes)
        need(isinstance(self.join, bool), "join must be true or false")
        need(isinstance(self.positions, dict), "positions must be tables: [positions.wrist] acc_columns = [...]")
        if self.positions:
            need(self.acc_columns == () and self.gyro_columns is None and self.position is None,
                 "with [positions.NAME] tables, acc_columns, gyro_columns and position go inside each table")
            views = self.views()
            need(len({v.gyro_columns is None for v in views}) == 1,
                 "every position must have the same sensors: give gyro_columns for all of them or for none "
                 "(a position without a gyroscope cannot share 6-channel windows with the others)")

    def views(self) -> list["CustomDescriptor"]:
        """One descriptor per body position ([positions.NAME] tables), or [self] without them."""
        if not self.positions:
            return [self]
        out = []
        for name, table in self.positions.items():
            if not isinstance(table, dict):
                raise ValueError(f"positions.{name} must be a table with acc_columns (and gyro_columns, ...)")
            unknown = sorted(set(table) - set(POSITION_KEYS))
            if unknown:
                raise ValueError(f"positions.{name}: unknown key(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(POSITION_KEYS)}")
            if "acc_columns" not in table:
                raise ValueError(f"positions.{name} needs acc_columns")
            if not name.strip() or POSITION_SEP in name or "/" in name or not _selector(name):
                raise ValueError(f"positions.{name!r}: a position name is a word or two of letters and digits (a-z, "
                                 f"0-9), without {POSITION_SEP!r} or '/', so that NAME@POSITION can select it")
            same = [other for other in out if _selector(other.position) == _selector(name)]
            if same:
                raise ValueError(f"positions.{name} and positions.{same[0].position} are one position to NAME@POSITION "
                                 f"(both select as {_selector(name)!r}): rename one")
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
            try:
                out.append(dataclasses.replace(self, positions={}, position=name, **kw))
            except ValueError as e:
                raise ValueError(f"positions.{name}: {e}") from None
        return out

    @property
    def has_gyro(self) -> bool:
        return self.views()[0].gyro_columns is not None

    def _check_ref(self, key: str, ref: object) -> None:
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise ValueError(f"{key}: a column is a name or a 0-based index, got {ref!r}")
        if isinstance(ref, int) and ref < 0:
            raise ValueError(f"{key}: column index {ref} is negative")
        if isinstance(ref, str) and not self.header:
            raise ValueError(f"{key}: column {ref!r} is a name but header = false; use 0-based indices")


def read_descriptor(folder: DataFolder) -> CustomDescriptor:
    """Parse and check `crosshar.toml` at the folder's root (ConfigError naming the key)."""
    e = folder.find(DESCRIPTOR)
    if e is None:
        raise MissingDataError(
            f"no {DESCRIPTOR} in {folder.root}: a custom dataset needs a descriptor that says how to "
            "read its files (rate, columns, units, labels); see docs/custom_data.md"
        )
    try:
        d = tomllib.loads(read_bytes(e).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{e.display()}: not valid TOML: {err}") from None
    return CustomDescriptor.from_dict(d, source=e.display())


@DATASETS.register("custom")
class Custom(Dataset):
    """A folder of the user's CSV files described by `crosshar.toml` (see module docstring)."""

    name = "custom"
    title = "your own data (crosshar.toml)"
    folders = ("custom",)
    layouts = f"a folder with {DESCRIPTOR} and CSV files (see docs/custom_data.md)"
    url = ""
    citation = ""
    keeps_unlabelled = True  # "" in [labels] or an empty label cell: windows for pretraining
    short_hint = "`join = true` in crosshar.toml joins consecutive files"

    def locate(self, data_dir: str | Path) -> Path:
        """`data_dir` itself when it holds crosshar.toml, else `<data_dir>/custom`."""
        data_dir = Path(data_dir)
        if (data_dir / DESCRIPTOR).is_file():
            return data_dir
        for f in self.folders:
            if (data_dir / f / DESCRIPTOR).is_file():
                return data_dir / f
        raise MissingDataError(
            f"no {DESCRIPTOR} in {data_dir} or {data_dir / 'custom'}: point --data-dir at the folder "
            f"holding your CSV files and their {DESCRIPTOR} descriptor (see docs/custom_data.md)"
        )

    def config_digest(self, folder: DataFolder) -> str:
        """The descriptor's bytes (labels, units, axes, columns... all change the windows)."""
        e = folder.find(DESCRIPTOR)
        return "" if e is None else hashlib.sha256(read_bytes(e)).hexdigest()[:16]

    def files(self, folder: DataFolder) -> list[Entry]:
        desc = read_descriptor(folder)
        return [e for e in folder.glob(desc.files) if e.logical != DESCRIPTOR]

    def has_gyro(self, folder: DataFolder) -> bool:
        return read_descriptor(folder).has_gyro

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        desc = read_descriptor(folder)
        files = [e for e in folder.glob(desc.files) if e.logical != DESCRIPTOR]
        if not files:
            raise MissingDataError(f"no files match files = {desc.files!r} under {folder.root} ({DESCRIPTOR})")
        recs: list[Recording] = []
        for e in files:
            recs += self._file(folder, e, desc, bad)
        if not desc.join:
            return recs
        order = {v.position: k for k, v in enumerate(desc.views())}
        return join_consecutive(sorted(recs, key=lambda r: order[r.position]))  # each position's files in order

    def _file(self, folder: DataFolder, e: Entry, desc: CustomDescriptor, bad: BadRows) -> list[Recording]:
        """The file's recordings: per body position (one without [positions] tables), per subject and span."""
        tf = TextFile(folder, e)
        if b"\x00" in tf.raw[:4096]:
            bad("not UTF-8 text: it holds NUL bytes (UTF-16, as Excel's \"Unicode Text\" saves, or a binary file); "
                "save it as CSV UTF-8", tf.source)
            return []
        views = desc.views()
        cols = _columns(tf, desc, views, bad)
        if cols is None:
            return []
        fixed = {}
        for key in ("label", "subject"):
            rx = getattr(desc, f"{key}_from_filename")
            if rx:
                m = re.search(rx, e.logical)
                if m is None:
                    bad(f"the file's path does not match {key}_from_filename = {rx!r}", tf.source)
                    return []
                fixed[key] = m.group(key)
        # every line has the fields of the header (the first line), or without one of the first line that is not
        # blank: a blank first line had left the count unchecked, and two lines run together read as one
        first = next(((i, f) for i, f in enumerate(tf.head(1 if desc.header else 20, desc.delimiter), 1)
                      if any(x.strip() for x in f)), (1, None))
        width = len(first[1]) if first[1] else None
        if width is not None and max(c.index for c in cols) >= width:
            bad(f"column index {max(c.index for c in cols)} is beyond the {width} fields of the first line",
                tf.source, first[0])
            return []
        rows = tf.rows(cols, bad, delimiter=desc.delimiter, skip=1 if desc.header else 0, ncols=width)
        if len(rows) == 0:
            bad("no data rows", tf.source)
            return []
        rows = _check_values(rows, desc, views, fixed, bad)
        if "t" in rows.cols:
            _check_rate(rows, desc)
        spans = []  # (subject, [(row indices, ns times or None)]) of the file, shared by its positions
        for subject, sl in _subject_runs(rows["subject"]):
            if "t" in rows.cols:
                parts = _time_spans(rows, sl, desc, bad)
            else:  # a skipped row (or a blank line) is a hole in time: cut there
                cuts = np.flatnonzero(np.diff(rows.lines[sl]) > 1) + 1 + sl.start
                bounds = [sl.start, *cuts.tolist(), sl.stop]
                parts = [(np.arange(a, b), None) for a, b in zip(bounds[:-1], bounds[1:])]
            spans.append((subject, parts))
        recs: list[Recording] = []
        for view in views:
            pre = f"{view.position}/" if len(views) > 1 else ""
            recs += self._recordings(rows, pre, spans, view, tf.source, e.logical)
        return recs

    def _recordings(self, rows: Rows, pre: str, spans: list, desc: CustomDescriptor, source: str,
                    logical: str) -> list[Recording]:
        """One body position's recordings of a file in canonical units: `desc` that position's view, `pre` the
        prefix of its sensor columns ("" for a file of one position), `spans` the file's subjects and spans."""
        acc = np.stack([rows[f"{pre}acc{k}"] for k in range(3)], axis=1)
        acc = acc * (GRAVITY if desc.acc_unit == "g" else 1.0) * (-1.0 if desc.sign_convention == "ios" else 1.0)
        gyro = None
        if desc.gyro_columns is not None:
            gyro = np.stack([rows[f"{pre}gyro{k}"] for k in range(3)], axis=1)
            gyro = gyro * (math.pi / 180 if desc.gyro_unit == "deg/s" else 1.0)
        if tuple(desc.axes) != ("x", "y", "z"):
            m = axes_matrix(desc.axes)
            acc, gyro = acc @ m.T, None if gyro is None else gyro @ m.T
        recs = []
        where = f"{logical}:{desc.position}" if pre else logical
        for subject, parts in spans:
            for idx, t in parts:
                a, g, lab = acc[idx], None if gyro is None else gyro[idx], rows["label"][idx]
                if t is not None:  # jittery: onto a uniform grid
                    u = grid(int(t[0]), int(t[-1]), desc.rate_hz)
                    a = interpolate(t, a, u)
                    g = None if g is None else interpolate(t, g, u)
                    lab = lab[nearest(t, u)]
                recs.append(Recording(
                    acc=a, gyro=g, rate=float(desc.rate_hz), labels=np.asarray(lab, dtype=str),
                    subject=f"{desc.name}:{subject}", dataset=self.name, source=source,
                    device=desc.device, position=desc.position,
                    session=f"{where}:{subject}:{len(recs)}",
                    extra={"first_line": int(rows.lines[idx][0]), "resampled": t is not None},
                ).validate())
        return recs


def _selector(position: str | None) -> str:
    """A position as NAME@POSITION compares it (crosshar.data.store.position_key)."""
    from crosshar.data.store import position_key

    return position_key(position or "")


def axes_matrix(axes) -> np.ndarray:
    """(3, 3) signed permutation M with v_crosshar = M @ v_device, from e.g. ["-y", "x", "z"].

    Entry k names the device axis (with an optional sign) that becomes crosshar's axis k. It is
    applied to acc and gyro alike: a rotation (det +1) re-mounts the device; a reflection (det -1)
    mirrors both sensors and the handedness check at prepare time will flag it.
    """
    ok = isinstance(axes, (list, tuple)) and len(axes) == 3 and all(
        isinstance(a, str) and re.fullmatch(r"[+-]?[xyz]", a) for a in axes)
    if not ok or sorted(a[-1] for a in axes) != ["x", "y", "z"]:
        raise ValueError(f"axes must name x, y and z once each, with an optional sign, e.g. [\"-y\", \"x\", \"z\"]; "
                         f"got {axes!r}")
    m = np.zeros((3, 3))
    for k, a in enumerate(axes):
        m[k, "xyz".index(a[-1])] = -1.0 if a.startswith("-") else 1.0
    return m


def join_consecutive(recs: list[Recording]) -> list[Recording]:
    """Join recordings that follow one another (file order) and share a subject, a body position and a
    single activity: a session exported as many short files becomes one recording, so that its windows
    can straddle the file boundaries. Pieces of one file (cut at a time gap or a skipped row) stay apart."""
    out: list[Recording] = []
    last: list[str] = []  # the file of each output recording's last piece
    for r in recs:
        prev = out[-1] if out else None
        one = len(r) and (r.labels == r.labels[0]).all()
        if (prev is not None and one and last[-1] != r.source and prev.subject == r.subject
                and prev.position == r.position
                and (prev.labels == r.labels[0]).all()
                and prev.rate == r.rate and (prev.gyro is None) == (r.gyro is None)):
            n = prev.extra.get("joined", 1) + 1
            out[-1] = Recording(
                acc=np.concatenate([prev.acc, r.acc]),
                gyro=None if r.gyro is None else np.concatenate([prev.gyro, r.gyro]),
                rate=r.rate, labels=np.concatenate([prev.labels, r.labels]), subject=r.subject,
                dataset=r.dataset, source=prev.extra.get("first_source", prev.source) + f" (+{n - 1} joined)",
                device=r.device, position=r.position, session=prev.session,
                extra=prev.extra | {"joined": n, "first_source": prev.extra.get("first_source", prev.source)},
            ).validate()
            last[-1] = r.source
        else:
            out.append(r)
            last.append(r.source)
    return out


def _columns(tf: TextFile, desc: CustomDescriptor, views: list[CustomDescriptor], bad: BadRows) -> list[Col] | None:
    """The columns to read, names resolved against the header line; each position's sensors prefixed
    "<position>/" when there are several."""
    names: list[str] = []
    if desc.header:
        head = tf.head(1, desc.delimiter)
        names = [h.strip() for h in head[0]] if head else []
        if not any(names):
            bad("the file is empty" if not tf.raw.strip() else "the first line is empty, but header = true in "
                f"{DESCRIPTOR} says it holds the column names", tf.source, None if not tf.raw.strip() else 1)
            return None

    def index(ref: ColumnRef) -> int | None:
        if isinstance(ref, int):
            return ref
        if ref not in names:
            bad(f"column {ref!r} is not in the header line ({', '.join(map(repr, names))})", tf.source, 1)
            return None
        return names.index(ref)

    wanted: list[tuple[str, ColumnRef, str]] = []
    for v in views:
        pre = f"{v.position}/" if len(views) > 1 else ""
        wanted += [(f"{pre}acc{k}", c, "f") for k, c in enumerate(v.acc_columns)]
        if v.gyro_columns is not None:
            wanted += [(f"{pre}gyro{k}", c, "f") for k, c in enumerate(v.gyro_columns)]
    for key, kind in (("label", "s"), ("subject", "s"), ("timestamp", "f")):
        ref = getattr(desc, f"{key}_column")
        if ref is not None:
            wanted.append(("t" if key == "timestamp" else key, ref, kind))
    cols = []
    for name, ref, kind in wanted:
        j = index(ref)
        if j is None:
            return None
        cols.append(Col(name, j, kind, 64, label=f"{_key(name)} = {ref!r}"))
    by_index: dict[int, tuple[str, ColumnRef]] = {}
    for c, (_, ref, _) in zip(cols, wanted):
        if c.index in by_index:
            first, first_ref = by_index[c.index]
            what = repr(ref) if ref == first_ref else f"{first_ref!r} and {ref!r} (both column {c.index})"
            raise ConfigError(f"{tf.source}: column {what} is used twice in {DESCRIPTOR}: by {_key(first)} and "
                              f"{_key(c.name)}")
        by_index[c.index] = (c.name, ref)
    return cols


def _key(column: str) -> str:
    """The descriptor key behind one of `_columns`' names: "ankle/gyro1" -> "positions.ankle.gyro_columns[1]"."""
    position, _, name = column.rpartition("/")
    key = {"label": "label_column", "subject": "subject_column", "t": "timestamp_column"}.get(name)
    if key is None:
        key = f"{'acc' if name.startswith('acc') else 'gyro'}_columns[{name[-1]}]"
    return f"positions.{position}.{key}" if position else key


def _check_values(rows: Rows, desc: CustomDescriptor, views: list[CustomDescriptor], fixed: dict[str, str],
                  bad: BadRows) -> Rows:
    """Labels mapped to the vocabulary, subjects present, values finite and within an IMU's range (each position's
    in its own units; a bad value drops the row for every position), time increasing."""
    n = len(rows)
    for key in ("label", "subject"):
        if key in fixed:
            rows.cols[key] = np.full(n, fixed[key])
        elif key not in rows.cols:
            rows.cols[key] = np.full(n, "")
        else:
            rows.cols[key] = np.char.strip(rows[key].astype(str))
    raw = rows["label"]
    uniq, inv = np.unique(raw, return_inverse=True)
    if desc.labels:
        ok = np.array([u == "" or u in desc.labels for u in uniq.tolist()], bool)
        canon = np.array([desc.labels.get(u, "") for u in uniq.tolist()], dtype=str)
        why = "is not in the [labels] table of " + DESCRIPTOR
    else:
        ok = np.array([u == "" or u in VOCAB for u in uniq.tolist()], bool)
        canon = uniq.astype(str)
        why = f"is not a canonical activity name; map it in a [labels] table of {DESCRIPTOR}"
    inv = inv.reshape(-1)
    rows.cols["label"] = canon[inv] if len(uniq) else raw
    rows = rows.reject(~ok[inv] if len(uniq) else np.zeros(0, bool),
                       lambda i: f"unknown label {str(raw[i])!r}: it {why}", bad)
    rows = rows.reject(rows["subject"] == "", lambda i: "empty subject", bad)
    by_position = {v.position: v for v in views}

    def limit_of_column(name: str) -> float:  # an IMU's range in the file's units, for a column of `_columns`
        position, _, channel = name.rpartition("/")
        v = by_position[position] if position else views[0]
        if channel.startswith("gyro"):
            return limit_of(channel) / (math.pi / 180 if v.gyro_unit == "deg/s" else 1.0)
        return limit_of(channel) / (GRAVITY if v.acc_unit == "g" else 1.0)

    sensors = [k for k in rows.cols if k.rpartition("/")[2].startswith(("acc", "gyro"))]
    limit = np.array([limit_of_column(k) for k in sensors] + ([math.inf] if "t" in rows.cols else []))
    vals = np.stack([rows[k] for k in sensors + (["t"] if "t" in rows.cols else [])], axis=1)

    def problem(i: int) -> str:  # the first bad value of row i, and its position when the file has several
        j = int(np.flatnonzero(~(np.abs(vals[i]) <= limit))[0])
        where = f" (position {sensors[j].rpartition('/')[0]})" if j < len(sensors) and "/" in sensors[j] else ""
        return range_problem(vals[i, j: j + 1], limit[j: j + 1]) + where

    rows = rows.reject(out_of_range(vals, limit), problem, bad)
    if "t" in rows.cols:
        t, subj = rows["t"], rows["subject"]
        back = np.zeros(len(t), bool)
        reset_s = desc.max_gap_s / TIME_UNITS[desc.timestamp_unit]  # max_gap_s in the file's time unit
        for _, sl in _subject_runs(subj):
            back[sl] = out_of_order(t[sl], reset_s)
        rows = rows.reject(back, lambda i: f"time stamp {t[i]:g} does not increase", bad)
    return rows


def out_of_order(ts: np.ndarray, reset: float) -> np.ndarray:
    """(n,) bool: the time stamps `ts` (n,) of one subject's run of rows that do not increase.

    A stamp is compared with the last one kept before it. One that goes back by more than `reset` while the row
    after it goes on from it (a logger restarted, two sessions appended) is the clock reset: it starts a new
    recording (`_time_spans` cuts where time goes back), as a forward gap longer than that does, and is not
    flagged. Any other stamp that goes back or repeats one is flagged alone, so that after a reset the rows
    that follow are read, not each reported as going back.
    """
    flagged = np.zeros(len(ts), bool)
    if len(ts) < 2 or bool(np.all(np.diff(ts) > 0)):
        return flagged
    last = ts[0]
    for i in range(1, len(ts)):
        if ts[i] > last:
            last = ts[i]
        elif ts[i] < last - reset and i + 1 < len(ts) and ts[i] < ts[i + 1] <= last:
            last = ts[i]  # the clock was reset: a new recording starts here
        else:
            flagged[i] = True
    return flagged


def _check_rate(rows: Rows, desc: CustomDescriptor) -> None:
    """The file's median time-stamp interval must match rate_hz: a wrong timestamp_unit is an error.

    (Per span, `_time_spans` checks again; this catches a unit off by 1000, which would otherwise
    cut every sample into its own recording at the max_gap_s test.)
    """
    dt = np.concatenate([np.diff(rows["t"][sl]) for _, sl in _subject_runs(rows["subject"])] or [np.zeros(0)])
    dt = dt[dt > 0] * TIME_UNITS[desc.timestamp_unit]
    if len(dt) == 0:
        return
    rate = 1.0 / float(np.median(dt))
    if abs(rate / desc.rate_hz - 1) > RATE_TOLERANCE:
        raise DataError(f"the time stamps imply {rate:.4g} Hz (median interval {np.median(dt):.4g} s with "
                        f"timestamp_unit = {desc.timestamp_unit!r}) but {DESCRIPTOR} says rate_hz = {desc.rate_hz:g}; "
                        f"fix timestamp_unit or rate_hz", rows.source)


def _subject_runs(subject: np.ndarray):
    """(subject, slice) of each run of consecutive rows of one subject."""
    if len(subject) == 0:
        return
    cuts = np.concatenate([[0], np.flatnonzero(subject[1:] != subject[:-1]) + 1, [len(subject)]])
    for s, e in zip(cuts[:-1], cuts[1:]):
        yield str(subject[s]), slice(int(s), int(e))


def _time_spans(rows: Rows, sl: slice, desc: CustomDescriptor, bad: BadRows):
    """[(row indices, ns times or None)] per span of one subject's run, cut at gaps and at skipped rows.

    The times come back only when the span must be resampled (jitter); otherwise the rows are
    taken as uniformly sampled. A row skipped (`--on-bad skip`: an unknown label, a bad value) or a blank line
    cuts the span, as it does without timestamps: resampled over, the hole was filled with invented samples
    labelled as the rows beside it (up to max_gap_s of an unmapped activity read as, say, walking).
    """
    t0 = rows["t"][sl]
    t = np.round((t0 - t0[0]) * (TIME_UNITS[desc.timestamp_unit] * NS)).astype(np.int64)
    out = []
    cut = (np.diff(t) > desc.max_gap_s * NS) | (np.diff(t) <= 0) | (np.diff(rows.lines[sl]) > 1)  # <= 0: a clock reset
    starts = np.concatenate([[0], np.flatnonzero(cut) + 1, [len(t)]])
    for s, e in zip(starts[:-1], starts[1:]):
        idx = np.arange(sl.start + s, sl.start + e)
        ts = t[s:e]
        if len(ts) < 2:
            out.append((idx, None))
            continue
        dt = np.diff(ts) / NS
        rate = 1.0 / float(np.median(dt))
        if abs(rate / desc.rate_hz - 1) > RATE_TOLERANCE:
            bad(f"time stamps give a rate of {rate:.4g} Hz here but rate_hz = {desc.rate_hz:g} "
                f"(check rate_hz and timestamp_unit = {desc.timestamp_unit!r}): the {len(idx)} rows of lines "
                f"{int(rows.lines[idx[0]])}-{int(rows.lines[idx[-1]])}", rows.source, int(rows.lines[idx[0]]))
            continue
        jitter = np.abs(dt * desc.rate_hz - 1).max() > JITTER_TOLERANCE
        out.append((idx, ts if jitter else None))
    return out


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
