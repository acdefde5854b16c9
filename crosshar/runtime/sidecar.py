"""The sidecar schema: what `crosshar export` writes next to a model and the runtime checks on load.

One home for the contract between the two (standard library only, so the torch-free runtime can
use it): `export` validates the dict before writing it, `read_sidecar` validates it when reading,
and `check_graph` compares it with the ONNX graph's declared input and output. Every problem is a
DataError naming the sidecar file and the key.

Required keys:
    format      SIDECAR_FORMAT
    labels      the K class names, in the order of the graph's probabilities (unique, non-empty, no control
                characters: a line break would forge an output line)
    rate_hz     the sampling rate of the windows, Hz (RATE_RANGE_HZ: 0.5 to 40,000)
    window      samples per window T (integer > 1)
    stride      samples between classifications at training time (integer >= 1)
    channels    the C channel names, acc_x, acc_y, acc_z[, gyro_x, gyro_y, gyro_z]
    sha256      hex digest of the .onnx file: a model that does not match its sidecar is refused
Optional, checked when present:
    input       {"name": "window", "shape": ["batch", T, C]}
    output      {"name": "probs", "shape": ["batch", K]}
    normalization  {"kind": "none" | "zscore_subject"}
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from crosshar.errors import DataError

SIDECAR_FORMAT = "crosshar-onnx/1"
CHANNEL_SETS = (["acc_x", "acc_y", "acc_z"], ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
NORMALIZATIONS = ("none", "zscore_subject")
REQUIRED = ("format", "labels", "rate_hz", "window", "stride", "channels", "sha256")
RATE_RANGE_HZ = (0.5, 40_000.0)  # rate_hz: the rates an IMU records at (the runtime's input range too)


def sidecar_path(model_path: str | Path) -> Path:
    """`model.onnx` -> `model.json` (`model.int8.onnx` -> `model.int8.json`)."""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def validate(meta: Any, where: str | Path) -> dict[str, Any]:
    """`meta` if it follows the schema (module docstring); DataError naming `where` and the key otherwise."""
    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise DataError(f"sidecar key {key!r}: {msg}", where)

    if not isinstance(meta, dict):
        raise DataError(f"not a crosshar model sidecar (a JSON {type(meta).__name__}, not an object)", where)
    if meta.get("format") != SIDECAR_FORMAT:
        raise DataError(f"not a crosshar model sidecar (format {meta.get('format')!r}, expected {SIDECAR_FORMAT!r})",
                        where)
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise DataError(f"sidecar lacks the key(s) {', '.join(map(repr, missing))}; re-export the model "
                        "with `crosshar export`", where)
    labels = meta["labels"]
    need(isinstance(labels, list) and len(labels) > 0 and all(isinstance(x, str) and x for x in labels),
         "labels", f"must be a non-empty list of class names, got {labels!r}"[:200])
    # a line break or escape in a name would forge output lines (`5.95s sit\n99.00s walking 1.00 0.83`)
    bad = next((x for x in labels if any(unicodedata.category(c) == "Cc" for c in x)), None)
    need(bad is None, "labels", f"the class name {bad!r} holds a control character (a line break, tab or escape)"[:200])
    need(len(set(labels)) == len(labels), "labels", "names a class twice")
    rate = meta["rate_hz"]
    need(_number(rate) and rate > 0, "rate_hz", f"must be a positive number of Hz, got {rate!r}")
    lo, hi = RATE_RANGE_HZ  # beyond them the runtime's resampler would need a filter of millions of taps
    need(lo <= rate <= hi, "rate_hz", f"must be an IMU's sampling rate, {lo:g} to {hi:g} Hz, got {rate!r}")
    window, stride = meta["window"], meta["stride"]
    need(_integer(window) and window > 1, "window", f"must be an integer > 1 (samples), got {window!r}")
    need(_integer(stride) and stride >= 1, "stride", f"must be an integer >= 1 (samples), got {stride!r}")
    need(meta["channels"] in CHANNEL_SETS, "channels",
         f"must be {CHANNEL_SETS[1]} or {CHANNEL_SETS[0]}, got {meta['channels']!r}")
    need(isinstance(meta["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]) is not None, "sha256",
         f"must be the 64-hex-digit SHA-256 of the model file, got {meta['sha256']!r}")
    C, K = len(meta["channels"]), len(labels)
    if "input" in meta:
        shape = meta["input"].get("shape") if isinstance(meta["input"], dict) else None
        need(isinstance(shape, list) and shape[1:] == [window, C], "input",
             f"shape {shape!r} disagrees with window = {window} and {C} channels")
    if "output" in meta:
        shape = meta["output"].get("shape") if isinstance(meta["output"], dict) else None
        need(isinstance(shape, list) and shape[1:] == [K], "output",
             f"shape {shape!r} disagrees with the {K} labels")
    norm = meta.get("normalization")
    if norm is not None:
        kind = norm.get("kind") if isinstance(norm, dict) else None
        need(kind in NORMALIZATIONS, "normalization",
             f"kind must be one of {', '.join(NORMALIZATIONS)}, got {kind!r}")
    return meta


def read_sidecar(model_path: str | Path, verify: bool = True) -> dict[str, Any]:
    """The sidecar of `model_path`, validated, and (when `verify`) the model file checked against its sha256."""
    model_path = Path(model_path)
    if model_path.is_dir():
        raise DataError("is a directory, not a model file; name the .onnx file in it", model_path)
    if not model_path.is_file():
        raise DataError("model file not found", model_path)
    side = sidecar_path(model_path)
    if not side.is_file():
        raise DataError(f"no sidecar {side.name} next to the model; the runtime needs it for the sampling "
                        f"rate, window, channel order and labels (export with `crosshar export`)", model_path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"not a readable JSON sidecar ({e})", side) from None
    validate(meta, side)
    if verify and sha256_file(model_path) != meta["sha256"]:
        raise DataError(f"the model file does not match its sidecar {side.name} (sha256 differs): "
                        f"re-export both together", model_path)
    return meta


def check_graph(meta: dict[str, Any], inputs: list[tuple[str, list]], outputs: list[tuple[str, list]],
                where: str | Path) -> None:
    """The graph's declared (name, shape) of inputs and outputs against the sidecar.

    A dimension the graph leaves symbolic (a string or None) is not compared.
    """
    want_in, want_out = [meta["window"], len(meta["channels"])], [len(meta["labels"])]
    names_in, names_out = [n for n, _ in inputs], [n for n, _ in outputs]
    if "window" not in names_in or "probs" not in names_out:
        raise DataError(f"the graph's input(s) {names_in} and output(s) {names_out} are not 'window' -> 'probs': "
                        "not a model exported by crosshar", where)
    for (name, shape), want, what in ((inputs[names_in.index("window")], want_in, "window and channels"),
                                      (outputs[names_out.index("probs")], want_out, "labels")):
        got = list(shape)[1:]
        if len(got) != len(want) or any(isinstance(g, int) and g != w for g, w in zip(got, want)):
            raise DataError(f"the graph's {name!r} has shape {list(shape)}, but the sidecar's {what} say "
                            f"[batch, {', '.join(map(str, want))}]: the sidecar does not belong to this model", where)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
