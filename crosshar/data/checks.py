"""Physical sanity checks run on every dataset when it is prepared.

Two laws every phone or watch obeys, whatever the dataset's format says:

- **Gravity at rest.** Acceleration is stored in m/s² with gravity included, so a still device
  reads |acc| ≈ 9.81. The median |acc| over still seconds (|acc| nearly constant) that reads
  96 m/s² means g was declared for data already in m/s²; 1.0 means the reverse; 7.9 is a badly
  calibrated device (or a scale error) worth a warning.
- **Handedness of acc vs gyro.** A vector fixed in the world (gravity) turns in the device frame
  as d(acc)/dt = −ω × acc. Smoothed over 1 s, the least-squares slope of d(acc)/dt on −ω × acc is
  about +1 when acc and gyro share one right-handed frame and about −1 when one of them is
  mirrored (a flipped axis, a swapped pair, or a gyro sign convention error).

A third check reads the labelled windows, not a law but a shortcut:

- **Which way each class turns.** The net turn about gravity over a window (`window_turns`). Stairs
  are often stairwells: every UCI stairs window turns about 100 degrees, upstairs counterclockwise
  (seen from above) in 100 % of windows and downstairs in 0 %, while MotionSense's turn the other
  way (results/turning.md). A class whose windows turn mostly one way gives a model that sense as a
  cue that another place reverses; the mirror augmentation (`mirror_p`) is what takes it away.

A failed check names the measured figure. Gross unit errors stop `prepare` (`CheckError`); the
rest are warnings kept in the manifest and printed.
"""

from __future__ import annotations

import numpy as np

from crosshar.data.recording import Recording
from crosshar.limits import GRAVITY
from crosshar.errors import DataError

STILL_REL_STD = 0.02  # a still second: std(|acc|) below 2 % of its mean
GRAVITY_WARN = 0.10  # relative deviation of the median at rest that earns a warning
GRAVITY_ERROR = 0.5  # beyond x1.5 or below x0.5: the unit is wrong
MIN_STILL_S = 5  # still seconds a recording needs for its own gravity figure
QUIET_REL_STD = 0.05  # seconds where |acc| varies less than this: rotation dominates d(acc)/dt
SLOPE_MIN_SIGNAL = 1e-3  # mean (−ω × acc)² in (m/s³)² below which rotation is too small to judge
SLOPE_WARN = 0.3  # slopes below this (a mirrored frame gives about −1) or above its inverse are flagged
DEG_RATIO = (35.0, 90.0)  # a slope (or its inverse) about 180/π = 57: the gyroscope's unit mixed up (deg/s, rad/s)
TURN_MIN_DEG = 45.0  # a class whose median window turns less than this is not checked for its sense
TURN_ONE_WAY = 0.9  # a class whose windows turn one way this often (or the other way) is flagged
TURN_MIN_WINDOWS = 20  # fewer windows than this say too little about a class


class CheckError(DataError):
    """A physical check failed so badly that the data cannot be right (e.g. wrong units)."""


def still_norms(acc: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean |acc| per 1-s block, mask of still blocks) of an (n, 3) signal."""
    k = max(int(round(rate)), 2)
    n = len(acc) // k
    if n == 0:
        return np.zeros(0), np.zeros(0, bool)
    norm = np.linalg.norm(acc[: n * k].astype(np.float64), axis=1).reshape(n, k)
    mean = norm.mean(1)
    return mean, norm.std(1) < STILL_REL_STD * np.maximum(mean, 1e-9)


def gravity_at_rest(recs: list[Recording]) -> dict:
    """Median |acc| over still seconds (over all seconds when none is still), and the recordings
    whose own median is more than GRAVITY_WARN away from 9.81."""
    all_m, all_s, off = [], [], []
    for r in recs:
        if r.extra.get("gravity_removed"):  # a watch's linear acceleration (BasicMotions): nothing to check
            continue
        m, s = still_norms(r.acc, r.rate)
        all_m.append(m)
        all_s.append(s)
        if s.sum() >= MIN_STILL_S and abs(float(np.median(m[s])) / GRAVITY - 1) > GRAVITY_WARN:
            off.append((r.source, round(float(np.median(m[s])), 2)))
    m, s = np.concatenate(all_m) if all_m else np.zeros(0), np.concatenate(all_s) if all_s else np.zeros(0, bool)
    if len(m) == 0:
        return {"median_ms2": None, "still_seconds": 0, "recordings_off": []}
    med = float(np.median(m[s] if s.any() else m))
    return {"median_ms2": round(med, 3), "still_seconds": int(s.sum()), "recordings_off": off}


def rotation_terms(acc: np.ndarray, gyro: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(d(acc)/dt, −ω × acc), each (n, 3), both smoothed over 1 s."""
    k = max(int(rate), 1)

    def smooth(x: np.ndarray) -> np.ndarray:
        c = np.cumsum(np.pad(x.astype(np.float64), ((k // 2 + 1, k - k // 2), (0, 0)), mode="edge"), axis=0)
        return (c[k:] - c[:-k])[: len(x)] / k

    a, w = smooth(acc), smooth(gyro)
    return np.gradient(a, 1 / rate, axis=0), -np.cross(w, a)


def rotation_slope(acc: np.ndarray, gyro: np.ndarray, rate: float) -> tuple[float, float]:
    """(numerator, denominator) of the slope of d(acc)/dt against −ω × acc, both smoothed 1 s.

    A vector fixed in the world (gravity) turns in the device frame as dv/dt = −ω × v, so
    for slowly moving recordings the slope is close to +1 when acc and gyro share one
    right-handed frame, and close to −1 when the gyro sign is flipped.
    """
    if len(acc) < 3:
        return 0.0, 0.0
    d, p = rotation_terms(acc, gyro, rate)
    return float((d * p).sum()), float((p * p).sum())


def handedness(recs: list[Recording]) -> dict:
    """The rotation slope over the quiet seconds (|acc| nearly constant, so that turning, not
    moving, changes acc) of every recording with a gyroscope; None when too little rotation."""
    num = den = 0.0
    n = 0
    for r in recs:
        if r.gyro is None or len(r) < 3 or r.extra.get("gravity_removed"):
            continue
        k = max(int(round(r.rate)), 2)
        m = len(r) // k
        if m == 0:
            continue
        norm = np.linalg.norm(r.acc[: m * k].astype(np.float64), axis=1).reshape(m, k)
        quiet = np.repeat(norm.std(1) < QUIET_REL_STD * np.maximum(norm.mean(1), 1e-9), k)
        d, p = rotation_terms(r.acc[: m * k], r.gyro[: m * k], r.rate)
        num += float((d[quiet] * p[quiet]).sum())
        den += float((p[quiet] * p[quiet]).sum())
        n += int(quiet.sum())
    if n == 0 or den / n < SLOPE_MIN_SIGNAL:
        return {"slope": None, "quiet_seconds": 0}
    return {"slope": round(num / den, 3), "quiet_seconds": int(n / max(recs[0].rate, 1))}


def physical_checks(recs: list[Recording], where: str) -> tuple[dict, list[str]]:
    """(figures for the manifest, warnings) of the gravity and handedness checks.

    Raises:
        CheckError: the median |acc| at rest is off by more than a factor 1.5 (a unit error).
    """
    grav, hand = gravity_at_rest(recs), handedness(recs)
    warnings: list[str] = []
    med = grav["median_ms2"]
    if med is not None:
        ratio = med / GRAVITY
        unit = ("acceleration declared in g but already in m/s²? (acc_unit = \"m/s^2\")" if ratio > 5
                else "acceleration in g but declared in m/s²? (acc_unit = \"g\")" if ratio < 0.2 else "")
        if not grav["still_seconds"]:  # nothing still (all running, say): motion inflates |acc|, so only a unit
            if unit:                      # error (a factor of 9.81) is told apart from it
                raise CheckError(f"median |acc| is {med:.3g} m/s² over all data (no still second found), expected "
                                 f"about 9.81 (gravity included): {unit}", where)
            warnings.append(f"{where}: no still second found, so gravity could not be checked at rest (median |acc| "
                            f"over all data {med:.3g} m/s², which motion raises above 9.81)")
        elif ratio > 1 + GRAVITY_ERROR or ratio < 1 - GRAVITY_ERROR:
            raise CheckError(f"median |acc| at rest is {med:.3g} m/s² over {grav['still_seconds']:,} still seconds, "
                             f"expected 9.81 (gravity included): {unit or 'check the acceleration unit and scale'}",
                             where)
        elif abs(ratio - 1) > GRAVITY_WARN:
            warnings.append(f"{where}: median |acc| at rest is {med:.3g} m/s² over {grav['still_seconds']:,} still "
                            "seconds, expected 9.81: a calibration or scale error?")
    if grav["recordings_off"]:
        src, v = grav["recordings_off"][0]
        warnings.append(f"{where}: {len(grav['recordings_off'])} recording(s) read |acc| far from 9.81 at rest, "
                        f"e.g. {src}: {v} m/s²")
    slope = hand["slope"]
    if slope is not None and not SLOPE_WARN <= slope <= 1 / SLOPE_WARN:
        if slope > 1 / SLOPE_WARN:
            why = (f"the gyroscope reads {slope:.0f}x less turning than the accelerometer shows"
                   + (": data in rad/s read as deg/s? (gyro_unit)" if DEG_RATIO[0] <= slope <= DEG_RATIO[1] else
                      ": check the gyroscope's unit and scale"))
        elif slope < -SLOPE_WARN:
            why = ("one sensor's frame is mirrored (an axis sign, a swapped pair of axes, or the gyro's sign "
                   "convention); fix the columns or the gyro unit/sign")
        elif DEG_RATIO[0] <= 1 / max(slope, 1e-9) <= DEG_RATIO[1]:
            why = (f"the gyroscope reads {1 / slope:.0f}x more turning than the accelerometer shows: data in deg/s "
                   "read as rad/s? (gyro_unit = \"deg/s\")")
        else:
            why = ("the gyroscope does not follow the accelerometer (misaligned in time, another device, "
                   "or a mixed-up column)")
        warnings.append(f"{where}: acc and gyro disagree on the rotation: d(acc)/dt ≈ "
                        f"{slope:.{2 if abs(slope) >= 0.1 else 3}f} × "
                        f"(−ω × acc), expected +1: {why}")
    return _figures(grav, hand), warnings


def _figures(grav: dict, hand: dict) -> dict:
    """The manifest's figures of the two checks (the recordings far off gravity counted, not listed)."""
    return {"gravity": {k: v for k, v in grav.items() if k != "recordings_off"} | {
        "recordings_off": len(grav["recordings_off"])}, "handedness": hand}


def window_turns(X: np.ndarray, rate_hz: float) -> np.ndarray:
    """(n, T, 6) physical windows -> (n,) net turn about gravity over each window, degrees, positive
    counterclockwise seen from above: the mean rotation rate about the window's gravity direction (its
    mean acc, which points up) times its length. One home for the figure: `crosshar data prepare`'s
    check and benchmarks/turning_check.py."""
    X = np.asarray(X, dtype=np.float64)
    up = X[..., :3].mean(axis=1)
    up /= np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
    return np.degrees(np.einsum("ntc,nc->n", X[..., 3:6], up) / rate_hz)  # the rate's sum times the sample interval


def checks_by_position(recs: list[Recording], where: str) -> tuple[dict, list[str]]:
    """`physical_checks` per body position when the recordings were worn at several (a sensor in the wrong unit at
    one position is outvoted when they are pooled): each position's error or warnings name it, its figures go to
    "by_position"; the top-level figures stay those of all recordings together. One position: `physical_checks`."""
    positions = sorted({str(r.position) for r in recs if r.position is not None})
    if len(positions) < 2:
        return physical_checks(recs, where)
    by, warnings = {}, []
    for p in positions:
        figures, warns = physical_checks([r for r in recs if str(r.position) == p], f"{where} (position {p})")
        by[p] = figures
        warnings += warns
    return _figures(gravity_at_rest(recs), handedness(recs)) | {"by_position": by}, warnings


def turning_by_class(X: np.ndarray, labels: np.ndarray, rate_hz: float) -> dict:
    """{class: {"windows", "median_deg" (of the turn's size), "ccw_share"}} over labelled 6-channel windows."""
    if X.ndim != 3 or X.shape[-1] != 6:
        return {}
    t = window_turns(X, rate_hz)
    out = {}
    for c in sorted(set(labels.tolist()) - {""}):
        tc = t[labels == c]
        out[c] = {"windows": int(len(tc)), "median_deg": round(float(np.median(np.abs(tc))), 1),
                  "ccw_share": round(float(np.mean(tc > 0)), 3)}
    return out


def turning_warnings(turns: dict, where: str) -> list[str]:
    """A warning for every class (of TURN_MIN_WINDOWS windows or more) that turns far (median >= TURN_MIN_DEG)
    and mostly one way (TURN_ONE_WAY)."""
    out = []
    for c, f in turns.items():
        share = f["ccw_share"]
        if (f["windows"] >= TURN_MIN_WINDOWS and f["median_deg"] >= TURN_MIN_DEG
                and (share >= TURN_ONE_WAY or share <= 1 - TURN_ONE_WAY)):
            way = "counterclockwise" if share >= 0.5 else "clockwise"
            out.append(f"{where}: {c!r} windows turn {way} about the vertical in {100 * max(share, 1 - share):.0f} % of "
                       f"cases (median {f['median_deg']:.0f} degrees a window): a model can learn that sense for "
                       f"{c!r}, which a place turning the other way reverses (a stairwell); keep the mirror "
                       "augmentation on (mirror_p > 0)")
    return out
