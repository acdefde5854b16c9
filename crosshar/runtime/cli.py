"""`crosshar-run model.onnx recording.csv`: print the activities of a recording or a live stream.

Input: CSV lines `t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z` (t in seconds; the header is optional
and, when present, may order the columns differently; '#' lines are comments), from a file or from
stdin ('-'), one sample per line, UTF-8 (a leading byte-order mark is dropped) or UTF-16 with its
byte-order mark (Windows "Unicode" text), plain or gzip-compressed (recognised by its first bytes,
whatever the file's name); a sample line holding a byte that does not decode is a bad line like any other
(warned and skipped, an error with --strict), a header holding one an error, each naming its line; a closed
stdin ('-' or /dev/stdin with `<&-`) is an error. Output on stdout, one line per classified window:
`12.00s walking 0.93` (text) or a JSON object (jsonl); a gap in the stream prints a line too.
Warnings (skipped lines, a low input rate) go to stderr. Errors never print a traceback: the message
goes to stderr as `crosshar-run: error: ...` and the exit code is 2.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import re
import sys
import zlib
from pathlib import Path
from typing import IO, Iterator, NoReturn, Sequence

PROG = "crosshar-run"
TIME_NAMES = ("t", "time", "timestamp")
MAX_LINE = 4096  # characters: a sample line is about 100; a longer one is not a sample
GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of every gzip stream
BOM = "\ufeff"  # the UTF-8 byte-order mark that Excel and Windows tools put before the header
# Byte-order marks that name another encoding than UTF-8; the codec drops the mark. UTF-32's come first: its
# little-endian mark begins with UTF-16's. Without one of these, the bytes are read as UTF-8.
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# What a byte that does not decode becomes (errors="surrogateescape": U+DC80-U+DCFF) and what a lone UTF-16
# surrogate stays (errors="surrogatepass"): checked line by line, so that the error names the line it is on
NOT_TEXT = re.compile("[\ud800-\udfff]")
RESAVE = "save the file as UTF-8, or as UTF-16 with its byte-order mark"
# Upper bounds of the options (each must also be finite and > 0, or >= 1; _check_options). A value
# beyond one is a typo, which would otherwise overflow or cost time and memory, not change a result:
MAX_HOP_S = 86_400.0  # --hop-seconds: a classification a day is no stream's use (and hop x rate stays an int)
MAX_SMOOTH = 1000  # --smooth: each window's vote runs over the last K windows' probabilities
MAX_THREADS = 1024  # --threads: onnxruntime starts them all at once; beyond the cores they only slow it


class _Usage(Exception):
    """A problem with the input's structure or the options (always an error)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with an option error as one line like every other error (`crosshar-run: error: ...`, exit 2)
    instead of the usage block followed by the error; --help still prints the usage."""

    def error(self, message: str) -> NoReturn:
        raise _Usage(f"{' '.join(message.split())}; see {self.prog} --help")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Recognise activities in an IMU recording (CSV) with a model exported by `crosshar export`.",
    )
    p.add_argument("model", help="the .onnx model (its sidecar .json must lie next to it)")
    p.add_argument("input", help="CSV file of samples t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z, or '-' for stdin")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="output format (default text)")
    p.add_argument("--hop-seconds", type=float, default=None,
                   help="seconds between classifications (default: the model's training stride)")
    p.add_argument("--smooth", type=int, default=1, metavar="K",
                   help="majority vote over the last K windows (default 1 = off)")
    p.add_argument("--ema", type=float, default=None, metavar="A",
                   help="exponential moving average of the probabilities, weight A on the newest window "
                        "(instead of --smooth)")
    p.add_argument("--units", choices=("m/s2", "g"), default="m/s2", help="accelerometer units of the input")
    p.add_argument("--gyro-units", choices=("rad/s", "deg/s"), default="rad/s",
                   help="gyroscope units of the input (many loggers write deg/s)")
    p.add_argument("--sign", choices=("android", "ios"), default="android",
                   help="accelerometer sign convention: android (+g up when lying still) or ios (CoreMotion, -g)")
    p.add_argument("--max-gap", type=float, default=1.0, metavar="S",
                   help="a timestamp jump above S seconds resets the buffer (default 1)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad line instead of skipping it")
    return p


def _columns(header: list[str], channels: list[str], where: str) -> list[int]:
    """Indices of (t, *channels) in a header row."""
    names = [h.strip().lower() for h in header]
    known = set(TIME_NAMES) | {"acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _Usage(f"{where}: unknown column(s) {', '.join(map(repr, unknown))} in the header; "
                     f"expected t,{','.join(channels)}")
    tcol = [i for i, n in enumerate(names) if n in TIME_NAMES]
    missing = [c for c in channels if c not in names]
    if len(tcol) != 1 or missing:
        raise _Usage(f"{where}: the header must name one time column (t) and {', '.join(channels)}"
                     + (f"; missing {', '.join(missing)}" if missing else ""))
    return [tcol[0]] + [names.index(c) for c in channels]


def read_samples(lines: Iterator[str], channels: list[str], source: str,
                 encoding: str | None = None) -> Iterator[tuple[int, float, list[float] | None, str]]:
    """Parse CSV lines; yields (line number, t, values in `channels` order, "") or (line, nan, None, problem).

    Without a header, rows are `t` then the model's channels; an accelerometer-only model also
    accepts the 7-field acc + gyro rows (the gyro is ignored). With a header, columns are found by
    name and every row must have the header's field count.

    A sample line holding a byte that did not decode (`encoding`: the stream's, see open_input) is a bad line like
    any other: its problem names the byte. A header holding one is an error (_Usage): the file is in another
    encoding, and its column names cannot be trusted. The first such line is a sample, not a header, when its time
    field is a number without the byte or its other fields are numbers (_sample_like). A comment is skipped whatever
    its bytes: nothing in it is read.
    """
    C = len(channels)
    cols: list[int] | None = None
    n_fields = 0
    expected = f"t,{','.join(channels)}"
    for n, raw in enumerate(lines, 1):
        s = (raw.removeprefix(BOM) if n == 1 else raw).strip()  # a BOM in a text stdin (bytes: the codec drops it)
        if not s or s.startswith("#"):
            continue
        fields = [f.strip() for f in s.split(",")]
        not_text = _not_text(raw, encoding)
        if not_text:
            if cols is None and not _sample_like(fields):  # the first line that is not a comment: a header?
                raise _Usage(f"{source}, line {n}: {not_text}")
            yield n, math.nan, None, not_text
            continue
        if cols is None:
            try:
                float(fields[0])
            except ValueError:
                cols, n_fields = _columns(fields, channels, f"{source}, line {n}"), len(fields)
                expected = ",".join(fields)
                continue
            if len(fields) == 1 + C or (C == 3 and len(fields) == 7):
                cols, n_fields = list(range(1 + C)), len(fields)
            else:
                yield n, math.nan, None, f"expected {1 + C} comma-separated fields ({expected}), got {len(fields)}"
                continue
        if len(fields) != n_fields:
            yield n, math.nan, None, f"expected {n_fields} comma-separated fields ({expected}), got {len(fields)}"
            continue
        vals, problem = [], ""
        for i in cols:
            try:
                v = float(fields[i])
            except ValueError:
                problem = f"field {i + 1} ({fields[i][:20]!r}) is not a number"
                break
            if not math.isfinite(v):
                problem = f"field {i + 1} is {fields[i]!r}, not a finite number"
                break
            vals.append(v)
        if problem:
            yield n, math.nan, None, problem
        else:
            yield n, vals[0], vals[1:], ""


class _Replay(io.RawIOBase):
    """The bytes of `f` from its start, after its first bytes (`head`) were read to tell its format: stdin cannot
    seek back. Reads what has arrived (read1), so that nothing here waits for more bytes than a line needs: plain
    text (UTF-8 or UTF-16) on a live stream is read line by line as it comes. Gzip is not: CPython's gzip reader
    holds back what it has decompressed until more compressed bytes arrive, so on a live gzip pipe a window can
    print a few seconds late (and gzip upstream itself sends its output in blocks)."""

    def __init__(self, head: bytes, f: IO[bytes], owned: Sequence[IO[bytes]] = ()):
        super().__init__()
        self._head, self._f, self._owned = head, f, owned  # owned: closed with this stream (never stdin)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._head or self._f.read1(len(b))
        n = min(len(b), len(data))
        b[:n], self._head = data[:n], data[n:]
        return n

    def close(self) -> None:
        for f in self._owned:
            f.close()
        super().close()


STDIN_PATHS = ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def _closed_stdin(name: str) -> str:
    """The error for an input that reads stdin (`name` '-', or a path to it: /dev/stdin, /dev/fd/0) while stdin is
    closed (`<&-`), else "". Python sets sys.stdin to None when fd 0 is closed at its start; fd 0 itself may have been
    reused since (onnxruntime opens /dev/null there when the model is loaded), and /dev/stdin then reads as empty."""
    if name == "-":
        return "stdin is closed: nothing to read" if sys.stdin is None else ""
    fd0 = f"/proc/{os.getpid()}/fd/0"  # what /dev/stdin resolves to while fd 0 is closed (Linux)
    if os.path.normpath(name) not in (*STDIN_PATHS, fd0) and os.path.realpath(name) != fd0:
        return ""
    closed = sys.stdin is None
    if not closed:
        try:
            os.fstat(0)
        except OSError:  # EBADF: closed since Python started
            closed = True
    return f"{name}: stdin is closed: nothing to read" if closed else ""


def open_input(name: str, source: str = "<stdin>") -> IO[str]:
    """The recording `name` ('-': stdin) as text: gzip-compressed and/or UTF-16 when its first bytes say so.

    The bytes decide, not the name: a browser that unpacks a download often keeps its `.gz`. Text is UTF-8
    (its BOM dropped) unless a byte-order mark says UTF-16 (or UTF-32); a byte that does not decode is kept
    (escaped) for read_samples to name with its line, never replaced. Stdin is read the same way when it has
    bytes below it (not a StringIO, as in tests: that is text already). Plain text on stdin is read as it comes;
    gzip on stdin may lag a few seconds behind a live stream (see _Replay). A closed stdin (`<&-`) is an error.
    """
    closed = _closed_stdin(name)  # `crosshar-run m.onnx - <&-`: Python sets sys.stdin to None
    if closed:
        raise _Usage(closed)
    if name == "-" and not hasattr(sys.stdin, "buffer"):
        return sys.stdin
    try:
        raw = sys.stdin.buffer if name == "-" else open(name, "rb")
    except OSError as e:  # no read permission, a file gone since it was found
        raise _Usage(f"{source}: cannot be read ({e.strerror or e})") from None
    owned: list[IO[bytes]] = [] if name == "-" else [raw]
    try:
        f, head = raw, raw.read(4)
        if head[:2] == GZIP_MAGIC:
            f = gzip.GzipFile(fileobj=_Replay(head, raw), mode="rb")  # gets what has come (may hold it back: _Replay)
            owned.insert(0, f)
            head = f.read(4)
    except (OSError, EOFError, zlib.error) as e:
        for g in owned:
            g.close()
        raise _Usage(f"{source}, line 1: cannot be read ({e})") from None
    enc = next((e for bom, e in BOMS if head.startswith(bom)), "utf-8-sig")
    if enc == "utf-8-sig" and len(head) >= 2 and (head[0] == 0) != (head[1] == 0):
        for g in owned:
            g.close()
        raise _Usage(f"{source}, line 1: a NUL byte every other byte: UTF-16 without its byte-order mark? {RESAVE}")
    return io.TextIOWrapper(io.BufferedReader(_Replay(head, f, owned)), encoding=enc,
                            errors="surrogateescape" if enc == "utf-8-sig" else "surrogatepass")


def _sample_like(fields: list[str]) -> bool:
    """Whether the fields of a first line holding a byte that did not decode are a sample's, not a header's: its time
    field is a number once the characters that are not text are dropped (b"\\xff1.0"), or all its other fields are
    numbers. A header's names are not numbers ("\\xe9t,acc_x,...")."""
    def number(f: str) -> bool:
        try:
            float(f)
        except ValueError:
            return False
        return True

    return number(NOT_TEXT.sub("", fields[0])) or (len(fields) > 1 and all(map(number, fields[1:])))


def _not_text(line: str, encoding: str | None) -> str:
    """Why `line` is not text ("" when it is): a byte that did not decode, or a lone UTF-16 surrogate."""
    m = NOT_TEXT.search(line)
    if m is None:
        return ""
    c, col = ord(m.group()), m.start() + 1
    if encoding == "utf-8-sig" and c >= 0xDC80:  # surrogateescape: U+DC80 + the byte
        return f"byte 0x{c - 0xDC00:02X} (character {col}) is not UTF-8; {RESAVE}"
    return f"character {col} is half of a UTF-16 surrogate pair (U+{c:04X}), not text; {RESAVE}"


def bounded_lines(f: IO[str], source: str, limit: int = MAX_LINE) -> Iterator[str]:
    """The lines of `f`, none read whole if longer than `limit` characters (DataError naming it).

    A stream that cannot be read on (a truncated or corrupt gzip file, UTF-16 cut in the middle of a
    character) is an error naming the line it stopped at. A line holding a byte that does not decode (a file in
    another encoding, Latin-1 or Windows-1252) is passed on as it is, the byte escaped: read_samples names it, as
    an error in the header and as a bad line (skipped, or an error with --strict) in a sample.
    """
    n = 0
    while True:
        try:
            line = f.readline(limit + 1)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            raise _Usage(f"{source}, line {n + 1}: cannot be read ({e})") from None
        if not line:
            return
        n += 1
        if len(line) > limit and not line.endswith("\n"):
            raise _Usage(f"{source}, line {n}: longer than {limit:,} characters; a sample line is "
                         f"t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z (is this the right file?)")
        yield line


def _emit(ev, fmt: str, out: IO[str]) -> None:
    from crosshar.runtime.recognizer import Activity

    if isinstance(ev, Activity):
        if fmt == "text":
            out.write(f"{ev.t:.2f}s {ev.label} {ev.prob:.2f}\n")
        else:
            out.write(json.dumps({"t": round(ev.t, 3), "label": ev.label, "prob": round(ev.prob, 4)}) + "\n")
    elif ev.kind == "gap":
        if fmt == "text":
            out.write(f"{ev.t:.2f}s gap: {ev.message}\n")
        else:
            out.write(json.dumps({"t": round(ev.t, 3), "event": "gap", "message": ev.message}) + "\n")
    else:
        sys.stderr.write(f"{PROG}: warning: {ev.message}\n")


def _check_options(args: argparse.Namespace) -> None:
    """Refuse an option value the runtime cannot use, naming the option (argparse checks only its type)."""
    def seconds(opt: str, v: float | None, top: float | None = None) -> None:
        if v is not None and not (math.isfinite(v) and v > 0 and (top is None or v <= top)):
            raise _Usage(f"{opt} must be a finite number of seconds > 0{'' if top is None else f' and <= {top:g}'}, "
                         f"got {v:g}")

    def count(opt: str, v: int | None, top: int) -> None:
        if v is not None and not 1 <= v <= top:
            raise _Usage(f"{opt} must be an integer from 1 to {top}, got {v}")

    seconds("--hop-seconds", args.hop_seconds, MAX_HOP_S)
    seconds("--max-gap", args.max_gap)
    count("--smooth", args.smooth, MAX_SMOOTH)
    count("--threads", args.threads, MAX_THREADS)
    if args.ema is not None and not (math.isfinite(args.ema) and 0 < args.ema <= 1):
        raise _Usage(f"--ema must be a weight in (0, 1], got {args.ema:g}")
    if args.ema is not None and args.smooth > 1:
        raise _Usage("--ema and --smooth K > 1 are two smoothings: choose one")


def run(args: argparse.Namespace, stdout: IO[str]) -> int:
    from crosshar.errors import DataError
    from crosshar.runtime.recognizer import Recognizer

    _check_options(args)
    closed = _closed_stdin(args.input)  # before the model is loaded: it may reuse a closed fd 0 (_closed_stdin)
    if closed:
        raise _Usage(closed)
    source = "<stdin>" if args.input == "-" else args.input
    rec = Recognizer(args.model, hop_seconds=args.hop_seconds, smooth=args.smooth, ema=args.ema,
                     max_gap=args.max_gap, units=args.units, gyro_units=args.gyro_units, sign=args.sign,
                     strict=args.strict,
                     source=source, threads=args.threads)
    if args.input != "-":  # a named pipe, /dev/stdin or `<(zcat x.gz)` (/dev/fd/63) is no regular file, yet readable
        if not Path(args.input).exists():
            raise DataError("input file not found", args.input)
        if Path(args.input).is_dir():
            raise DataError("is a directory, not a recording; name a CSV file in it", args.input)
    n_bad = 0
    f = open_input(args.input, source)
    try:
        samples = read_samples(bounded_lines(f, source), rec.model.channels, source, getattr(f, "encoding", None))
        for line, t, vals, problem in samples:
            if problem:
                if args.strict:
                    raise DataError(problem, source, line)
                n_bad += 1
                sys.stderr.write(f"{PROG}: warning: {source}, line {line}: {problem}; skipped\n")
                continue
            for ev in rec.feed(t, vals, line=line):
                _emit(ev, args.format, stdout)
            if args.input == "-":
                stdout.flush()
        for ev in rec.flush():
            _emit(ev, args.format, stdout)
    finally:
        if f is not sys.stdin:
            f.close()
    stdout.flush()
    skipped = n_bad + rec.n_skipped
    if skipped:
        sys.stderr.write(f"{PROG}: warning: {skipped} bad line(s) skipped (use --strict to stop at the first)\n")
    if rec.n_windows == 0:
        sys.stderr.write(f"{PROG}: warning: no activity: the stream never held {rec.window / rec.rate:g} s of "
                         f"gap-free samples (one window)\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `crosshar-run`; returns the exit code (0, or 2 on an error)."""
    try:
        return run(_parser().parse_args(argv), sys.stdout)
    except BrokenPipeError:  # `crosshar-run ... | head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001  (never a traceback: one clear line)
        from crosshar.errors import CrossharError

        msg = str(e) if isinstance(e, (CrossharError, _Usage, ValueError, OSError)) else f"{type(e).__name__}: {e}"
        sys.stderr.write(f"{PROG}: error: {msg}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
