"""The canonical in-memory form of one continuous session of one subject."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crosshar.errors import DataError
from crosshar.limits import ACC_LIMIT, GYRO_LIMIT

__all__ = ["Recording", "out_of_range", "range_problem"]


def out_of_range(values: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
    """(n,) True for each row of `values` (n, k) with a value that is NaN, infinite or |v| > limit.

    `limit` is a number or one per column, in the values' own units (ACC_LIMIT / GRAVITY for g...).
    Rows that pass become float32 without overflowing (the limits are far below 3.4e38).
    """
    with np.errstate(invalid="ignore"):
        return ~(np.abs(values) <= limit).all(axis=1)


def range_problem(row: np.ndarray, limit: float | np.ndarray, unit: str = "") -> str:
    """Why one row failed `out_of_range`, for the bad-row report."""
    lim = np.broadcast_to(np.asarray(limit, dtype=np.float64), row.shape)
    for k, v in enumerate(row.tolist()):
        if not np.isfinite(v):
            return "NaN or infinite value"
        if abs(v) > lim[k]:
            return (f"value {v:g} is beyond any IMU's range (|value| <= {lim[k]:.4g}{unit}; "
                    f"see crosshar.limits): a wrong unit or a corrupt value")
    return ""


@dataclass
class Recording:
    """One continuous recording of one subject, in canonical units.

    Attributes:
        acc: (n, 3) float32 acceleration in m/s^2 *including gravity*, Android sign convention
            (a device lying still reads about +9.8 along the axis pointing up).
        gyro: (n, 3) float32 angular velocity in rad/s, or None when the dataset has none.
        rate: sampling rate in Hz.
        labels: (n,) str array of canonical activity names (crosshar.data.labels); "" = unlabelled.
        subject: subject id, unique within the dataset (e.g. "uci:07").
        dataset: registered dataset name.
        source: the file(s) it came from, for error messages.
        device: phone / watch model when known.
        position: body position when known ("waist", "pocket", "wrist", ...).
        session: an id that is unique within the dataset (experiment, trial, file).
    """

    acc: np.ndarray
    gyro: np.ndarray | None
    rate: float
    labels: np.ndarray
    subject: str
    dataset: str
    source: str
    device: str | None = None
    position: str | None = None
    session: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.acc.shape[0])

    def validate(self) -> "Recording":
        """Check shapes, finiteness and plausible magnitudes (crosshar.limits); DataError naming the source."""
        n = self.acc.shape[0]
        if self.acc.ndim != 2 or self.acc.shape[1] != 3:
            raise DataError(f"acceleration must be (n, 3), got {self.acc.shape}", self.source)
        if self.gyro is not None and self.gyro.shape != (n, 3):
            raise DataError(f"gyroscope must be ({n}, 3) like acc, got {self.gyro.shape}", self.source)
        if self.labels.shape != (n,):
            raise DataError(f"labels must be ({n},), got {self.labels.shape}", self.source)
        if not (self.rate > 0 and np.isfinite(self.rate)):
            raise DataError(f"sampling rate must be a positive number, got {self.rate}", self.source)
        for name, a, limit, unit in (("acceleration", self.acc, ACC_LIMIT, " m/s^2"),
                                     ("gyroscope", self.gyro, GYRO_LIMIT, " rad/s")):
            bad = out_of_range(a, limit) if a is not None else np.zeros(0, bool)
            if bad.any():  # checked in float64, before the values become float32
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{name} sample {i}: {range_problem(a[i], limit, unit)}", self.source)
        self.acc = np.ascontiguousarray(self.acc, dtype=np.float32)
        if self.gyro is not None:
            self.gyro = np.ascontiguousarray(self.gyro, dtype=np.float32)
        return self
