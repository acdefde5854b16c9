"""Where raw data, prepared caches and runs live."""

from __future__ import annotations

import os
from pathlib import Path

from crosshar.errors import MissingDataError

ENV_DATA = "CROSSHAR_DATA"
ENV_HOME = "CROSSHAR_HOME"


def data_dir(explicit: str | Path | None = None) -> Path:
    """The raw-data folder: `--data-dir`, else $CROSSHAR_DATA, else ./data when it exists."""
    if explicit is not None:
        p = Path(explicit)
    elif os.environ.get(ENV_DATA):
        p = Path(os.environ[ENV_DATA])
    elif Path("data").is_dir():
        p = Path("data")
    else:
        raise MissingDataError(
            f"no data folder given: set {ENV_DATA} to the folder that holds the raw datasets "
            f"(export {ENV_DATA}=/path/to/data) or pass --data-dir; `crosshar data download -d NAME` "
            "fetches a public dataset, and a folder of your own data (crosshar.toml) is given by its path"
        )
    if not p.is_dir():
        what = "is a file, not a folder" if p.exists() else "does not exist"
        raise MissingDataError(
            f"data folder {p} {what}; pass --data-dir or set {ENV_DATA} to the folder that "
            f"holds the raw datasets (see `crosshar data list`)"
        )
    return p


def home() -> Path:
    """Root for caches, runs and results: $CROSSHAR_HOME, else a per-user data folder.

    Never the working directory: in a clone of the repository that would be the repository
    itself, and a run would write over its committed files. The per-user folder follows the
    platform's custom (as platformdirs' user_data_dir): $XDG_DATA_HOME/crosshar or
    ~/.local/share/crosshar on Linux, ~/Library/Application Support/crosshar on macOS,
    %LOCALAPPDATA%\\crosshar on Windows.
    """
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    return user_data_dir()


def user_data_dir() -> Path:
    import sys

    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "crosshar"


def cache_dir() -> Path:
    return home() / "cache"


def runs_dir() -> Path:
    return home() / "runs"
