"""Timestamped sensor streams onto one uniform time grid.

Phones stamp each sample when the sensor delivers it: intervals jitter, accelerometer and
gyroscope are separate, unaligned streams (HHAR, WISDM), and recordings have gaps. To build a
Recording whose acc and gyro are sample-aligned at a fixed rate, each stream is cut into spans at
gaps longer than `max_gap_s`, the spans of the streams are intersected, and each stream is
linearly interpolated onto a uniform grid over every common span. Times are int64 nanoseconds
(HHAR's and WISDM's own unit); interpolation works in float64 seconds relative to the span start,
so that 1e18-ns epoch timestamps lose no precision.
"""

from __future__ import annotations

import numpy as np

NS = 1_000_000_000  # nanoseconds per second

# what a reader of two unaligned streams leaves out, as it counts it in Recording.extra (Dataset.dropped)
PAIRING_DROPPED = {
    "duplicate_timestamps": "rows repeating an earlier timestamp",
    "acc_s_without_gyro": "s of accelerometer rows with no gyroscope rows at the same time",
    "gyro_s_without_acc": "s of gyroscope rows with no accelerometer rows at the same time",
}


def sort_unique(t: np.ndarray) -> tuple[np.ndarray, int]:
    """Indices that sort `t` (stable) keeping the first of equal timestamps, and how many were equal.

    Args:
        t: (n,) int64 timestamps in any order.
    Returns:
        (order, n_duplicates): `t[order]` is strictly increasing.
    """
    order = np.argsort(t, kind="stable")
    ts = t[order]
    keep = np.ones(len(ts), bool)
    keep[1:] = ts[1:] != ts[:-1]
    return order[keep], int((~keep).sum())


def median_rate(t: np.ndarray) -> float:
    """Sampling rate (Hz) from the median interval of strictly increasing ns timestamps."""
    if len(t) < 2:
        return float("nan")
    return NS / float(np.median(np.diff(t)))


def spans(t: np.ndarray, max_gap_s: float) -> np.ndarray:
    """(k, 2) [first, last] timestamps of the runs of `t` (increasing) without a gap > max_gap_s."""
    if len(t) == 0:
        return np.zeros((0, 2), np.int64)
    cut = np.flatnonzero(np.diff(t) > max_gap_s * NS)
    first = np.concatenate([[0], cut + 1])
    last = np.concatenate([cut, [len(t) - 1]])
    return np.stack([t[first], t[last]], axis=1).astype(np.int64)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(p, 2) spans covered by both span lists (each sorted and non-overlapping)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if lo < hi:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def grid(start: int, end: int, rate: float) -> np.ndarray:
    """(m,) int64 ns: start, start + 1/rate, ... up to end (inclusive)."""
    m = int(np.floor((end - start) * rate / NS + 1e-9)) + 1
    return start + np.round(np.arange(m) * (NS / rate)).astype(np.int64)


def interpolate(t: np.ndarray, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Linear interpolation of x (n, c) sampled at t (n,) onto g (m,) inside [t[0], t[-1]].

    Returns:
        (m, c) float64.
    """
    lo, hi = np.searchsorted(t, [g[0], g[-1]])
    lo, hi = max(lo - 1, 0), min(hi + 1, len(t))
    ts = (t[lo:hi] - g[0]) / NS
    gs = (g - g[0]) / NS
    return np.stack([np.interp(gs, ts, x[lo:hi, k]) for k in range(x.shape[1])], axis=1)


def nearest(t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(m,) index of the sample of t (increasing) nearest to each time of g."""
    i = np.clip(np.searchsorted(t, g), 1, max(len(t) - 1, 1))
    left = t[i - 1]
    right = t[np.minimum(i, len(t) - 1)]
    return np.where(np.abs(g - left) <= np.abs(right - g), i - 1, np.minimum(i, len(t) - 1))
