"""How fast are the readers of the big multi-position datasets on files of the real size? Seconds per million rows,
and peak memory.

    python benchmarks/reader_speed.py [--dataset pamap2|realworld] [--rows 300000] [--nan 0.02]

pamap2: writes one `Protocol/subject101.dat` of `--rows` rows in the dataset's own layout (54 single-space-separated
columns, 0.01 s apart, the heart rate mostly NaN, a share `--nan` of each IMU's rows dropped out as NaN) into a
temporary folder and times `PAMAP2().load` on it (parsing, checks, the NaN drop-outs and the 100 Hz grid) in
process CPU time. The real Protocol folder holds about 2.9 M rows (9 files of 0.2-0.45 M).

realworld: writes one proband's walking as the distribution ships it (`proband1/data/acc_walking_csv.zip` and
`gyr_walking_csv.zip`, one CSV per position, `--rows` rows over the 14 files, 20 ms apart with 2 ms of jitter, the
gyroscope 7 ms behind) and times `RealWorld().load` (unzipping, parsing, checks, aligning the two streams on the
50 Hz grid). Ten minutes of one sensor at one position are 30,000 rows; the whole dataset is some 30 M.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from crosshar.data.base import BadRows
from crosshar.data.io import DataFolder
from crosshar.data.readers.pamap2 import PAMAP2
from crosshar.data.readers.realworld import POSITIONS, RealWorld


def dat_text(n: int, nan: float, seed: int = 0) -> str:
    """n rows of a subject file: timestamp, activityID, heart rate, 3 IMU blocks of 17 (values as the real files
    print them: up to 6 significant digits)."""
    rng = np.random.default_rng(seed)
    t = 5.64 + 0.01 * np.arange(n)
    act = np.repeat(rng.choice([1, 2, 3, 4, 12, 13], size=n // 3000 + 1), 3000)[:n]
    hr = np.where(np.arange(n) % 11 == 0, 100.0, np.nan)
    blocks = rng.normal(0, 2, size=(n, 51))
    blocks[:, [0, 17, 34]] = 31.0  # temperatures
    blocks[:, [2, 19, 36]] += 9.8  # gravity on one axis
    for b in range(3):  # wireless drop-outs: the whole block NaN
        blocks[rng.random(n) < nan, 17 * b: 17 * b + 17] = np.nan
    cols = np.column_stack([t, act, hr, blocks])
    return "\n".join(" ".join(f"{v:.6g}" for v in row) for row in cols).replace("nan", "NaN") + "\n"


def realworld_zips(n: int, seed: int = 0) -> dict[str, bytes]:
    """{file name: zip bytes}: acc_walking_csv.zip and gyr_walking_csv.zip, n rows per position's CSV."""
    rng = np.random.default_rng(seed)
    out = {}
    for sensor, prefix, lag, centre in (("acc", "acc", 0, 9.8), ("gyr", "Gyroscope", 7, 0.0)):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in POSITIONS:
                t = 1435993440024 + lag + 20 * np.arange(n) + rng.integers(-2, 3, n)
                x = rng.normal(0, 1, (n, 3))
                x[:, 1] += centre
                body = "\n".join(f"{k + 1},{ti},{a:.6f},{b:.6f},{c:.6f}" for k, (ti, (a, b, c)) in
                                 enumerate(zip(t.tolist(), x.tolist())))
                zf.writestr(f"{prefix}_walking_{p}.csv", "id,attr_time,attr_x,attr_y,attr_z\n" + body + "\n")
        out[f"{sensor}_walking_csv.zip"] = buf.getvalue()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("pamap2", "realworld"), default="pamap2")
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--nan", type=float, default=0.02, help="pamap2: share of each IMU's rows dropped out (NaN)")
    a = ap.parse_args(argv)
    if a.dataset == "realworld":
        return _realworld(a.rows)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "pamap2" / "PAMAP2_Dataset" / "Protocol" / "subject101.dat"
        f.parent.mkdir(parents=True)
        f.write_text(dat_text(a.rows, a.nan))
        size = f.stat().st_size
        t0 = time.process_time()
        recs = PAMAP2().load(DataFolder(Path(tmp) / "pamap2"), BadRows())
        cpu = time.process_time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"PAMAP2 reader: {a.rows:,} rows ({size / 1e6:.0f} MB, {100 * a.nan:.0f} % NaN drop-outs per IMU) -> "
          f"{len(recs)} recordings in {cpu:.2f} CPU s: {cpu / a.rows * 1e6:.1f} s per million rows; "
          f"peak memory {peak:.0f} MB")
    return 0


def _realworld(rows: int) -> int:
    n = rows // (2 * len(POSITIONS))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "realworld" / "proband1" / "data"
        folder.mkdir(parents=True)
        for name, data in realworld_zips(n).items():
            (folder / name).write_bytes(data)
        size = sum(f.stat().st_size for f in folder.iterdir())
        t0 = time.process_time()
        recs = RealWorld().load(DataFolder(Path(tmp) / "realworld"), BadRows())
        cpu = time.process_time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = n * 2 * len(POSITIONS)
    print(f"RealWorld reader: {total:,} rows ({len(POSITIONS)} positions x acc, gyro; {size / 1e6:.0f} MB zipped) -> "
          f"{len(recs)} recordings in {cpu:.2f} CPU s: {cpu / total * 1e6:.1f} s per million rows; "
          f"peak memory {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
