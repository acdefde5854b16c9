"""Prepared datasets: windows cached as npz + a JSON manifest, rebuilt only when needed.

The cache key covers the dataset name, the window config, the raw files' fingerprint (names,
sizes, mtimes; for your own data also the content of its crosshar.toml) and PREP_VERSION (bumped when the windowing code changes meaning). Files are
written to a temporary name and renamed, so an interrupted prepare never leaves a half cache.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from crosshar import paths
from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.config import WindowConfig
from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder
from crosshar.data.checks import checks_by_position, turning_by_class, turning_warnings
from crosshar.data.windows import Tally, WindowSet, make_windows, normalize
from crosshar.errors import ConfigError, CrossharError, DataError
from crosshar.registry import DATASETS

PREP_VERSION = 4  # 3: kept/dropped tally, physical checks, unlabelled windows of custom data (unchanged when
# pre-windowed data began to be read as windows: the same windows, only its manifest counts no recordings);
# 4: the manifest records each recording's body position and device ("recordings"); the windows are unchanged


def get_dataset(name: str) -> Dataset:
    import crosshar.data  # noqa: F401  (registers the loaders)

    return DATASETS.get(name)()


@dataclass(frozen=True)
class Resolved:
    """A dataset ready to read: its name (registered, or the descriptor's `name` for a folder of
    your own data), its loader and its folder."""

    name: str
    dataset: Dataset
    folder: DataFolder
    position: str | None = None  # "shoaib@wrist": only the recordings worn there (select_position)

    @property
    def base(self) -> str:
        """The dataset's own name, without the position: what its cache and manifests are named after."""
        return self.name.rsplit(POSITION_SEP, 1)[0] if self.position else self.name

    def has_gyro(self) -> bool:
        """Whether its windows can hold a gyroscope: the dataset's switch (`Dataset.has_gyro`), and never at a position
        it reads without one (`Dataset.acc_only_positions`: MHEALTH's chest)."""
        return not acc_only_at(self.dataset, self.position) and self.dataset.has_gyro(self.folder)


def acc_only_at(ds: Dataset, position: str | None) -> bool:
    """Whether `ds` reads the recordings at `position` without a gyroscope by design (`Dataset.acc_only_positions`)."""
    return position is not None and position_key(position) in ds.acc_only_positions


POSITION_SEP = "@"


def position_key(position: str) -> str:
    """A body position as the selector compares it: "Front trouser pocket" -> "front_trouser_pocket"."""
    return re.sub(r"[^a-z0-9]+", "_", str(position).lower()).strip("_")


def split_position(spec: str | Path) -> tuple[str | Path, str | None]:
    """("shoaib", "wrist") for "shoaib@wrist"; (spec, None) for a dataset named or a folder given without one.

    The part after the last "@" selects the recordings worn at that body position (each reader records its
    recordings' positions: `crosshar data prepare` lists them); a registered name or a data folder whose own
    name holds an "@" is taken whole.
    """
    text = str(spec)
    if POSITION_SEP not in text or text in DATASETS or Path(text).is_dir():
        return spec, None
    base, position = text.rsplit(POSITION_SEP, 1)
    if not base or not position_key(position) or base.endswith(POSITION_SEP):
        raise ConfigError(f"{text!r}: a position selector reads DATASET@POSITION, e.g. shoaib@wrist")
    return base, position


def is_folder_spec(spec: str | Path) -> bool:
    """True when `spec` names a folder of your own data (it holds crosshar.toml) rather than a
    registered dataset."""
    from crosshar.data.readers.custom import DESCRIPTOR

    p = Path(spec)
    return str(spec) not in DATASETS and (p.name == DESCRIPTOR and p.is_file() or (p / DESCRIPTOR).is_file())


def resolve(spec: str | Path, data_dir: str | Path | None = None) -> Resolved:
    """A registered dataset found under the data folder (`--data-dir` / $CROSSHAR_DATA), or a
    folder holding `crosshar.toml`, read in place and named after its descriptor.

    The two are independent: a folder target never needs the data folder, so
    `cross -d uci -td ./mylab` reads uci from $CROSSHAR_DATA and mylab from ./mylab.
    """
    import crosshar.data  # noqa: F401  (registers the loaders)
    from crosshar.data.readers.custom import DESCRIPTOR, read_descriptor

    base, position = split_position(spec)
    if position is not None:
        r = resolve(base, data_dir)
        return Resolved(f"{r.name}{POSITION_SEP}{position_key(position)}", r.dataset, r.folder, position)
    if is_folder_spec(spec):
        p = Path(spec).resolve()  # one folder, one cache, however its path was typed (./lab, /home/me/lab)
        folder = DataFolder(p.parent if p.name == DESCRIPTOR else p)
        name = read_descriptor(folder).name
        if name in DATASETS and name != "custom":
            raise ConfigError(f"{folder.root / DESCRIPTOR}: name = {name!r} is a registered dataset; "
                              f"give your data a name of its own")
        return Resolved(name, get_dataset("custom"), folder)
    spec = str(spec)
    if spec not in DATASETS:
        hint = (f"; {spec} has no {DESCRIPTOR} (see docs/custom_data.md)" if Path(spec).is_dir()
                else " or a folder holding crosshar.toml (your own data, docs/custom_data.md)")
        raise ConfigError(f"unknown dataset {spec!r}; give one of {', '.join(DATASETS.names())}{hint}")
    ds = get_dataset(spec)
    return Resolved(spec, ds, DataFolder(ds.locate(paths.data_dir(data_dir))))


def check_specs(specs: list[str], data_dir: str | Path | None = None) -> None:
    """Fail at once (before any training) on a name that is neither registered nor a data folder, and on
    a position the dataset's prepared windows (when any are cached for the data folder it is read from) do not hold."""
    import crosshar.data  # noqa: F401

    for s in specs:
        base, position = split_position(s)
        if position is not None:
            check_specs([str(base)], data_dir)
            if str(base) in DATASETS:  # its positions: those of its newest version prepared from this data folder
                name = str(base)
                try:
                    root = resolve(name, data_dir).folder.root
                except CrossharError:  # not found: prepare says so, with the layout it looks for
                    continue
                for m in cached(name):
                    man = read_manifest(m)
                    if prepared_from(man, root) and (known := recording_positions(man)):  # + those 6 channels left out
                        _positions_hold(name, position, known + list(get_dataset(name).acc_only_positions), "recordings")
                        break
            else:  # your own data: the positions its crosshar.toml names now (a cache may predate an edit)
                r = resolve(base)
                from crosshar.data.readers.custom import read_descriptor

                known = [v.position for v in read_descriptor(r.folder).views() if v.position]
                if known:
                    _positions_hold(r.name, position, known, "")
        elif s not in DATASETS and not is_folder_spec(s):
            resolve(s)


def resolve_window_config(ds: Dataset, folder: DataFolder, cfg: WindowConfig | None, name: str | None = None,
                          gyro: bool | None = None) -> WindowConfig:
    """The dataset's fixed profile when it has one (pre-windowed data), else `cfg` or the default (`name`: the
    dataset as the user named it, for messages; `gyro`: whether it has a gyroscope, `Resolved.has_gyro`, when a
    position decides it, else the dataset's switch)."""
    prof = ds.profile(folder)
    if prof is None:
        cfg = cfg or WindowConfig()
        if cfg.channels == "acc+gyro" and not (ds.has_gyro(folder) if gyro is None else gyro):
            raise ConfigError(f"dataset {name or ds.name!r} has no gyroscope here; use channels = \"acc\" "
                              "(`--channels acc`, or channels in a window config)")
        return cfg
    if cfg is not None and cfg != prof:
        raise ConfigError(
            f"dataset {ds.name!r} is shipped as fixed windows ({prof.window} samples at {prof.rate_hz} Hz, "
            f"channels {prof.channels}, normalize {prof.normalize}); it cannot be windowed as {cfg}"
        )
    return prof


def _key(name: str, cfg: WindowConfig, fingerprint: str, on_bad: str) -> str:
    s = json.dumps([name, cfg.to_dict(), fingerprint, on_bad, PREP_VERSION], sort_keys=True)
    return hashlib.sha256(s.encode()).hexdigest()[:12]


def prepare(
    name: str,
    data_dir: str | Path | None = None,
    cfg: WindowConfig | None = None,
    on_bad: str = "error",
    cache: str | Path | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] | None = None,
) -> WindowSet:
    """Windows of dataset `name`, from the cache when it is current, else built and cached.

    Args:
        name: registered dataset name (`crosshar data list`), or a folder holding crosshar.toml
            (then the windows, the cache and every report carry the descriptor's name).
        data_dir: folder holding the registered datasets (default: --data-dir / $CROSSHAR_DATA).
        cfg: window config; None = the dataset's fixed profile or the default.
        on_bad: "error" (default) or "skip" (skip bad rows and report them in the manifest).
    """
    r = resolve(name, data_dir)
    if r.position is not None:
        resolve_window_config(r.dataset, r.folder, cfg, r.name, r.has_gyro())  # no gyroscope there: one line
        base, _ = split_position(name)
        return select_position(prepare(base, data_dir, cfg, on_bad, cache, rebuild, log), r.position)
    name, ds, folder = r.name, r.dataset, r.folder
    cfg = resolve_window_config(ds, folder, cfg, name)
    files = ds.files(folder)
    if not files and folder.unreadable:  # nothing else to read: the damaged archive is the problem
        raise DataError(folder.unreadable[0][1], folder.unreadable[0][0])
    if not files:
        raise DataError(f"no raw files of dataset {name!r} found; expected layout: {ds.layouts}", folder.root)
    fp = folder.fingerprint(files) + ds.config_digest(folder)
    cache = Path(cache) if cache is not None else paths.cache_dir()
    key = _key(name, cfg, fp, on_bad)
    npz, man = cache / f"{name}-{key}.npz", cache / f"{name}-{key}.json"
    if not rebuild and npz.is_file() and man.is_file():
        ws = _read_cache(npz, man, name, cfg)
        if ws is not None:
            return ws
        if log:
            log(f"the cache {npz.name} is damaged or inconsistent: rebuilding it")
    t0 = time.time()
    bad = BadRows(on_bad)
    for archive, why in folder.unreadable:  # a damaged zip: an error, or (--on-bad skip) the rest read, it listed
        bad(why, archive)
    for e in files:  # file.txt beside file.txt.gz: which is right? an error, or (--on-bad skip) the .gz read, it listed
        if e.logical in folder.shadowed:
            bad(f"a second copy of {e.logical} (only {e.path.name} is read): remove one of the two",
                folder.shadowed[e.logical])
    built = _build_prewindowed(ds, folder, cfg, name, bad) if ds.profile(folder) is not None else \
        _build_from_recordings(ds, folder, cfg, name, bad, log)
    ws = built.windows
    ws.manifest = {
        "dataset": name, "title": ds.title, "root": str(folder.root), "window": cfg.to_dict(),
        "fingerprint": fp, "n_files": len(files), "prewindowed": ds.profile(folder) is not None,
        "n_recordings": built.n_recordings,
        "n_short_recordings": built.n_short, "n_windows": len(ws),
        "n_unlabelled_windows": built.tally.unlabelled_windows, "per_class": ws.counts()[0],
        "per_subject": ws.counts()[1], "kept": built.tally.to_dict(), "short_hint": ds.short_hint,
        "checks": built.checks,
        "warnings": built.warnings, "skipped": _skipped(bad),
        "notes": [{"file": p, "gap": m} for p, m in bad.notes], "reader_dropped": built.reader_dropped,
        "prep_version": PREP_VERSION, "seconds": round(time.time() - t0, 2), "key": key,
        **({"recordings": built.recordings} if built.recordings else {}),
    }
    if log and bad.skipped:
        log(bad.report())
    for p, m in bad.notes if log else ():
        log(f"known gap of the distribution, not read: {m} ({p})")
    for w in built.warnings:
        if log:
            log(f"warning: {w}")
    atomic_write_bytes(npz, _npz_bytes(ws))
    atomic_write_json(man, ws.manifest)
    return ws


def _skipped(bad: BadRows) -> list[dict]:
    """The items `bad` skipped, as a manifest lists them."""
    return [{"file": p, "line": ln, "problem": m} for p, ln, m in bad.skipped]


def prepared_from(manifest: dict | None, root: str | Path) -> bool:
    """Whether a cache manifest was prepared from the data folder `root` (resolved: ./data, data/ and an absolute
    path are one folder)."""
    r = (manifest or {}).get("root")
    return isinstance(r, str) and Path(r).resolve() == Path(root).resolve()


def recording_positions(manifest: dict | None) -> list[str]:
    """The body position of each recording a cache manifest records ([] when it records none)."""
    rec = (manifest or {}).get("recordings")
    return [str((v or {}).get("position")) for v in rec.values()] if isinstance(rec, dict) else []


def _positions_hold(name: str, position: str, positions: list[str], unit: str) -> None:
    """ConfigError unless `position` is among `positions` (one per recording or per window, as `unit` says, each
    counted; "" lists the names alone; compared as position_key)."""
    if position_key(position) in {position_key(p) for p in positions}:
        return
    known, n = np.unique([position_key(p) for p in positions], return_counts=True)
    raise ConfigError(f"dataset {name!r} has no recording at body position {position!r}; its positions: "
                      + ", ".join(f"{k} ({c:,} {unit})" if unit else k for k, c in zip(known.tolist(), n.tolist())))


def select_position(ws: WindowSet, position: str) -> WindowSet:
    """The windows of `ws` recorded at one body position, named "<dataset>@<position>".

    Args:
        ws: (N, T, C) windows of one dataset whose manifest records each recording's position.
        position: the position, compared as `position_key` ("left pocket" matches "Left_pocket").
    Returns:
        (M, T, C) windows, M <= N, named "<dataset>@<position_key(position)>"; the manifest's counts are the
        selection's.
    """
    where = ws.recording_attr("position")
    if where is None:
        raise ConfigError(f"dataset {ws.dataset!r} records no body position per recording (it is shipped as windows); "
                          f"{ws.dataset}{POSITION_SEP}{position} cannot select one")
    _positions_hold(ws.dataset, position, where.tolist(), "windows")
    keep = np.flatnonzero(np.array([position_key(p) for p in where.tolist()]) == position_key(position))
    name = f"{ws.dataset}{POSITION_SEP}{position_key(position)}"  # as `resolve` names it
    sel = WindowSet(ws.X[keep], ws.labels[keep], ws.subjects[keep], ws.sessions[keep], name, ws.config)
    per_class, per_subject = sel.counts()
    sel.manifest = {**ws.manifest, "position": position_key(position), "n_windows": len(sel), "per_class": per_class,
                    "per_subject": per_subject}
    return sel


@dataclass
class _Built:
    """Windows freshly built from the raw files, with what the manifest reports about them."""

    windows: WindowSet
    n_recordings: int
    n_short: int
    tally: Tally
    checks: dict
    warnings: list
    recordings: dict = field(default_factory=dict)  # session id -> {"position", "device"} (read as recordings)
    reader_dropped: dict = field(default_factory=dict)  # Dataset.dropped_counts: what the reader left out


def _build_from_recordings(ds: Dataset, folder: DataFolder, cfg: WindowConfig, name: str, bad: BadRows,
                           log: Callable[[str], None] | None) -> _Built:
    """Raw data: recordings -> physical checks -> windows (DataError when none results)."""
    recs = ds.load(folder, bad)
    acc_only: dict[str, int] = {}
    if cfg.channels == "acc+gyro":  # a position read without a gyroscope by design: left out, reported
        by_design = [r.gyro is None and acc_only_at(ds, r.position) for r in recs]
        for r in (r for r, out in zip(recs, by_design) if out):
            acc_only[r.position] = acc_only.get(r.position, 0) + 1
        recs = [r for r, out in zip(recs, by_design) if not out]
        no_gyro = [r for r in recs if r.gyro is None]
        if no_gyro:
            bad(f"{len(no_gyro)} recording(s) have no gyroscope and cannot give 6-channel windows, e.g. "
                f"{no_gyro[0].source}", folder.root)
            recs = [r for r in recs if r.gyro is not None]
    checks, warnings = checks_by_position(recs, str(folder.root))
    tally = Tally()
    ws = make_windows(recs, cfg, name, keep_unlabelled=ds.keeps_unlabelled, tally=tally)
    seconds = cfg.window / cfg.rate_hz
    short = sum(len(r) / r.rate < seconds for r in recs)
    if len(ws) == 0:
        raise DataError(f"dataset {name!r} gives no window of {cfg.window} samples ({seconds:g} s): "
                        + _why_no_windows(recs, short, seconds, bad) + "; "
                        + kept_dropped({"kept": tally.to_dict(), "short_hint": ds.short_hint, "prewindowed": False,
                                        "skipped": _skipped(bad)}),
                        folder.root)
    if short and log:
        log(f"{short} of {len(recs)} recordings are shorter than one window ({seconds:g} s) and gave no window")
    turns = turning_by_class(ws.X, ws.labels, cfg.rate_hz)
    if turns:
        checks["turning"] = turns
        warnings += turning_warnings(turns, str(folder.root))
    recordings = {str(r.session or r.source): {"position": r.position, "device": r.device} for r in recs}
    dropped = ds.dropped_counts(recs)
    for position, n in acc_only.items():
        dropped[f"recordings at {position}: no gyroscope for 6-channel windows (--channels acc reads them)"] = n
    return _Built(ws, len(recs), int(short), tally, checks, warnings, recordings, dropped)


def _build_prewindowed(ds: Dataset, folder: DataFolder, cfg: WindowConfig, name: str, bad: BadRows) -> _Built:
    """Data shipped as fixed windows: read as they are, then the profile's normalisation."""
    ws = ds.windows(folder, bad)
    if len(ws) == 0:
        raise DataError(f"dataset {name!r} holds no readable window"
                        + (f" ({len(bad.skipped)} bad item(s) skipped)" if bad.skipped else ""), folder.root)
    X = normalize(ws.X, ws.subjects, cfg)
    ws = WindowSet(X, ws.labels, ws.subjects, ws.sessions, name, cfg)
    tally = Tally(labelled_windows=len(ws))
    return _Built(ws, 0, 0, tally, {}, [])


def _why_no_windows(recs: list, short: int, seconds: float, bad: BadRows) -> str:
    if not recs:
        return "no recording could be read" + (f" ({len(bad.skipped)} bad item(s) skipped)" if bad.skipped else "")
    if short == len(recs):
        longest = max(len(r) / r.rate for r in recs)
        return (f"all {len(recs)} recordings are shorter than one window (the longest lasts {longest:.3g} s); "
                "check the sampling rate, the time stamps' unit and max_gap_s")
    return (f"none of the {len(recs)} recordings holds {seconds:g} s under one activity label; check the labels "
            "(an empty label means unlabelled)")


def read_manifest(path: Path) -> dict | None:
    """A cache manifest, or None when it is not a readable JSON object with the counts."""
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    need = {"n_windows": int, "n_recordings": int, "n_files": int, "fingerprint": str, "window": dict,
            "per_class": dict, "per_subject": dict, "skipped": list}
    optional = {"kept": dict, "warnings": list, "checks": dict, "recordings": dict, "prewindowed": bool}  # read where present
    if not (isinstance(m, dict) and all(isinstance(m.get(k), t) for k, t in need.items())
            and all(isinstance(m[k], t) for k, t in optional.items() if m.get(k) is not None)):
        return None
    try:  # what `crosshar data prepare` and `info` print from it (an edited or foreign manifest: damaged, not a traceback)
        kept_dropped(m)
        return m if _checks_ok(m.get("checks") or {}) else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _checks_ok(c: dict) -> bool:
    """Whether a manifest's "checks" hold the figures `crosshar data` prints, of the types it prints them as."""
    def num(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def figures(f) -> bool:
        g, h = f.get("gravity") or {}, f.get("handedness") or {}
        return (g.get("median_ms2") is None or num(g["median_ms2"]) and num(g.get("still_seconds"))) and \
            (h.get("slope") is None or num(h["slope"]))

    return (figures(c) and all(figures(f) for f in (c.get("by_position") or {}).values())
            and all(num(v["median_deg"]) and num(v["ccw_share"]) for v in (c.get("turning") or {}).values()))


def _read_cache(npz: Path, man: Path, name: str, cfg: WindowConfig) -> WindowSet | None:
    """The cached windows, or None when any part is damaged or disagrees with another (then rebuilt)."""
    manifest = read_manifest(man)
    if manifest is None:
        return None
    try:
        with np.load(npz, allow_pickle=False) as z:
            X, labels, subjects, sessions = z["X"], z["labels"], z["subjects"], z["sessions"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # truncated npz = bad zip, object arrays refused = ValueError
    n = manifest["n_windows"]
    ok = (X.dtype == np.float32 and X.shape == (n, cfg.window, cfg.n_channels)
          and all(a.shape == (n,) and a.dtype.kind == "U" for a in (labels, subjects, sessions))
          and bool(np.isfinite(X).all()))
    return WindowSet(X, labels, subjects, sessions, name, cfg, manifest) if ok else None


def _npz_bytes(ws: WindowSet) -> bytes:
    import io

    b = io.BytesIO()
    np.savez(b, X=ws.X, labels=ws.labels.astype(str), subjects=ws.subjects.astype(str),
             sessions=ws.sessions.astype(str))
    return b.getvalue()


def kept_dropped(manifest: dict) -> str:
    """What prepare kept and dropped, per reason, in one paragraph (from a manifest)."""
    k = manifest.get("kept") or {}
    if not k:
        return "(no kept/dropped figures in this cache; rebuild with --rebuild)"
    kept = f"kept {k['labelled_windows']:,} labelled windows"
    if k["unlabelled_windows"]:
        kept += f" and {k['unlabelled_windows']:,} unlabelled windows (pretraining only)"
    prewindowed = manifest.get("prewindowed", not k["recordings"])  # caches from before the flag: no recordings
    kept += " (shipped as fixed windows)" if prewindowed else f" from {k['recordings']:,} recordings"
    drops = []
    if k["short_recordings"]:
        drops.append(f"{k['short_recordings']:,} recording(s) shorter than one window ({k['short_recording_s']:,.0f} s, "
                     f"e.g. {', '.join(k['short_examples'])}"
                     + (f"; {manifest['short_hint']})" if manifest.get("short_hint") else ")"))
    if k["short_runs_s"]:
        drops.append(f"{k['short_runs_s']:,.0f} s in labelled stretches shorter than one window")
    if k["unlabelled_s"]:
        drops.append(f"{k['unlabelled_s']:,.0f} s unlabelled (this dataset keeps no unlabelled windows)")
    if k["tails_s"]:
        drops.append(f"{k['tails_s']:,.0f} s at the ends of stretches (less than one stride)")
    reasons: dict[str, int] = {}
    for item in manifest.get("skipped", []):
        why = re.sub(r"'[^']*'|-?\d+(\.\d+)?(e-?\d+)?", "…", item["problem"])
        reasons[why] = reasons.get(why, 0) + 1
    drops += [f"{n:,} bad item(s): {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    drops += [f"a known gap of the distribution: {item['gap']}" for item in manifest.get("notes", [])]
    drops += [f"{n:,} {what} (left out by the reader)" for what, n in (manifest.get("reader_dropped") or {}).items()]
    text = kept + "; dropped: " + ("; ".join(drops) if drops else "nothing")
    if manifest.get("position") is not None:  # a selection (select_position): its count, then the whole dataset's
        text = f"{manifest['n_windows']:,} windows at body position {manifest['position']} (the whole dataset: {text})"
    return text


def cached(name: str, cache: str | Path | None = None) -> list[Path]:
    """Manifests of prepared versions of a dataset in the cache: `<name>-<key>.json` with exactly this name
    (the glob alone also matched "mylog-x"'s), newest first."""
    cache = Path(cache) if cache is not None else paths.cache_dir()
    exact = re.compile(re.escape(name) + r"-[0-9a-f]{12}\.json")
    found = [m for m in cache.glob(f"{glob.escape(name)}-*.json") if exact.fullmatch(m.name)]
    return sorted(found, key=lambda m: (-m.stat().st_mtime_ns, m.name))
