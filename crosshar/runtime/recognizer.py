"""Streaming activity recognition: timestamped IMU samples in, timestamped activities out.

Pipeline per sample: check it (field count, finite, increasing time) -> convert units and sign to
the model's (m/s^2 with gravity, Android convention; rad/s) -> resample onto the model's uniform
grid (crosshar.runtime.resample) -> ring buffer of `window` samples -> every `hop` grid samples,
classify the buffer with the ONNX model -> smooth the probabilities -> an `Activity`.

numpy and onnxruntime only: this runs on a Raspberry Pi without torch.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from crosshar.errors import DataError
from crosshar.limits import GRAVITY, limit_of
from crosshar.runtime.model import OnnxModel
from crosshar.runtime.resample import StreamResampler

# Input rates below MIN_RATE_FRACTION x the model's rate are refused; below WARN_RATE_FRACTION they
# are upsampled by linear interpolation with a warning (content above rate_in / 2 is simply missing).
MIN_RATE_FRACTION = 0.5
WARN_RATE_FRACTION = 0.9
RATE_PROBE = 50  # samples that estimate the input rate: the mean of their steps (gaps apart), so that timestamps in
# bursts (a phone's sensor batches: 5 samples 1 ms apart every 100 ms) give their average rate, 50 Hz, not the
# 1 kHz of their median step (which designed a 16-second anti-alias filter that erased the motion, silently);
# 50 samples span enough bursts (1 s at 50 Hz, before the first 6-second window is full anyway)
# The time column must be in seconds. A probe whose median step implies a rate outside this range
# (Hz) is refused as having another time unit, before any of its steps is taken for a gap (in
# milliseconds every step would be one, and nothing would ever be classified). Phones and watches
# record at 1 to 500 Hz, the fastest MEMS IMUs at 32 kHz; a sample every 2 s or more is no IMU
# recording. Milliseconds put every rate up to 500 Hz below 0.5 Hz (50 Hz -> 0.05 Hz), micro- and
# nanoseconds every rate up to 500 kHz; minutes or hours put 50 Hz at 3 kHz (not caught) or 180 kHz.
TIME_RATE_RANGE_HZ = (0.5, 40_000.0)
# Units suggested in that message: the first whose conversion gives a rate in HINT_RATE_RANGE_HZ
TIME_UNITS = (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9), ("hours", 1 / 3600))
HINT_RATE_RANGE_HZ = (5.0, 2000.0)
# An exported graph ends in a softmax (averaged over views or runs): its outputs are probabilities to float32
# rounding. Outputs off by more than this are scores of another model, never turned into a label.
PROB_TOL = 1e-3


@dataclass(frozen=True)
class Activity:
    """One classified window. t: time (s) of the window's last sample; probs: smoothed, per label."""

    t: float
    label: str
    prob: float
    probs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Notice:
    """Something the user should know about the stream.

    kind: "gap" (the buffer was reset), "skipped" (a bad sample was dropped), "rate" (a usable but
    low input rate), "info".
    """

    t: float
    kind: str
    message: str


class Smoother:
    """Smoothing of successive window probabilities.

    Args:
        majority: vote over the last k windows' labels (1 = off); the reported probability is the
            mean probability of the winning label over those windows; ties go to the higher mean.
        ema: exponential moving average of the probabilities with this weight on the newest window
            (None = off). Exclusive with majority > 1.
    """

    def __init__(self, majority: int = 1, ema: float | None = None):
        if majority < 1:
            raise ValueError(f"smoothing window must be >= 1, got {majority}")
        if ema is not None and not 0 < ema <= 1:
            raise ValueError(f"EMA weight must be in (0, 1], got {ema}")
        if ema is not None and majority > 1:
            raise ValueError("choose one smoothing: a majority over k windows or an EMA, not both")
        self.majority, self.ema = majority, ema
        self.reset()

    def reset(self) -> None:
        self._hist: deque[np.ndarray] = deque(maxlen=self.majority)
        self._avg: np.ndarray | None = None

    def __call__(self, p: np.ndarray) -> tuple[int, float, np.ndarray]:
        """p: (K,) probabilities of the newest window -> (class index, its probability, (K,) smoothed)."""
        if self.ema is not None:
            self._avg = p if self._avg is None else self.ema * p + (1 - self.ema) * self._avg
            k = int(np.argmax(self._avg))
            return k, float(self._avg[k]), self._avg
        self._hist.append(p)
        H = np.stack(self._hist)  # (h, K)
        votes = np.bincount(H.argmax(1), minlength=len(p))
        mean = H.mean(0)
        winners = np.flatnonzero(votes == votes.max())
        k = int(winners[np.argmax(mean[winners])])
        return k, float(mean[k]), mean


class RunningZScore:
    """Per-channel running mean and std (Welford) over every grid sample of the stream.

    For models trained on per-subject z-normalised windows (WindowConfig.normalize =
    "zscore_subject"): the stream stands for one subject, so its statistics so far stand in for the
    subject's. Early windows are normalised with little history; they settle after a few minutes.
    """

    def __init__(self, C: int):
        self.n = 0
        self.mean = np.zeros(C)
        self._m2 = np.zeros(C)

    def update(self, x: np.ndarray) -> None:
        """x: (k, C) new samples."""
        for row in x:
            self.n += 1
            d = row - self.mean
            self.mean += d / self.n
            self._m2 += d * (row - self.mean)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        sd = np.sqrt(self._m2 / max(self.n, 1)) + 1e-8  # population std, as zscore_by_subject
        return (w - self.mean) / sd


class Recognizer:
    """Classifies a live or recorded IMU stream with an exported model (numpy + onnxruntime).

    Args:
        model_path: the .onnx file written by `crosshar export` (its sidecar JSON next to it).
        hop_seconds: seconds between classifications (default: the sidecar's training stride).
            Rounded to whole samples at the model's rate.
        smooth: majority vote over the last k windows (1 = off).
        ema: exponential moving average weight of the newest window (None = off).
        max_gap: a timestamp jump larger than this (s) resets the buffer (a Notice says so); gaps
            among the first RATE_PROBE samples are announced once they have shown that t is in
            seconds (TIME_RATE_RANGE_HZ).
        units: accelerometer units of the input, "m/s2" or "g".
        gyro_units: gyroscope units of the input, "rad/s" or "deg/s" (a model without gyroscope channels refuses
            "deg/s": it would be ignored).
        sign: "android" (a device lying face up reads +g on z) or "ios" (CoreMotion: -g on z);
            "ios" negates the accelerometer; gyroscopes agree (right-handed, rad/s) in both.
        strict: raise DataError on the first bad sample instead of skipping it with a Notice.
        source: name used in messages (the input file).
        threads: onnxruntime intra-op threads (None = its default).

    Feed samples with `feed(t, sample)` or `feed_many(ts, X)`, then `flush()` at the end of a
    recording; each returns the Activities and Notices it produced, in time order.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        hop_seconds: float | None = None,
        smooth: int = 1,
        ema: float | None = None,
        max_gap: float = 1.0,
        units: str = "m/s2",
        gyro_units: str = "rad/s",
        sign: str = "android",
        strict: bool = False,
        source: str = "<stream>",
        threads: int | None = None,
    ):
        if units not in ("m/s2", "g"):
            raise ValueError(f"units must be 'm/s2' or 'g', got {units!r}")
        if gyro_units not in ("rad/s", "deg/s"):
            raise ValueError(f"gyro_units must be 'rad/s' or 'deg/s', got {gyro_units!r}")
        if sign not in ("android", "ios"):
            raise ValueError(f"sign must be 'android' or 'ios', got {sign!r}")
        if not (math.isfinite(max_gap) and max_gap > 0):
            raise ValueError(f"max_gap must be a finite number > 0 s, got {max_gap}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.model = OnnxModel(model_path, threads=threads)
        m = self.model
        self.labels, self.rate, self.window, self.C = m.labels, m.rate_hz, m.window, len(m.channels)
        if hop_seconds is None:
            self.hop = m.stride
        else:
            hop = hop_seconds * self.rate  # inf for an infinite or overflowing hop
            if not (hop_seconds > 0 and math.isfinite(hop)):
                raise ValueError(f"hop must be a finite number > 0 s, got {hop_seconds}")
            self.hop = max(1, int(round(hop)))
        self.smoother = Smoother(smooth, ema)
        self.max_gap, self.strict, self.source = float(max_gap), strict, source
        acc_gain = (GRAVITY if units == "g" else 1.0) * (-1.0 if sign == "ios" else 1.0)
        self._gain = np.ones(self.C)
        self._gain[:3] = acc_gain
        if gyro_units == "deg/s":
            if self.C < 6:
                raise ValueError(f"gyroscope units deg/s given, but the model {m.path} reads no gyroscope "
                                 f"({', '.join(m.channels)})")
            self._gain[3:6] = math.pi / 180
        norm = (m.meta.get("normalization") or {}).get("kind", "none")
        if norm not in ("none", "zscore_subject"):
            raise DataError(f"the model asks for normalisation {norm!r}, which this runtime does not know",
                            m.path)
        self._zscore = RunningZScore(self.C) if norm == "zscore_subject" else None
        self.rate_in: float | None = None
        self.resampler: StreamResampler | None = None
        self.n_samples = 0  # samples accepted
        self.n_skipped = 0  # bad samples dropped (non-strict mode)
        self.n_windows = 0  # windows classified
        self.n_gaps = 0
        self._last_t: float | None = None
        self._probe: list[tuple[float, np.ndarray]] = []
        self._reset_buffer()

    # -- public --------------------------------------------------------------------------------

    def feed(self, t: float, sample: Sequence[float], line: int | None = None) -> list[Activity | Notice]:
        """One sample: t in seconds, acc x, y, z and gyro x, y, z in the input's units (an
        accelerometer-only model takes 3 values, or 6 and ignores the gyro).

        `line` (1-based) names the sample in messages; by default its position in the stream.
        """
        line = self.n_samples + self.n_skipped + 1 if line is None else line
        try:
            t = float(t)
            x = np.asarray(sample, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float (t = 10**400)
            return self._bad(f"not numbers: t = {t!r}, sample = {sample!r}"[:200], line, math.nan)
        if self.C == 3 and x.size == 6:  # acc + gyro for an accelerometer-only model
            x = x[:3]
        problem = self._check(t, x)
        if problem:
            return self._bad(problem, line, t)
        out: list[Activity | Notice] = []
        if self.resampler is not None and self._last_t is not None and t - self._last_t > self.max_gap:
            out.append(self._gap(t))  # (gaps in the probe: _start)
        self._last_t = t
        self.n_samples += 1
        x = x * self._gain
        if self.resampler is None:
            self._probe.append((t, x))
            if len(self._probe) >= RATE_PROBE:
                out += self._start()
            return out
        out += self._grid(*self.resampler.push(t, x))
        return out

    def feed_many(self, ts: Iterable[float], X: np.ndarray) -> list[Activity | Notice]:
        """ts: (n,) seconds; X: (n, C) samples. Returns the events of every sample, in order."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be (n, C), got shape {X.shape}")
        ts = np.asarray(ts, dtype=np.float64)
        if ts.shape != (len(X),):  # zip would drop the samples beyond the shorter one without a word
            raise ValueError(f"ts must be (n,) times for the n = {len(X)} rows of X, got shape {ts.shape}")
        out: list[Activity | Notice] = []
        for t, x in zip(ts, X):
            out += self.feed(float(t), x)
        return out

    def flush(self) -> list[Activity | Notice]:
        """End of the recording: push the resampler's look-ahead through (short recordings too).

        The stream is then over: a later `feed` starts a new one (new grid, empty buffer).
        """
        out: list[Activity | Notice] = []
        if self.resampler is None and len(self._probe) >= 2:
            out += self._start()
        if self.resampler is not None:
            out += self._grid(*self.resampler.flush())
            self.resampler.reset()
        self._probe, self._last_t = [], None
        self._reset_buffer()
        return out

    # -- internals -----------------------------------------------------------------------------

    def _check(self, t: float, x: np.ndarray) -> str:
        if x.size != self.C:
            return f"expected {self.C} values ({', '.join(self.model.channels)}), got {x.size}"
        if not math.isfinite(t):
            return f"timestamp is not a finite number ({t})"
        if not np.isfinite(x).all():
            return f"non-finite value in {self.model.channels[int(np.flatnonzero(~np.isfinite(x))[0])]}"
        for name, v, g in zip(self.model.channels, x, self._gain):
            if abs(v * g) > limit_of(name):  # also keeps float32 (max 3.4e38) from overflowing to inf
                return (f"{name} = {v:g} is beyond any IMU's range (|value| <= {limit_of(name) / abs(g):.4g} in the "
                        f"input's units): a wrong unit or a corrupt value")
        if self._last_t is not None and t <= self._last_t:
            return f"timestamp {t:g} s is not after the previous one ({self._last_t:g} s)"
        return ""

    def _bad(self, problem: str, line: int, t: float) -> list[Activity | Notice]:
        if self.strict:
            raise DataError(problem, self.source, line)
        self.n_skipped += 1
        return [Notice(t if math.isfinite(t) else float("nan"), "skipped",
                       f"{self.source}, line {line}: {problem}; skipped")]

    def _gap(self, t: float) -> Notice:
        """A gap in a running stream: the grid restarts at t (at the rate already estimated)."""
        self.resampler.reset()
        self._reset_buffer()
        return self._gap_notice(t, self._last_t)

    def _gap_notice(self, t: float, before: float) -> Notice:
        self.n_gaps += 1
        return Notice(t, "gap", f"gap of {t - before:.2f} s after t = {before:.2f} s (more than {self.max_gap:g} s): "
                                f"buffer reset, next activity after {self.window / self.rate:g} s of data")

    def _check_time_unit(self, step: float) -> None:
        """Refuse a probe whose median step (in t's unit) cannot be seconds (TIME_RATE_RANGE_HZ)."""
        rate = 1.0 / step
        lo, hi = TIME_RATE_RANGE_HZ
        if lo <= rate <= hi:
            return
        hint = next((f" (in {unit}? that would be {rate * k:.3g} Hz)" for unit, k in TIME_UNITS
                     if HINT_RATE_RANGE_HZ[0] <= rate * k <= HINT_RATE_RANGE_HZ[1]), "")
        raise DataError(f"t must be in seconds: its median step of {step:g} between samples would mean "
                        f"{rate:.3g} Hz, and no IMU records {'slower than' if rate < lo else 'faster than'} "
                        f"{lo if rate < lo else hi:g} Hz{hint}", self.source)

    def _start(self) -> list[Activity | Notice]:
        """Check t's unit and estimate the input rate from the probe, refuse or warn, then replay it.

        The probe's gaps are announced here, and only the samples after the last one are replayed;
        the rate is the mean of its other steps (RATE_PROBE); the median step checks t's unit.
        """
        ts = np.array([p[0] for p in self._probe])
        steps = np.diff(ts)
        step = float(np.median(steps))
        self._check_time_unit(step)
        if step > self.max_gap:
            raise DataError(f"the median step between samples, {step:g} s, is longer than the largest gap "
                            f"allowed ({self.max_gap:g} s, --max-gap): every sample would reset the buffer",
                            self.source)
        out: list[Activity | Notice] = []
        first = 0  # the probe's first sample after its last gap
        for i in np.flatnonzero(steps > self.max_gap):
            out.append(self._gap_notice(float(ts[i + 1]), float(ts[i])))
            first = int(i) + 1
        rate = 1.0 / float(np.mean(steps[steps <= self.max_gap]))
        if rate < MIN_RATE_FRACTION * self.rate:
            raise DataError(
                f"the input is sampled at about {rate:.3g} Hz, below half the model's {self.rate:g} Hz: "
                f"motion above {rate / 2:.3g} Hz is missing and cannot be restored by upsampling; record at "
                f"{self.rate:g} Hz or faster", self.source)
        if rate < WARN_RATE_FRACTION * self.rate:
            out.append(Notice(float(ts[first]), "rate",
                              f"the input is sampled at about {rate:.3g} Hz, below the model's {self.rate:g} Hz: "
                              f"upsampled by linear interpolation (motion above {rate / 2:.3g} Hz is missing)"))
        self.rate_in = rate
        self.resampler = StreamResampler(rate, self.rate, self.C)
        probe, self._probe = self._probe[first:], []
        for t, x in probe:
            out += self._grid(*self.resampler.push(t, x))
        return out

    def _reset_buffer(self) -> None:
        self._buf = np.zeros((self.window, self.C))
        self._pos = 0  # next write position in the ring
        self._filled = 0  # grid samples since the reset
        self._since = 0  # grid samples since the last classification
        self.smoother.reset()

    def _grid(self, ts: np.ndarray, xs: np.ndarray) -> list[Activity | Notice]:
        """New grid samples -> ring buffer -> an Activity every `hop` samples once it is full."""
        out: list[Activity | Notice] = []
        if self._zscore is not None and len(xs):
            self._zscore.update(xs)
        for t, x in zip(ts, xs):
            self._buf[self._pos] = x
            self._pos = (self._pos + 1) % self.window
            self._filled += 1
            self._since += 1
            if self._filled == self.window or (self._filled > self.window and self._since >= self.hop):
                out.append(self._classify(float(t)))
                self._since = 0
        return out

    def _classify(self, t: float) -> Activity:
        w = np.concatenate([self._buf[self._pos:], self._buf[: self._pos]])  # oldest first
        if self._zscore is not None:
            w = self._zscore(w)
        p = self.model.predict(w[None].astype(np.float32))[0].astype(np.float64)
        if not np.isfinite(p).all():  # never a label with a NaN probability
            raise DataError(f"the model returned non-finite probabilities {p.tolist()} for the window ending at "
                            f"t = {t:.2f} s: the model file is damaged or the input is out of range", self.model.path)
        if p.min() < -PROB_TOL or p.max() > 1 + PROB_TOL or abs(p.sum() - 1) > PROB_TOL:  # never a label from scores
            raise DataError(f"the model returned {[round(v, 4) for v in p.tolist()]} for the window ending at t = "
                            f"{t:.2f} s, which are not probabilities (each in 0..1, summing to 1): not a model "
                            "exported by crosshar (its graph ends in a softmax)", self.model.path)
        self.n_windows += 1
        k, prob, probs = self.smoother(p)
        return Activity(t, self.labels[k], prob, tuple(float(v) for v in probs))
