"""What every dataset loader provides, and the shared policy for bad rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from crosshar.config import WindowConfig
from crosshar.data.io import DataFolder, Entry
from crosshar.data.recording import Recording
from crosshar.data.windows import WindowSet
from crosshar.errors import DataError, MissingDataError


@dataclass
class BadRows:
    """What to do with a malformed row, NaN, unknown label... : raise (default) or skip and report.

    Loaders call `bad(message, path, line)` for every problem. With policy "error" that raises a
    DataError naming the file and line; with "skip" (the CLI's explicit `--on-bad skip`) it records
    the problem, and `report()` lists exactly what was skipped. Nothing is ever dropped silently.
    """

    policy: str = "error"
    skipped: list[tuple[str, int | None, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, what): gaps a public distribution ships

    def __post_init__(self) -> None:
        if self.policy not in ("error", "skip"):
            raise ValueError(f"on_bad must be 'error' or 'skip', got {self.policy!r}")

    def __call__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        if self.policy == "error":
            raise DataError(message, path, line, skippable=True)
        self.skipped.append((str(path) if path is not None else "", line, message))

    def note(self, message: str, path: str | Path | None = None) -> None:
        """A known gap of a public distribution (a file its publisher never shipped, which other parsers of the
        dataset name too): never an error, whatever the policy, but listed in the manifest and prepare's summary
        beside the skipped items, so that nothing is dropped silently. A reader names these gaps one by one."""
        self.notes.append((str(path) if path is not None else "", message))

    def report(self, limit: int = 50) -> str:
        if not self.skipped:
            return "nothing skipped"
        lines = [f"skipped {len(self.skipped)} bad item(s):"]
        ordered = sorted(self.skipped, key=lambda s: (s[0], s[1] or 0))  # file and line order, not check order
        for p, ln, msg in ordered[:limit]:
            lines.append(f"  {p}{'' if ln is None else f', line {ln}'}: {msg}")
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)


class Dataset:
    """A registered dataset: where its raw files live and how to read them into Recordings.

    Subclasses set the class attributes and implement `files` and `load`.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # human-readable name
    folders: ClassVar[tuple[str, ...]] = ()  # candidate sub-folders of the data dir, first = default
    layouts: ClassVar[str] = ""  # the layout(s) expected, for "not found" messages
    url: ClassVar[str] = ""  # official download address ("" when there is none)
    sha256: ClassVar[str] = ""  # of the archive at `url`, when known
    size: ClassVar[int] = 0  # bytes of the archive at `url`, when known
    citation: ClassVar[str] = ""
    # runs labelled "" become unlabelled windows (pretraining only) instead of being dropped;
    # off for the public datasets, whose unlabelled stretches are mostly transitions between
    # scripted activities, so that their prepared windows stay comparable with the literature
    keeps_unlabelled: ClassVar[bool] = False
    # what the user can do about recordings shorter than one window ("" when nothing: a public dataset's files are
    # as they are); shown where prepare reports them
    short_hint: ClassVar[str] = ""
    # the Recording.extra fields that count what the reader left out (rows with a NaN, repeated timestamps, seconds of
    # one sensor without the other), each with what it counts: summed into the manifest's "reader_dropped" and prepare's
    # summary, so that nothing a reader drops goes unreported. A group's counts sit on each of its recordings (one per
    # time span, the same source and extra): counted once per group, or once per recording when `dropped_per` says so
    dropped: ClassVar[dict[str, str]] = {}
    dropped_per: ClassVar[str] = "group"
    # body positions (as position_key writes them) whose recordings hold no gyroscope although the dataset's others do
    # (MHEALTH's chest unit): read into acc-only windows, left out of 6-channel ones (reported, not bad input), and
    # `NAME@POSITION` there asks for channels = "acc" (crosshar.data.store.Resolved.has_gyro)
    acc_only_positions: ClassVar[tuple[str, ...]] = ()

    def locate(self, data_dir: str | Path) -> Path:
        """The dataset's folder under `data_dir`; MissingDataError naming the layout otherwise."""
        data_dir = Path(data_dir)
        for f in self.folders:
            if (data_dir / f).is_dir():
                return data_dir / f
        raise MissingDataError(
            f"dataset {self.name!r} not found under {data_dir} (looked for "
            f"{', '.join(self.folders)}). Expected layout: {self.layouts}. Set --data-dir or "
            f"CROSSHAR_DATA to the folder that holds it, or run `crosshar data download -d {self.name}`."
        )

    def files(self, folder: DataFolder) -> list[Entry]:
        """The raw files this loader reads (used for fingerprints and `crosshar data list`)."""
        raise NotImplementedError

    def config_digest(self, folder: DataFolder) -> str:
        """A digest of what says how to read the files (your own data's crosshar.toml), "" when the reader's code
        alone does: part of the cache key, so that an edited descriptor is never served stale windows."""
        return ""

    def no_files(self, folder: DataFolder, what: str) -> MissingDataError:
        """The error of a folder that holds none of the files this loader reads (`what`: their name, "PAMAP2")."""
        broken = "".join(f"; {a} is not a readable zip archive" for a, _ in folder.unreadable[:3])
        return MissingDataError(f"no {what} files under {folder.root}{broken}. Expected: {self.layouts}")

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        """Every recording in the folder, validated (`Recording.validate`); raw data only."""
        raise NotImplementedError

    def profile(self, folder: DataFolder) -> WindowConfig | None:
        """A fixed window profile the data imposes (pre-windowed data), or None for raw data."""
        return None

    def windows(self, folder: DataFolder, bad: BadRows) -> "WindowSet":
        """The windows as shipped, for pre-windowed data (`profile` is not None): the profile's
        window length and channels, before its normalisation; labels canonical."""
        raise NotImplementedError

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def dropped_counts(self, recs: list[Recording]) -> dict[str, float]:
        """What the reader left out of `recs`, summed: {what `dropped` says it counts: total} (zeros left out)."""
        seen, out = set(), {}
        for r in recs:
            key = (r.source, r.session) if self.dropped_per == "recording" else (r.source, repr(sorted(r.extra.items())))
            if key in seen:
                continue
            seen.add(key)
            for field_, what in self.dropped.items():
                out[what] = out.get(what, 0) + r.extra.get(field_, 0)
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items() if v}
