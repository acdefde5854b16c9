"""Delimited text rows with typed columns, parsed fast, with the line number of every row.

Raw HAR files are long (WISDM: about 1.3 M lines per sensor; HHAR: 13 M) and mix numbers with
text (activity letters, user and device names, labels). `read_rows` parses a whole file in one
call to numpy's C reader (`np.loadtxt` with a structured dtype); only when that fails does it walk
the file line by line to hand each offending line to the BadRows policy, which raises a DataError
naming file and line, or records the line and skips exactly that row. Every row keeps its 1-based
line number so that loaders can report later problems (NaN, unknown label, time going backwards)
at the right line too: `Rows.reject(mask, why, bad)`.

`read_table` is the all-numeric variant (UCI, MotionSense): one (m, ncols) float array and a
per-row `ok` mask, so that aligned streams can drop the same sample.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder, Entry, read_bytes, read_bytes_or_report
from crosshar.data.recording import out_of_range, range_problem

# column kinds: float64, int64, text (unicode), bytes (compact text for very long files)
_DTYPES = {"f": "f8", "i": "i8", "s": "U{w}", "b": "S{w}"}


@dataclass(frozen=True)
class Col:
    """One column to read.

    Attributes:
        name: key in `Rows.cols`.
        index: 0-based position in the row.
        kind: "f" float64, "i" int64, "s" text, "b" bytes (latin-1; a quarter of the memory of "s").
        width: characters kept for "s" / "b" (longer values are truncated).
        label: how messages name the column when `name` is not the user's (your own data: the crosshar.toml key
            that chose it, e.g. "positions.ankle.acc_columns[1] = 7"); "" = `name`.
    """

    name: str
    index: int
    kind: str = "f"
    width: int = 32
    label: str = ""

    def dtype(self) -> str:
        return _DTYPES[self.kind].format(w=self.width)


@dataclass
class Rows:
    """Parsed rows of one file: `cols[name]` is an (n,) array, `lines` the (n,) line numbers.

    `lookup` holds per-file tables that are not per-row (e.g. the names behind integer codes);
    `take` and `reject` carry it over unchanged.
    """

    cols: dict[str, np.ndarray]
    lines: np.ndarray
    source: str
    lookup: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.lines.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def take(self, idx: np.ndarray) -> "Rows":
        """Rows selected by a boolean mask or an index array."""
        return Rows({k: v[idx] for k, v in self.cols.items()}, self.lines[idx], self.source, dict(self.lookup))

    def reject(self, mask: np.ndarray, why: Callable[[int], str], bad: BadRows) -> "Rows":
        """Report every row where `mask` is True through `bad`; return the other rows.

        In "error" mode the first report raises. `why(i)` builds the message for row i.
        """
        for i in np.flatnonzero(mask):
            bad(why(int(i)), self.source, int(self.lines[i]))
        return self.take(~mask) if mask.any() else self

    def reject_beyond(self, x: np.ndarray, limit: np.ndarray, cols: Sequence["Col"], units: Sequence[str],
                      bad: BadRows, nan_ok: bool = False) -> "Rows":
        """Report (reject) every row of `x` (n, k) with a value beyond `limit` (k,), naming the first such column.

        `cols` (k Col) and `units` (k strings, " m/s^2") say which file column and unit each of x's columns is:
        the message reads "column 28 (chest_gyro_x): value 1000 is beyond any IMU's range ...". NaN is beyond
        too, unless `nan_ok` (a missing sample the reader handles itself); inf always is.
        """
        with np.errstate(invalid="ignore"):
            over = (np.isinf(x) | (np.abs(x) > limit)) if nan_ok else ~(np.abs(x) <= limit)

        def why(i: int) -> str:
            j = int(np.flatnonzero(over[i])[0])
            return f"column {cols[j].index + 1} ({cols[j].name}): {range_problem(x[i, j: j + 1], limit[j], units[j])}"

        return self.reject(over.any(axis=1), why, bad)


class TextFile:
    """The decompressed bytes of one logical file, newlines normalised to "\\n".

    `raw`: the file's bytes when already read, else they are read here (a file that cannot be read is a DataError);
    `TextFile.read` reports that file through the bad-input policy instead.
    """

    def __init__(self, folder: DataFolder, entry: Entry, raw: bytes | None = None):
        if raw is None:
            raw = read_bytes(entry)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte-order mark
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self.raw = raw
        self.source = entry.display()

    @classmethod
    def read(cls, folder: DataFolder, entry: Entry, bad: BadRows) -> "TextFile | None":
        """The file, or None when it cannot be read (a truncated or damaged .gz, a damaged zip member): reported
        through `bad` as bad input (`crosshar.data.io.read_bytes_or_report`), a DataError naming the file by default,
        skipped and listed with `--on-bad skip`."""
        raw = read_bytes_or_report(entry, bad)
        return None if raw is None else cls(folder, entry, raw)

    def head(self, n: int, delimiter: str = ",") -> list[list[str]]:
        """The first `n` lines split into fields (quotes honoured), for header checks."""
        end = self._offset(n)
        lines = self.raw[:end].split(b"\n")[:n] if end else []
        text = [ln.decode("utf-8", errors="replace") for ln in lines]
        return [next(csv.reader([t], delimiter=delimiter)) if t else [] for t in text]

    def single_delimited(self, delimiter: bytes, ncols: int) -> None:
        """Make every line `ncols` fields separated by one `delimiter` (b" " or b"\\t"), for the C parser, where the
        file uses runs of blanks (spaces, tabs, blanks at line ends) instead; the lines stay the lines they were.

        Checked by one count of the delimiters, not a scan for every odd blank (files are hundreds of MB): when
        the first line has `ncols` non-empty fields, no other blank occurs and the count fits, the bytes are left
        as they are. A line that still does not fit is reported by the parser.
        """
        raw, end = self.raw, len(self.raw)
        while end and raw[end - 1] == 10:  # newlines at the end
            end -= 1
        other = b"\t" if delimiter == b" " else b" "
        first = raw[:4096].split(b"\n", 1)[0].split(delimiter)
        if not (len(first) == ncols and all(first) and other not in raw
                and raw.count(delimiter, 0, end) == (ncols - 1) * (raw.count(b"\n", 0, end) + 1)):
            self.raw = b"\n".join(delimiter.join(line.split()) for line in raw.split(b"\n"))

    def _offset(self, n: int) -> int:
        """Byte offset just after the n-th newline (the end of the file if it has fewer lines)."""
        pos = 0
        for _ in range(n):
            nl = self.raw.find(b"\n", pos)
            if nl < 0:
                return len(self.raw)
            pos = nl + 1
        return pos

    def rows(
        self,
        cols: Sequence[Col],
        bad: BadRows,
        *,
        delimiter: str = ",",
        skip: int = 0,
        ncols: int | None = None,
        comments: str | None = None,
    ) -> Rows:
        """Parse the data lines after `skip` header lines. See `read_rows`."""
        dtype, usecols = _layout(cols, ncols)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": an empty Rows
                stream = io.TextIOWrapper(io.BytesIO(self.raw), encoding="utf-8", errors="replace")
                data = np.loadtxt(stream, dtype=dtype, delimiter=delimiter, skiprows=skip, ndmin=1,
                                  comments=comments, usecols=usecols, quotechar='"')
        except (ValueError, UnicodeError):
            return self._rows_slow(cols, bad, delimiter, skip, ncols, comments)
        lines = self._line_numbers(skip, comments, len(data))
        if lines is None:
            return self._rows_slow(cols, bad, delimiter, skip, ncols, comments)
        return Rows({c.name: data[c.name] for c in cols}, lines, self.source)

    def _line_numbers(self, skip: int, comments: str | None, n: int) -> np.ndarray | None:
        """Line numbers of the n parsed rows; None if they cannot be matched to lines."""
        raw, start = self.raw, self._offset(skip)  # no copy of the body: files can be GBs
        blank = raw.startswith(b"\n", start) or raw.find(b"\n\n", start) >= 0
        if comments:
            c = comments.encode()
            blank = blank or raw.startswith(c, start) or raw.find(b"\n" + c, start) >= 0
        if not blank:
            n_lines = raw.count(b"\n", start) + (0 if raw.endswith(b"\n") or start >= len(raw) else 1)
            return np.arange(skip + 1, skip + 1 + n, dtype=np.int64) if n_lines == n else None
        nums = [i for i, ln in enumerate(self.raw.split(b"\n"), 1)
                if i > skip and _strip_comment(ln, comments)]
        return np.asarray(nums, dtype=np.int64) if len(nums) == n else None

    def _rows_slow(self, cols: Sequence[Col], bad: BadRows, delimiter: str, skip: int,
                   ncols: int | None, comments: str | None) -> Rows:
        """Line by line: every malformed line goes to `bad`, the others are kept."""
        need = max(c.index for c in cols) + 1
        values: dict[str, list] = {c.name: [] for c in cols}
        lines: list[int] = []
        text = self.raw.decode("utf-8", errors="replace")
        for i, line in enumerate(text.split("\n"), 1):
            if i <= skip:
                continue
            if comments:
                line = line.split(comments, 1)[0]
            if not line.strip():
                continue
            fields = next(csv.reader([line], delimiter=delimiter)) if '"' in line else line.split(delimiter)
            if ncols is not None and len(fields) != ncols:
                bad(f"expected {ncols} fields separated by {delimiter!r}, found {len(fields)}: {line[:80]!r}",
                    self.source, i)
                continue
            if len(fields) < need:
                bad(f"expected at least {need} fields separated by {delimiter!r}, found {len(fields)}: "
                    f"{line[:80]!r}", self.source, i)
                continue
            try:
                row = [_convert(fields[c.index], c) for c in cols]
            except _FieldError as e:
                bad(str(e), self.source, i)
                continue
            for c, v in zip(cols, row):
                values[c.name].append(v)
            lines.append(i)
        out = {c.name: np.array(values[c.name], dtype=c.dtype()) for c in cols}
        return Rows(out, np.asarray(lines, dtype=np.int64), self.source)


def read_rows(
    folder: DataFolder,
    entry: Entry,
    cols: Sequence[Col],
    bad: BadRows,
    *,
    delimiter: str = ",",
    skip: int = 0,
    ncols: int | None = None,
    comments: str | None = None,
) -> Rows:
    """Parse a delimited text file (plain, .gz or inside a zip) into typed columns.

    Args:
        cols: the columns to keep.
        bad: the bad-row policy; a line that cannot be parsed is reported with its number.
        delimiter: one character.
        skip: header lines before the data.
        ncols: when given, every data line must have exactly this many fields (a stricter check
            than "has the columns asked for"; unused columns are not converted).
        comments: a character that ends the useful part of a line (WISDM's trailing ";").

    Blank lines are ignored. Values keep their text: the caller checks finiteness, labels and
    timestamps (`Rows.reject`).
    """
    return TextFile(folder, entry).rows(cols, bad, delimiter=delimiter, skip=skip, ncols=ncols,
                                        comments=comments)


def codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, distinct values) of a column with few distinct values, e.g. device names.

    Like np.unique(values, return_inverse=True), but sorts only the first value of each run of
    equal values: raw sensor files repeat a user or label for thousands of rows, and sorting
    millions of strings takes seconds.
    """
    if len(values) == 0:
        return np.zeros(0, np.int32), values[:0]
    starts = np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1])
    uniq, inv = np.unique(values[starts], return_inverse=True)
    return np.repeat(inv.reshape(-1).astype(np.int32), np.diff(np.append(starts, len(values)))), uniq


class _FieldError(ValueError):
    pass


def _convert(text: str, col: Col):
    kind = col.kind
    if kind in "fi":
        t = text.strip()
        try:
            if "_" in t:  # Python accepts 1_000; numpy's reader does not
                raise ValueError
            return float(t) if kind == "f" else int(t)
        except ValueError:
            what = "a number" if kind == "f" else "an integer"
            raise _FieldError(f"column {col.index + 1} ({col.label or col.name}): cannot read {text!r} as "
                              f"{what}") from None
    if kind == "b":
        return text.encode("latin-1", errors="replace")
    return text


def _strip_comment(line: bytes, comments: str | None) -> bytes:
    if comments:
        line = line.split(comments.encode(), 1)[0]
    return line


def _layout(cols: Sequence[Col], ncols: int | None) -> tuple[np.dtype, list[int] | None]:
    """The structured dtype for np.loadtxt, and usecols (None when every column is parsed)."""
    names = [c.name for c in cols]
    if len(set(names)) != len(names) or len({c.index for c in cols}) != len(cols):
        raise ValueError(f"duplicate column names or indices in {cols}")
    if ncols is None:
        order = sorted(cols, key=lambda c: c.index)
        return np.dtype([(c.name, c.dtype()) for c in order]), [c.index for c in order]
    by_index = {c.index: c for c in cols}
    if max(by_index) >= ncols:
        raise ValueError(f"column index {max(by_index)} >= ncols {ncols}")
    # unused columns are read as one byte: the field count is checked, the value is not kept
    fields = [(by_index[j].name, by_index[j].dtype()) if j in by_index else (f"_unused{j}", "S1")
              for j in range(ncols)]
    return np.dtype(fields), None


# --------------------------------------------------------------------------------------------
# all-numeric tables (UCI, MotionSense): one row per line, exact error lines


@dataclass
class Table:
    """A parsed numeric text file.

    Attributes:
        values: (m, ncols) float64, one row per non-blank data line; NaN where the line was bad.
        ok: (m,) bool, False for the lines that were reported through `bad` (skip mode).
        lines: (m,) int, the 1-based line number of each row, for messages.
        header: the `header` lines skipped before the data, for the caller to check.
    """

    values: np.ndarray
    ok: np.ndarray
    lines: np.ndarray
    header: tuple[str, ...] = ()


def blank_separated_rows(folder: DataFolder, entry: Entry, cols: Sequence[Col], bad: BadRows, delimiter: str,
                         ncols: int) -> Rows | None:
    """The rows of a file whose fields are separated by runs of blanks (MHEALTH's tabs, PAMAP2's spaces), `ncols` per
    line, parsed by numpy's C reader with the bad lines reported; None when the file cannot be read (a truncated .gz:
    reported through `bad`, TextFile.read)."""
    tf = TextFile.read(folder, entry, bad)
    if tf is None:
        return None
    tf.single_delimited(delimiter.encode(), ncols)  # runs of blanks -> one delimiter, for the C parser
    return tf.rows(cols, bad, delimiter=delimiter, ncols=ncols)


def read_table(
    folder: DataFolder,
    entry: Entry,
    bad: BadRows,
    ncols: int,
    delimiter: str | None = None,
    header: int = 0,
    usecols: tuple[int, ...] | None = None,
    limit: float | np.ndarray = np.inf,
) -> Table | None:
    """Parse a text table of `ncols` numbers per line, fast (numpy) with exact error lines.

    numpy parses the whole file at C speed; only when that fails (a non-number, a wrong column
    count, NaN or inf) is the file walked line by line to report each bad line through `bad`
    (DataError naming file and line in "error" mode). In "skip" mode the bad rows come back with
    `ok` False, so that loaders can drop the same sample from every aligned stream. Blank lines
    are ignored. Returns None (after reporting) when the file as a whole cannot be read.

    Args:
        delimiter: None for any whitespace (UCI), "," for csv.
        limit: the largest plausible |value| in the file's units (one, or one per parsed column);
            a row beyond it is bad like a NaN (crosshar.limits: a sensor cannot measure it).
        header: number of leading lines to skip (checked by the caller).
        usecols: keep only these columns (every line must still have `ncols`); only for a
            one-character delimiter, whose count is checked instead of parsing unused columns.
    """
    raw = read_bytes_or_report(entry, bad)  # a truncated .gz, a damaged zip member: bad input, skipped and listed
    if raw is None:
        return None
    try:
        with folder.open_text(entry, raw=raw) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        bad(f"not a text file ({e.reason} at byte {e.start})", entry.display())
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            values = np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter,
                                skiprows=header, ndmin=2, comments=None, usecols=usecols)
        if usecols is None:
            fast = values.shape[1] == ncols
        else:  # unused columns were not parsed: check that every line has ncols fields
            body = (text.split("\n", header) + [""])[header]
            fast = body.count(delimiter) == (ncols - 1) * len(values)  # type: ignore[arg-type]
        fast = fast and not out_of_range(values, limit).any()
    except ValueError:
        fast = False
    if fast:
        n_lines = text.count("\n") + (not text.endswith("\n"))
        if n_lines - header == len(values):
            line_no = np.arange(header + 1, header + 1 + len(values))
        else:  # blank lines in between
            line_no = np.array([i for i, s in enumerate(text.splitlines(), 1) if i > header and s.strip()])
        table = Table(values, np.ones(len(values), bool), line_no)
    else:
        table = _read_table_slow(text, entry, bad, ncols, delimiter, header,
                                 limit if usecols is None else _widen(limit, usecols, ncols))
        if usecols is not None:
            table.values = table.values[:, list(usecols)]
    if len(table.values) == 0:
        bad("no data rows", entry.display())
        return None
    if header:
        table.header = tuple(text.split("\n", header)[:header])
    return table


def _widen(limit: float | np.ndarray, usecols: tuple[int, ...], ncols: int) -> np.ndarray:
    """Per-column limits of the parsed columns, spread onto all `ncols` (the others unlimited)."""
    out = np.full(ncols, np.inf)
    out[list(usecols)] = limit
    return out


def _read_table_slow(text: str, entry: Entry, bad: Callable, ncols: int,
                     delimiter: str | None, header: int, limit: float | np.ndarray = np.inf) -> Table:
    rows: list[list[float]] = []
    ok: list[bool] = []
    line_no: list[int] = []
    sep = "whitespace" if delimiter is None else repr(delimiter)
    for i, line in enumerate(text.splitlines(), 1):
        if i <= header or not line.strip():
            continue
        parts = line.strip().split(delimiter)
        problem = ""
        if len(parts) != ncols:
            problem = f"expected {ncols} numbers separated by {sep}, found {len(parts)}"
        else:
            try:
                row = [float(p) for p in parts]
            except ValueError as e:
                problem = str(e)
            else:
                problem = range_problem(np.array(row), limit)
        if problem:
            bad(f"{problem}: {line[:80]!r}", entry.display(), i)
            row = [np.nan] * ncols
        rows.append(row)
        ok.append(not problem)
        line_no.append(i)
    values = np.array(rows, dtype=np.float64).reshape(-1, ncols)
    return Table(values, np.array(ok, bool), np.array(line_no, int))


def integers(table: Table, entry: Entry, bad: BadRows, lo: int, hi: int, what: str) -> Table:
    """Mark rows whose values are not integers in [lo, hi] as bad (reported)."""
    v = table.values
    wrong = table.ok & ~((v == np.round(v)) & (v >= lo) & (v <= hi)).all(axis=1)
    for r in np.flatnonzero(wrong):
        bad(f"{what} must be integers in {lo}..{hi}, got {v[r].tolist()}", entry.display(),
            int(table.lines[r]))
    return Table(v, table.ok & ~wrong, table.lines, table.header)
