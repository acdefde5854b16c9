"""Read raw files whether plain, gzip-compressed (`.gz`) or inside a distribution's zip archive.

`DataFolder(root)` presents one logical tree: `RawData/acc_exp01_user01.txt` is found as that
file, as `RawData/acc_exp01_user01.txt.gz`, or as a member of any `*.zip` below `root` (members of
zips nested one level inside a zip, as in the UCI HAR distribution, are found too). Loaders glob
logical paths and open them as text; nobody has to unpack anything.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator

from crosshar.errors import DataError, MissingDataError


@dataclass(frozen=True)
class Entry:
    """One logical file: `logical` is its path with any `.gz` removed, relative to the root."""

    logical: str
    path: Path  # the real file on disk (a .gz file, a plain file, or the zip holding it)
    member: tuple[str, ...] = ()  # zip member names, outermost first
    gz: bool = False  # the bytes (file or innermost member) are gzip-compressed

    def display(self) -> str:
        """A name for messages: path/to/archive.zip!member."""
        return "!".join([str(self.path), *self.member])


class DataFolder:
    """A dataset's folder, as a tree of logical files. See module docstring."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingDataError(f"data folder not found: {self.root}")
        self._entries: dict[str, Entry] | None = None
        # zip archives that could not be opened: (the archive, why); their members are missing from `entries`,
        # and `crosshar.data.store.prepare` reports each through the bad-input policy (an error, or skipped and listed)
        self.unreadable: list[tuple[str, str]] = []
        # {logical path: the loose copy not read}, where a plain file and its .gz lie side by side (file.txt and
        # file.txt.gz, e.g. after `gunzip -k`): the .gz is read; `crosshar.data.store.prepare` reports the other
        # copy through the bad-input policy (it may differ: an edited or partial copy), and `fingerprint` covers it
        self.shadowed: dict[str, Path] = {}

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = {}
            seen: set[str] = set()  # real folders read: a symlink loop (or a second link to a folder) is read once
            for dirpath, dirs, files in os.walk(self.root, followlinks=True):
                real = os.path.realpath(dirpath)
                if real in seen:
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs.sort()  # which of two links to one folder is read: the first in name order, on every machine
                for f in sorted(files):
                    p = Path(dirpath) / f
                    rel = p.relative_to(self.root).as_posix()
                    if f.lower().endswith(".zip"):
                        self._add_zip(p, PurePosixPath(rel).parent, ())
                    else:
                        self._add(Entry(_strip_gz(rel), p, (), f.endswith(".gz")))
        return self._entries

    def _add(self, e: Entry) -> None:
        old = self._entries.get(e.logical)  # type: ignore[union-attr]
        if old is not None and not old.member and not e.member:  # file.txt beside file.txt.gz: the .gz is read
            keep, other = (old, e) if old.gz else (e, old)
            self._entries[e.logical], self.shadowed[e.logical] = keep, other.path  # type: ignore[index]
            return
        # a plain file wins over an archived copy of the same logical path
        if old is None or not e.member:
            self._entries[e.logical] = e  # type: ignore[index]

    def _add_zip(self, path: Path, prefix: PurePosixPath, outer: tuple[str, ...]) -> None:
        try:
            zf = _open_zip(path, outer)
        except (zipfile.BadZipFile, OSError) as e:
            self.unreadable.append(("!".join([str(path), *outer]), f"not a readable zip archive ({e}): a damaged or "
                                    "partial copy? download it again"))
            return
        with zf:
            for name in zf.namelist():
                if name.endswith("/") or "__MACOSX" in name:
                    continue
                logical = (prefix / name).as_posix().lstrip("./") if str(prefix) != "." else name
                if name.lower().endswith(".zip") and len(outer) < 1:
                    self._add_zip(path, PurePosixPath(logical).parent, (*outer, name))
                else:
                    self._add(Entry(_strip_gz(logical), path, (*outer, name), name.endswith(".gz")))

    def glob(self, pattern: str) -> list[Entry]:
        """Entries whose logical path matches `pattern` (fnmatch; `*` also crosses `/`), sorted."""
        return [self.entries[k] for k in sorted(self.entries) if fnmatch.fnmatchcase(k, pattern)]

    def find(self, logical: str) -> Entry | None:
        return self.entries.get(logical)

    def open_text(self, entry: Entry, encoding: str = "utf-8-sig", raw: bytes | None = None) -> IO[str]:
        """The file as text; `raw`: its bytes when already read (`read_bytes_or_report`), else they are read here."""
        return io.TextIOWrapper(io.BytesIO(read_bytes(entry) if raw is None else raw), encoding=encoding, newline="")

    def fingerprint(self, entries: list[Entry]) -> str:
        """A cheap fingerprint of files: logical name, size and mtime of the real file."""
        h = hashlib.sha256()
        for e in sorted(entries, key=lambda e: e.logical):
            try:
                st = e.path.stat()
            except OSError as err:  # a broken symbolic link, a file removed meanwhile: named, not a traceback
                link = f": a symbolic link to {os.readlink(e.path)}, which is missing" if e.path.is_symlink() else ""
                raise DataError(f"cannot read ({err.strerror}){link}", e.display()) from None
            h.update(f"{e.logical}|{e.display()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            if e.logical in self.shadowed:  # a second copy appearing, changing or going: never a stale cache
                other = self.shadowed[e.logical]
                try:
                    o = other.stat()
                except OSError:  # a dangling link: listed, never read
                    o = other.lstat()
                h.update(f"{other}|{o.st_size}|{o.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


def _strip_gz(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def _open_zip(path: Path, outer: tuple[str, ...]) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(path)
    for m in outer:
        data = zf.read(m)
        zf.close()
        zf = zipfile.ZipFile(io.BytesIO(data))
    return zf


def read_bytes(entry: Entry) -> bytes:
    """The decompressed content of a logical file."""
    try:
        if entry.member:
            with _open_zip(entry.path, entry.member[:-1]) as zf:
                data = zf.read(entry.member[-1])
        else:
            data = entry.path.read_bytes()
        if entry.gz:
            data = gzip.decompress(data)
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, zlib.error) as e:  # zlib.error: a damaged deflate stream
        raise DataError(f"cannot read ({e})", entry.display()) from None
    return data


def read_bytes_or_report(entry: Entry, bad: Callable[..., None]) -> bytes | None:
    """`read_bytes`, with a file that cannot be read (a truncated or damaged .gz, an interrupted download; a damaged zip
    member) reported through `bad` (a `crosshar.data.base.BadRows`) as bad input: a DataError naming the file (one the
    CLI's `--on-bad skip` skips) by default, None once skipped and listed in skip mode. The readers read through this
    (or `crosshar.data.rows.TextFile.read`), so that one damaged file of many never stops `--on-bad skip`."""
    try:
        return read_bytes(entry)
    except DataError as e:
        bad(str(e).removeprefix(f"{e.path}: "), entry.display())
        return None


def iter_lines(folder: DataFolder, entry: Entry, raw: bytes | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline) for every line of a logical file.

    `raw`: the file's bytes when already read (`read_bytes_or_report`), else they are read here."""
    with folder.open_text(entry, raw=raw) as f:
        for i, line in enumerate(f, 1):
            yield i, line.rstrip("\r\n")
