"""Run folders: where a run writes, its run.json, finding earlier runs, the code's git commit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from crosshar import paths
from crosshar.atomic import atomic_write_json


def new_run_dir(kind: str, tag: str, out: str | Path | None = None) -> Path:
    """runs/<kind>/<tag>-<timestamp>/ (or `out`)."""
    d = Path(out) if out is not None else paths.runs_dir() / kind / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "run.json", info)


def find_runs(kind: str, source: str | None = None, finished: bool | None = True,
              root: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, run.json) of runs of a kind, newest first; unreadable run.json files are skipped.

    Args:
        source: keep runs of this source dataset string ("uci", "uci+motion") only.
        finished: True / False keeps finished / unfinished runs; None keeps both.
    """
    root = root or paths.runs_dir()
    found = []
    for info in (root / kind).glob("*/run.json"):
        try:
            d = json.loads(info.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if finished is not None and bool(d.get("finished")) != finished:
            continue
        if source is not None and d.get("source") != source:
            continue
        found.append((info.stat().st_mtime, info.parent, d))
    return [(p, d) for _, p, d in sorted(found, key=lambda t: -t[0])]


def latest_run(kind: str, dataset: str | None = None, root: Path | None = None) -> Path | None:
    """The most recent finished run of a kind (optionally for one source dataset string)."""
    runs = find_runs(kind, dataset, root=root)
    return runs[0][0] if runs else None


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
