"""Where raw data, prepared caches and runs live."""

from __future__ import annotations

import os
from pathlib import Path

from crosshar.errors import MissingDataError

ENV_DATA = "CROSSHAR_DATA"
ENV_HOME = "CROSSHAR_HOME"


def data_dir(explicit: str | Path | None = None) -> Path:
    """The raw-data folder: `--data-dir`, else $CROSSHAR_DATA, else ./data."""
    if explicit is not None:
        p = Path(explicit)
    elif os.environ.get(ENV_DATA):
        p = Path(os.environ[ENV_DATA])
    else:
        p = Path("data")
    if not p.is_dir():
        raise MissingDataError(
            f"data folder {p} does not exist; pass --data-dir or set {ENV_DATA} to the folder that "
            f"holds the raw datasets (see `crosshar data list`)"
        )
    return p


def home() -> Path:
    """Root for caches and runs: $CROSSHAR_HOME, else the current directory."""
    return Path(os.environ.get(ENV_HOME, "."))


def cache_dir() -> Path:
    return home() / "cache"


def runs_dir() -> Path:
    return home() / "runs"
