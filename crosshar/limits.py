"""Physical constants and the sensor ranges beyond which a value is an error, not a measurement.

Numpy-free and torch-free: the data loaders and the on-device runtime share it.

Why these limits: the widest full-scale ranges of phone and wearable MEMS IMUs are ±16 g (most),
±32 g (a few high-g parts) for the accelerometer and ±2000 to ±4000 °/s (34.9 to 69.8 rad/s) for
the gyroscope; a sensor saturates there. A larger magnitude cannot have been measured: it is a
wrong unit (mg or deg/s read as m/s^2 or rad/s), a parse error, or a value that would overflow
float32 (±3.4e38) into inf and make every window it touches NaN after normalisation.
"""

from __future__ import annotations

GRAVITY = 9.80665  # m/s^2
ACC_LIMIT = 50 * GRAVITY  # m/s^2 (about 490): beyond any IMU's ±32 g range
GYRO_LIMIT = 4000 * 3.141592653589793 / 180  # rad/s (about 69.8): a ±4000 °/s gyroscope's full scale


def limit_of(channel: str) -> float:
    """The limit of a channel named acc* or gyro* (canonical units)."""
    return GYRO_LIMIT if channel.startswith("gyro") else ACC_LIMIT
