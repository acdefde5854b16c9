"""Atomic checkpoints: written to a temporary file, fsynced, then renamed over the old one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from crosshar.data.store import atomic_write_bytes, atomic_write_json
from crosshar.errors import CrossharError


def save(path: str | Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CrossharError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (a damaged file: say which)
        raise CrossharError(f"{path}: not a readable checkpoint ({e})") from None


__all__ = ["save", "load", "atomic_write_json"]
