"""Streaming resampling of an irregularly timed sensor stream onto the model's uniform grid.

Phones and watches deliver samples at a rate the app asked for only approximately (50 Hz that is
really 48.7 Hz with jitter). The model was trained on windows at exactly `rate_out` Hz, so the
stream is brought onto the grid t0, t0 + 1/rate_out, ... in two numpy-only steps:

1. When downsampling (input rate > 1.1 x rate_out), a windowed-sinc FIR low-pass (Blackman window,
   cut-off at the output Nyquist frequency rate_out / 2, unit DC gain so gravity is kept) is
   applied to the input samples, treated as uniform at the estimated input rate. Without it,
   content between rate_out / 2 and rate_in / 2 (footsteps' harmonics, vibration) would fold onto
   low frequencies. The filter is symmetric, so its output is assigned to the time of the centre
   tap (zero phase, a latency of half the filter length); the stream's first and last samples are
   repeated at its edges so the grid starts at the first sample.
2. Linear interpolation between consecutive (filtered) samples onto the uniform grid.

The training windows were resampled offline with scipy's polyphase filter
(crosshar.data.windows.resample); both remove the same band, but the two are not bit-identical.
An input at the model's rate (within 10 %) is only interpolated, which is the identity for samples
that already lie on the grid.
"""

from __future__ import annotations

import numpy as np

# Input rates above rate_out * DOWNSAMPLE_FROM are low-pass filtered before interpolation.
DOWNSAMPLE_FROM = 1.1


def lowpass_taps(rate_in: float, rate_out: float, zeros: int = 8) -> np.ndarray:
    """A windowed-sinc low-pass FIR for going from `rate_in` down to `rate_out`.

    Args:
        zeros: zero crossings of the sinc on each side; the filter spans about
            2 * zeros * rate_in / rate_out input samples (8 -> 0.8 s of signal for 50 -> 20 Hz).

    Returns:
        (L,) float64 taps, L odd, summing to 1 (a constant, e.g. gravity, passes unchanged).
    """
    fc = 0.5 * rate_out / rate_in  # cut-off in cycles per input sample (output Nyquist)
    half = int(np.ceil(zeros / (2 * fc)))
    n = np.arange(-half, half + 1)
    taps = 2 * fc * np.sinc(2 * fc * n) * np.blackman(2 * half + 1)
    return taps / taps.sum()


class StreamResampler:
    """Irregular (t, x) samples in, uniform-grid samples at `rate_out` out, one call per sample.

    Args:
        rate_in: the input rate (Hz), estimated from the timestamps by the caller.
        rate_out: the model's rate (Hz).
        n_channels: C.
    """

    def __init__(self, rate_in: float, rate_out: float, n_channels: int):
        self.rate_in = float(rate_in)
        self.rate_out = float(rate_out)
        self.dt_out = 1.0 / self.rate_out
        self.C = n_channels
        self.taps = lowpass_taps(rate_in, rate_out) if rate_in > DOWNSAMPLE_FROM * rate_out else None
        self.reset()

    @property
    def delay_s(self) -> float:
        """Seconds between an input sample's arrival and the grid samples it completes."""
        return 0.0 if self.taps is None else (len(self.taps) // 2) / self.rate_in

    def reset(self) -> None:
        """Forget the stream (after a gap): the next sample starts a new grid."""
        L = 1 if self.taps is None else len(self.taps)
        self._t = np.zeros(L)  # the last min(n_in, L) input times, newest last
        self._x = np.zeros((L, self.C))
        self._n_in = 0  # input samples since the reset
        self._n_done = 0  # of which filtered (the filter centre has passed them)
        self._prev: tuple[float, np.ndarray] | None = None  # last point handed to the interpolator
        self._grid0 = 0.0  # time of grid sample 0 (the first sample after the reset)
        self._k = 0  # index of the next grid sample

    def push(self, t: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add one input sample; returns the grid samples it completes: times (k,), values (k, C)."""
        x = np.asarray(x, dtype=np.float64)
        if self.taps is None:
            return self._interpolate(t, x)
        self._t[:-1], self._x[:-1] = self._t[1:], self._x[1:]
        self._t[-1], self._x[-1] = t, x
        self._n_in += 1
        half = len(self.taps) // 2
        out = []
        while self._n_done + half < self._n_in:  # the filter has its look-ahead for this centre
            out.append(self._filtered(self._n_done))
            self._n_done += 1
        return _cat(out, self.C)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: emit the last half filter length, padding with the last sample."""
        out = []
        if self.taps is not None:
            while self._n_done < self._n_in:
                out.append(self._filtered(self._n_done))
                self._n_done += 1
        return _cat(out, self.C)

    def _filtered(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Filter output centred on input sample i, handed to the interpolator."""
        L, half = len(self.taps), len(self.taps) // 2
        m = min(self._n_in, L)  # valid rows, at the end of the arrays
        first = self._n_in - m  # stream index of the oldest valid row
        j = np.clip(np.arange(i - half, i + half + 1), 0, self._n_in - 1)  # edge padding
        return self._interpolate(self._t[L - m + i - first], self.taps @ self._x[L - m + j - first])

    def _interpolate(self, t: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation from the previous point to (t, x) onto the grid."""
        if self._prev is None:
            self._prev, self._grid0, self._k = (t, x), t, 1
            return np.array([t]), x[None, :].copy()
        tp, xp = self._prev
        ts, xs = [], []
        while True:
            g = self._grid0 + self._k * self.dt_out  # t0 + k dt: no accumulated rounding
            a = (g - tp) / (t - tp)
            if a > 1 + 1e-6:
                break
            ts.append(g)
            xs.append(x if a >= 1 - 1e-6 else xp + a * (x - xp))  # on the grid: the sample itself
            self._k += 1
        self._prev = (t, x)
        return (np.array(ts), np.stack(xs)) if xs else (np.zeros(0), np.zeros((0, self.C)))


def _cat(parts: list[tuple[np.ndarray, np.ndarray]], C: int) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0), np.zeros((0, C))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
