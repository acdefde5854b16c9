"""The canonical in-memory form of one continuous session of one subject."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crosshar.errors import DataError

GRAVITY = 9.80665  # m/s^2


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
        """Check shapes and finiteness; raise DataError naming the source otherwise."""
        n = self.acc.shape[0]
        if self.acc.ndim != 2 or self.acc.shape[1] != 3:
            raise DataError(f"acceleration must be (n, 3), got {self.acc.shape}", self.source)
        if self.gyro is not None and self.gyro.shape != (n, 3):
            raise DataError(f"gyroscope must be ({n}, 3) like acc, got {self.gyro.shape}", self.source)
        if self.labels.shape != (n,):
            raise DataError(f"labels must be ({n},), got {self.labels.shape}", self.source)
        if not (self.rate > 0 and np.isfinite(self.rate)):
            raise DataError(f"sampling rate must be a positive number, got {self.rate}", self.source)
        for name, a in (("acceleration", self.acc), ("gyroscope", self.gyro)):
            if a is not None and not np.isfinite(a).all():
                i = int(np.argwhere(~np.isfinite(a))[0, 0])
                raise DataError(f"{name} has NaN or inf at sample {i}", self.source)
        self.acc = np.ascontiguousarray(self.acc, dtype=np.float32)
        if self.gyro is not None:
            self.gyro = np.ascontiguousarray(self.gyro, dtype=np.float32)
        return self
