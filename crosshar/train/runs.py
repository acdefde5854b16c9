"""Run folders: where a run writes, its run.json, finding earlier runs, the code's git commit."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from crosshar import paths
from crosshar.atomic import atomic_write_json
from crosshar.errors import ConfigError

RUN_FILES = ("run.json", "best.pt", "last.pt")  # what makes a folder a run folder
CHECKPOINTS = ("best.pt", "last.pt")  # what a run can be loaded or resumed from
_HELD: dict[str, Any] = {}  # the run folder this process writes ("path") and its locked descriptor ("fd")
_SEEN: dict[str, set[str]] = {}  # run folder -> the run files refuse_overwrite left in it


def lock_folder(folder: Path, busy: str) -> int | None:
    """An exclusive flock on `folder` itself (no file added): the descriptor that holds it until closed, or None
    where there is no flock (Windows) or the file system has none (ENOLCK: written unlocked, as before locks).
    Another process's lock on it is a ConfigError saying `busy`. The one lock of run and results folders."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(str(Path(folder).resolve()), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if not isinstance(e, BlockingIOError):
            return None
        raise ConfigError(busy) from None
    return fd


def hold(folder: Path) -> None:
    """Lock `folder` (lock_folder) for this process, releasing the folder it held before: a process writes one run
    at a time. Two commands writing the same --out at once mixed their files (each reported its own run while
    best.pt, run.json and tb/ held the other's); the second is refused instead."""
    key = str(Path(folder).resolve())
    if _HELD.get("path") == key:
        return
    fd = lock_folder(folder, f"--out {folder} is being written by another running crosshar command; wait for it to "
                             "finish, or choose another --out")
    if fd is None:
        return
    if "fd" in _HELD:
        os.close(_HELD["fd"])  # closing the descriptor releases its lock
    _HELD.update(path=key, fd=fd)


def release(folder: Path) -> None:
    """Drop this process's hold on `folder` (a no-op unless it is the folder held): for a folder removed after
    all, so that a later hold on a folder made anew at the same path locks it rather than finding it held."""
    if _HELD.get("path") == str(Path(folder).resolve()) and "fd" in _HELD:
        os.close(_HELD.pop("fd"))  # closing the descriptor releases its lock
        _HELD.clear()


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether a run folder holds a checkpoint: one interrupted before its first epoch ended holds only run.json
    (pretrain writes it first) and tb/ (finetune writes run.json last), with nothing to load or resume."""
    return any((Path(run_dir) / n).is_file() for n in CHECKPOINTS)


def check_name(name: str | None, option: str = "--name") -> str | None:
    """A results or run name is a plain folder name: not empty, no path separator, not "." or ".."
    (it must stay under $CROSSHAR_HOME/results/); None (not given) passes."""
    if name is None:
        return None
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if not name.strip():
        raise ConfigError(f"{option} must not be empty")
    if name in (".", "..") or any(c in name for c in seps) or "\0" in name:
        raise ConfigError(f"{option} must be a plain name (no path separator, not '.' or '..'), got {name!r}; "
                          "use --out to write somewhere else")
    return name


def refuse_overwrite(out: str | Path | None, force: bool, resume: bool | None = None) -> None:
    """--out naming a folder that already holds a run (run.json, best.pt or last.pt) is refused unless
    `force` or (for a command that has one, `resume` not None) --resume: a run is never replaced silently. With
    `force` (and no resume) the old run's files and its `tb/` events are removed, so that nothing of it mixes
    with the new one; other files in the folder stay.

    A run interrupted before its first checkpoint (unfinished run.json and/or tb/, no best.pt or last.pt) has
    nothing to resume: it is refused likewise (naming that), and `force` or `resume` start over in it. `force` and
    `resume` together are refused: one continues the run, the other replaces it."""
    if force and resume:  # --force used to be ignored for an unfinished run, and advised for a finished one
        raise ConfigError("--resume continues the run in --out and --force starts it over: pass one of them")
    if out is None:
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        hold(out)
    _check_out(out, force, resume)
    # what the check left in it: new_run_dir refuses any other run file that appears before it runs
    _SEEN[str(out.resolve())] = {n for n in RUN_FILES if (out / n).exists()}


def _check_out(out: Path, force: bool, resume: bool | None) -> None:
    """refuse_overwrite's checks of an --out folder, and its clean-up with `force` (or `resume` of a cut run)."""
    held = [n for n in RUN_FILES if (out / n).exists()]
    try:
        finished = bool(json.loads((out / "run.json").read_text()).get("finished"))
    except (OSError, ValueError, AttributeError):
        finished = False
    cut = not finished and not has_checkpoint(out) and (bool(held) or (out / "tb").is_dir())
    if ((held or cut) and force and not resume) or (cut and resume):
        # start over: the old run's files and TensorBoard events go with it (they would mix with the new run's)
        for n in held:
            (out / n).unlink(missing_ok=True)
        shutil.rmtree(out / "tb", ignore_errors=True)
        return
    if cut:
        what = ", ".join(held + ["tb/"] * (out / "tb").is_dir())
        raise ConfigError(f"--out {out} holds a run interrupted before its first checkpoint ({what}), nothing to "
                          f"resume; pass --force to start over in it, or choose another --out")
    if not held or force or resume:
        return
    how = ("pass --force to replace it" if finished or resume is None
           else "pass --resume to continue it, --force to start it over")
    raise ConfigError(f"--out {out} already holds a{' finished' if finished else 'n unfinished'} run "
                      f"({', '.join(held)}); {how}, or choose another --out")


def new_run_dir(kind: str, tag: str, out: str | Path | None = None) -> Path:
    """runs/<kind>/<tag>-<timestamp>/ (or `out`), locked for this process (`hold`). A run another command wrote
    into `out` since refuse_overwrite checked it (while this one loaded its data) is a ConfigError, not replaced."""
    if out is None:  # a folder of its own: two runs started in the same second shared (and mixed) one
        base = paths.runs_dir() / kind / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in itertools.count(1):
            d = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                d.mkdir()
                break
            except FileExistsError:
                continue
    d = Path(out) if out is not None else d
    d.mkdir(parents=True, exist_ok=True)
    hold(d)
    seen = _SEEN.pop(str(d.resolve()), None)
    new = sorted(n for n in RUN_FILES if (d / n).exists() and n not in (seen or ()))
    if seen is not None and new:
        raise ConfigError(f"--out {d}: another crosshar command wrote a run into it ({', '.join(new)}) since this one "
                          "checked it; choose another --out, or --force to replace it")
    return d


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "run.json", info)


def find_runs(kind: str, source: str | None = None, finished: bool | None = True,
              root: Path | None = None, checkpointed: bool = True) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, run.json) of runs of a kind, newest first; unreadable run.json files are skipped.

    Args:
        source: keep runs of this source dataset string ("uci", "uci+motion") only.
        finished: True / False keeps finished / unfinished runs; None keeps both.
        checkpointed: keep only runs with a checkpoint (best.pt or last.pt); a run interrupted before its
            first epoch ended has none, and nothing to load or resume.
    """
    root = root or paths.runs_dir()
    found = []
    for info in (root / kind).glob("*/run.json"):
        try:
            d = json.loads(info.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(d, dict):  # a damaged run.json ([] or a number): not a run, as an unreadable one
            continue
        if finished is not None and bool(d.get("finished")) != finished:
            continue
        if source is not None and d.get("source") != source:
            continue
        if checkpointed and not has_checkpoint(info.parent):
            continue
        found.append((info.stat().st_mtime, info.parent, d))
    return [(p, d) for _, p, d in sorted(found, key=lambda t: -t[0])]


def latest_run(kind: str, dataset: str | None = None, root: Path | None = None) -> Path | None:
    """The most recent finished run of a kind (optionally for one source dataset string)."""
    runs = find_runs(kind, dataset, root=root)
    return runs[0][0] if runs else None


def run_to_resume(kind: str, tag: str, out: str | Path | None) -> Path:
    """The folder a --resume continues: `out`, else the newest unfinished `kind` run of `tag` (its source) that has
    a last.pt. ConfigError naming what to do when there is none (or the newest was cut before its first checkpoint),
    or when `out` holds a finished run with nothing left to resume (a finished finetuning keeps no last.pt)."""
    nouns = {"pretrain": "pretraining", "finetune": "finetuning"}
    noun = nouns.get(kind, kind)
    if out is not None:
        out = Path(out)
        try:
            info = json.loads((out / "run.json").read_text())
        except (OSError, ValueError):
            info = None
        info = info if isinstance(info, dict) else {}
        finished, other = bool(info.get("finished")), info.get("kind")
        if other is not None and other != kind:  # finetune --resume wrote its run.json over a pretraining run's
            raise ConfigError(f"--resume: {out} holds a {nouns.get(other, other)} run, not a {noun} run: nothing to "
                              "resume there; choose another --out")
        if finished and not (out / "last.pt").is_file():
            raise ConfigError(f"--resume: {out} holds a finished run: nothing to resume (--force to start it over, "
                              "or choose another --out)")
        return out
    runs = [p for p, _ in find_runs(kind, tag, finished=False) if (p / "last.pt").is_file()]
    if runs:
        return runs[0]
    cut = find_runs(kind, tag, finished=False, checkpointed=False)
    if cut:
        raise ConfigError(f"--resume: nothing to resume: the newest unfinished {noun} run of {tag}, {cut[0][0]}, was "
                          f"interrupted before its first checkpoint; rerun without --resume for a new run, or with "
                          f"--out {cut[0][0]} --resume to start over in it")
    raise ConfigError(f"--resume: no unfinished {noun} run of {tag} under runs/{kind}; pass --out DIR")


def job_differences(old: Any, new: dict[str, Any], sections: dict[str, type]) -> list[str]:
    """What differs between the job a checkpoint was written for (`old`, its plain dict) and this one (`new`), as
    `key` or `section.key` names: the one check of every --resume. For a config section (`sections`: key -> its
    config class), a key the checkpoint lacks was written before that option existed: it reads as the option's
    value of that time (the class's BEFORE, else its default), so a run interrupted before an option was added still resumes; a key this
    version does not know (a newer version's option, or a hand edit) is a difference, unless the class lists it as
    REMOVED. Every other entry must be equal."""
    old = old if isinstance(old, dict) else {}
    diff: list[str] = []
    for key, value in new.items():
        was, cls = old.get(key), sections.get(key)
        if cls is None or value is None or was is None:
            if _plain(was) != _plain(value):
                diff.append(key)
            continue
        if not isinstance(was, dict):
            diff.append(key)
            continue
        removed = set(getattr(cls, "REMOVED", ()))
        diff += [f"{key}.{k} (unknown here)" for k in was if k not in value and k not in removed]
        was = {**cls().to_dict(), **getattr(cls, "BEFORE", {}), **was}  # keys added since: what runs did before them
        diff += [f"{key}.{k}" for k, v in value.items() if _plain(was.get(k)) != _plain(v)]
    return diff


def check_progress(ck: dict, best_keys: tuple[str, ...]) -> None:
    """A resume state `ck` (a loaded last.pt) whose history holds one record per trained epoch (1 .. epoch + 1, in
    order) and whose best is one of those epochs, with a number for each of `best_keys`: ValueError otherwise. An
    edited or mixed-up last.pt resumed into a run.json history with epochs missing or twice, or failed mid-run."""
    n, hist, best = ck["epoch"] + 1, ck["history"], ck["best"]
    if [r.get("epoch") if isinstance(r, dict) else None for r in hist] != list(range(1, n + 1)):
        raise ValueError(f"its history does not hold epochs 1-{n} once each, as its epoch {ck['epoch']} says")
    if (not all(isinstance(best.get(k), (int, float)) and not isinstance(best.get(k), bool) for k in best_keys)
            or not isinstance(best.get("epoch"), int) or not best["epoch"] <= n):
        raise ValueError(f"best {best!r} is not one of its {n} epochs"[:200])


def _plain(v: Any) -> Any:
    """Tuples as lists (a checkpoint may hold either), recursively, for comparing job entries."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
