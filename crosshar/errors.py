"""Errors a user can act on: each names the file (and line) and what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class CrossharError(Exception):
    """Base class of every error that the CLI prints as a clean message instead of a traceback."""


class ConfigError(CrossharError):
    """A config file or option is wrong (unknown key, bad value)."""


class DataError(CrossharError):
    """Raw data cannot be read as its dataset's format says.

    Args:
        message: what is wrong.
        path: the file, when there is one.
        line: 1-based line number inside that file, when there is one.
        skippable: raised by a reader's bad-input report (`BadRows`), which `--on-bad skip` skips and lists.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 skippable: bool = False):
        self.path = None if path is None else str(path)
        self.line = line
        self.skippable = skippable
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class MissingDataError(DataError):
    """The folder or file a dataset needs is not there."""


class ResumeError(CrossharError):
    """A --resume refused: the checkpoint was written for another job or other data (it names what differs)."""


class LeakageError(CrossharError):
    """Target data would enter training or model selection, or target and source overlap."""
