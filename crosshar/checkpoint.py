"""Checkpoints: plain data only, written atomically, loaded without running code.

A checkpoint holds tensors and plain Python values (dict, list, tuple, str, int, float, bool,
None): `save` converts dataclasses, numpy arrays and scalars and paths to those, and `load` reads
with `torch.load(weights_only=True)`, which refuses any other object. A pickle can name any
callable to run while it loads (`__reduce__`), so a checkpoint from an untrusted source must never
be unpickled freely; with this format there is nothing that needs it.

Files are written to a temporary file, fsynced, then renamed over the old one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pickle
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.errors import ConfigError, CrossharError


def plain(obj: Any) -> Any:
    """`obj` with every value that is not a tensor or plain Python data made plain (recursively)."""
    if isinstance(obj, torch.Tensor) or obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj) if type(obj) in (list, tuple) else [plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(plain(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (tensors and plain data only)")


def save(path: str | Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(plain(obj), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: str | Path, fmt: str | None = None, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A checkpoint file (or `best.pt` of a run folder), checked for its format and keys.

    Args:
        fmt: the expected "format" entry (None: any).
        keys: entries that must be present.
    Raises:
        CrossharError naming the file: missing, damaged, not plain data (an old or crafted
        checkpoint), another format, a missing key.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CrossharError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        what = _refused(str(e))
        raise CrossharError(f"{path}: refused: the checkpoint holds Python objects other than tensors and plain "
                            f"data ({what}); it was written by an older crosshar or crafted. Nothing in it was run. "
                            f"Re-create it (rerun the pretrain / finetune that made it)") from None
    except Exception as e:  # noqa: BLE001  (a damaged file: say which)
        raise CrossharError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(ck, dict):
        raise CrossharError(f"{path}: not a crosshar checkpoint (holds a {type(ck).__name__}, not a dict)")
    if fmt is not None and ck.get("format") != fmt:
        raise CrossharError(f"{path}: not a {fmt} checkpoint (format {ck.get('format')!r})")
    missing = [k for k in keys if k not in ck]
    if missing:
        raise CrossharError(f"{path}: the checkpoint lacks {', '.join(map(repr, missing))}; re-create it "
                            "with this version of crosshar")
    return ck


@contextlib.contextmanager
def reading(path: str | Path):
    """Around code that uses a loaded checkpoint: a missing or malformed entry becomes a CrossharError."""
    try:
        yield
    except ConfigError as e:  # a config inside it that this version refuses (an unknown key, a value out of range)
        raise CrossharError(f"{path}: damaged or incompatible checkpoint ({str(e).removeprefix('<dict>: ')}); "
                            "re-create it with this version of crosshar") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise CrossharError(f"{path}: damaged or incompatible checkpoint ({type(e).__name__}: {first}); "
                            "re-create it with this version of crosshar") from None


def _refused(msg: str) -> str:
    """The one useful line of torch's multi-line weights_only message."""
    for line in msg.splitlines():
        line = line.strip()
        if line.startswith(("WeightsUnpickler error:", "Unsupported global", "Unsupported operand",
                            "Trying to load unsupported GLOBAL")):
            return line.removeprefix("WeightsUnpickler error:").strip()
    # never torch's first line: it advises switching the weights-only guard off, which would run the payload
    return next((ln.strip() for ln in msg.splitlines() if ln.strip() and "weights_only" not in ln),
                "objects torch refuses to load")


__all__ = ["save", "load", "plain", "reading", "atomic_write_json"]
