"""Tiny files in the exact public formats of the raw datasets, for the loader tests.

Every writer returns text; `write_tree` puts a {logical path: text} dict on disk as plain files,
as `.gz` files, or as members of one zip archive, the three ways DataFolder must read them.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from crosshar.data.checks import rotation_slope  # noqa: F401  (re-exported for the loader tests)
from crosshar.data.io import DataFolder
from crosshar.errors import DataError, MissingDataError


def write_tree(root: Path, files: dict[str, str | bytes], how: str = "plain", zip_name: str = "data.zip") -> Path:
    """Write `files` (text, or bytes for binary formats) under `root`: how = "plain", "gz" (name + ".gz") or "zip"
    (one archive named `zip_name`)."""
    root.mkdir(parents=True, exist_ok=True)
    if how == "zip":
        with zipfile.ZipFile(root / zip_name, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, content in files.items():
                zf.writestr(name, content)
        return root
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if how == "gz":
            p.with_name(p.name + ".gz").write_bytes(gzip.compress(data))
        elif how == "plain":
            p.write_bytes(data)
        else:
            raise ValueError(how)
    return root


def truncate_gz(gz: Path, cut: str = "half") -> Path:
    """Cut a written .gz short, as an interrupted download leaves it: "half" its bytes, or "tail" its last 30 (the end
    of the deflate stream and the trailer). Returns `gz`."""
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-30])
    return gz


def skips_truncated_gz(load, root: Path, gz: Path) -> list:
    """Check that a truncated `gz` is bad input: `load(root)` (the default policy) stops with a one-line error naming
    the file, one that `--on-bad skip` skips (so the CLI adds its hint), and `load(root, "skip")` lists exactly that
    file. `load(root, policy)` returns (recordings, BadRows). Returns the recordings read with skip."""
    with pytest.raises(DataError, match=re.escape(str(gz)) + r": cannot read \(") as e:
        load(root)
    assert e.value.skippable and e.value.line is None and "\n" not in str(e.value)
    recs, bad = load(root, "skip")
    assert [(p, ln) for p, ln, _ in bad.skipped] == [(str(gz), None)], bad.report()
    return recs


# ---- UCI


def set_field(line: int, col: int, value: str, sep: str = " "):
    """A patch of a file's lines (a list of str) that writes `value` into 1-based column `col` of 1-based line
    `line`, the fields separated by `sep`."""
    def patch(lines):
        f = lines[line - 1].split(sep)
        f[col - 1] = value
        lines[line - 1] = sep.join(f)
        return lines
    return patch


def uci_raw_text(xyz: np.ndarray) -> str:
    """HAPT RawData acc_/gyro_ file: "x y z" per line, full precision."""
    return "".join(f"{x!r} {y!r} {z!r}\n" for x, y, z in np.asarray(xyz, dtype=float).tolist())


def uci_labels_text(rows: list[tuple[int, int, int, int, int]]) -> str:
    """HAPT RawData/labels.txt: "exp user activity start end" per line."""
    return "".join(" ".join(map(str, r)) + "\n" for r in rows)


def uci_number(v: float) -> str:
    """One number as UCI HAR's Inertial Signals write it: 16 wide, 7 decimals, 3-digit exponent."""
    if v == 0:
        m, e = 0.0, 0
    else:
        e = math.floor(math.log10(abs(v)))
        m = v / 10**e
        if round(abs(m), 7) >= 10:  # 9.99999999 rounds up to 10.0000000
            m, e = m / 10, e + 1
    return f"{m:.7f}e{'+' if e >= 0 else '-'}{abs(e):03d}".rjust(16)


def uci_signal_text(rows: np.ndarray) -> str:
    """An Inertial Signals file: one window of 128 numbers per line, e.g. "  1.0120000e+000 ..."."""
    return "".join("".join(uci_number(float(v)) for v in row) + "\n" for row in np.asarray(rows))


def uci_har_files(split: str, acc_g: np.ndarray, gyro: np.ndarray, subjects, ys, prefix: str = "") -> dict[str, str]:
    """The files of one UCI HAR split. acc_g, gyro: (N, 128, 3) windows (acc in g)."""
    d = f"{prefix}{split}/"
    out = {}
    for c, axis in enumerate("xyz"):
        out[f"{d}Inertial Signals/total_acc_{axis}_{split}.txt"] = uci_signal_text(acc_g[:, :, c])
        out[f"{d}Inertial Signals/body_gyro_{axis}_{split}.txt"] = uci_signal_text(gyro[:, :, c])
        # body_acc is shipped too; the loader must not need it
        out[f"{d}Inertial Signals/body_acc_{axis}_{split}.txt"] = uci_signal_text(acc_g[:, :, c] * 0.1)
    out[f"{d}subject_{split}.txt"] = "".join(f"{s}\n" for s in subjects)
    out[f"{d}y_{split}.txt"] = "".join(f"{y}\n" for y in ys)
    return out


def windows(signal: np.ndarray, width: int = 128, step: int = 64) -> np.ndarray:
    """(n, C) signal -> (N, width, C) windows with the given step (UCI HAR: 128, 50 % overlap)."""
    starts = range(0, len(signal) - width + 1, step)
    return np.stack([signal[s: s + width] for s in starts])


# ---- MotionSense

MS_A_HEADER = (
    ",attitude.roll,attitude.pitch,attitude.yaw,gravity.x,gravity.y,gravity.z,rotationRate.x,"
    "rotationRate.y,rotationRate.z,userAcceleration.x,userAcceleration.y,userAcceleration.z"
)


def motionsense_a_text(gravity: np.ndarray, rotation: np.ndarray, user: np.ndarray) -> str:
    """A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv (attitude columns filled with fixed values)."""
    lines = [MS_A_HEADER]
    for i, (g, r, u) in enumerate(zip(gravity, rotation, user)):
        vals = [1.528132, -0.733896, 0.696372, *g, *r, *u]
        lines.append(f"{i}," + ",".join(repr(float(v)) for v in vals))
    return "\n".join(lines) + "\n"


def motionsense_xyz_text(xyz: np.ndarray) -> str:
    """B_Accelerometer_data / C_Gyroscope_data csv: ",x,y,z" then "index,x,y,z"."""
    return ",x,y,z\n" + "".join(f"{i},{x!r},{y!r},{z!r}\n" for i, (x, y, z) in enumerate(np.asarray(xyz, float).tolist()))


# ---- UEA .ts


def ts_text(cases: list[np.ndarray], labels: list[str], length: int | None = None, extra_header: str = "") -> str:
    """A UEA .ts file like BasicMotions_TRAIN.ts; cases: (6, T) arrays."""
    t = length if length is not None else cases[0].shape[1]
    head = (
        "#The data was generated as part of a student project where four students performed four activities\n"
        "@problemName BasicMotions\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 6\n"
        f"@equalLength true\n@seriesLength {t}\n{extra_header}"
        "@classLabel true Standing Running Walking Badminton\n@data\n"
    )
    body = "".join(":".join(",".join(f"{v:g}" for v in dim) for dim in x) + f":{lab}\n" for x, lab in zip(cases, labels))
    return head + body


# ---- real data


def real_folder(dataset) -> DataFolder:
    """The dataset's folder under $CROSSHAR_DATA, or skip the test saying why."""
    root = os.environ.get("CROSSHAR_DATA")
    if not root:
        pytest.skip("CROSSHAR_DATA is not set (real-data test: point it at the raw datasets folder)")
    try:
        return DataFolder(dataset.locate(root))
    except MissingDataError as e:
        pytest.skip(f"real data absent: {e}")
