"""Recordings to canonical windows: anti-aliased resampling, fixed-length windows, channel sets.

A window is kept only when every sample in it carries the same label. Runs labelled "" (unlabelled)
give unlabelled windows when the dataset asks for them (they feed self-supervised pretraining;
finetuning and evaluation skip them), and are dropped otherwise. `Tally` counts what was kept and
what was dropped, per reason, so that `crosshar data prepare` can say it. Resampling uses
scipy's polyphase filter (`resample_poly`), which low-pass filters before decimating, unlike the
block means of LIMU-BERT's preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from crosshar.config import WindowConfig
from crosshar.data.recording import Recording
from crosshar.errors import DataError

CHANNELS = {"acc+gyro": ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), "acc": ("acc_x", "acc_y", "acc_z")}


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Resample a (n, C) signal with an anti-aliasing polyphase filter.

    The rate ratio is approximated by a fraction with denominator <= 1000 (exact for 50 -> 20 Hz).
    """
    from scipy.signal import resample_poly  # here, not at module level: importing scipy.signal costs seconds

    if abs(rate_in - rate_out) < 1e-9:
        return x.astype(np.float32, copy=False)
    frac = Fraction(rate_out / rate_in).limit_denominator(1000)
    y = resample_poly(x.astype(np.float64), frac.numerator, frac.denominator, axis=0, padtype="line")
    return y.astype(np.float32)


def resample_labels(labels: np.ndarray, n_out: int, rate_in: float, rate_out: float) -> np.ndarray:
    """Nearest-sample labels on the new time grid."""
    idx = np.clip(np.round(np.arange(n_out) * (rate_in / rate_out)).astype(np.int64), 0, len(labels) - 1)
    return labels[idx]


@dataclass
class WindowSet:
    """Windows of one dataset, all with the same WindowConfig.

    Attributes:
        X: (N, T, C) float32 windows, channels as CHANNELS[config.channels].
        labels: (N,) str fine canonical labels (crosshar.data.labels.VOCAB).
        subjects: (N,) str subject ids ("uci:07").
        sessions: (N,) str recording ids.
        dataset: registered dataset name ("uci+motion" for stacked sets).
        config: the WindowConfig the windows were made with.
        manifest: provenance (raw-file fingerprint, counts, skipped items...).
        datasets: (N,) str, the dataset each window comes from (default: `dataset` for all).
    """

    X: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    sessions: np.ndarray
    dataset: str
    config: WindowConfig
    manifest: dict = field(default_factory=dict)
    datasets: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.datasets is None:
            self.datasets = np.full(len(self.X), self.dataset)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: np.ndarray) -> "WindowSet":
        return WindowSet(self.X[idx], self.labels[idx], self.subjects[idx], self.sessions[idx],
                         self.dataset, self.config, self.manifest, self.datasets[idx])

    def by_subjects(self, subjects) -> "WindowSet":
        return self.subset(np.flatnonzero(np.isin(self.subjects, list(subjects))))

    def content_hashes(self) -> np.ndarray:
        """(N,) 16-byte hashes of each window's rounded values, to detect identical windows."""
        import hashlib

        q = np.round(self.X.astype(np.float64), 4).astype(np.float32)
        return np.array([hashlib.blake2b(w.tobytes(), digest_size=16).hexdigest() for w in q])

    def recording_attr(self, attr: str) -> np.ndarray | None:
        """(N,) str: each window's recording's `attr` ("position" or "device"), from the manifest's per-recording
        record (`crosshar.data.store` writes it for datasets read as recordings); None where the manifest has no
        such record (windows shipped as windows, a set built in memory). Unknown values read "unknown"."""
        rec = self.manifest.get("recordings")
        if not isinstance(rec, dict) or not rec:
            return None
        return np.array([str((rec.get(str(s)) or {}).get(attr) or "unknown") for s in self.sessions])

    def recording_splits(self, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{"position": (N,) str, "device": (N,) str} (`recording_attr`) for each of the two that takes more than one
        value among the windows `keep` (a boolean mask; default all) selects: how the set splits by body position
        and by device."""
        keep = np.ones(len(self), bool) if keep is None else keep
        out = {}
        for attr in ("position", "device"):
            values = self.recording_attr(attr)
            if values is not None and len(np.unique(values[keep])) > 1:
                out[attr] = values
        return out

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(windows per label, windows per subject)."""
        lab, nl = np.unique(self.labels, return_counts=True)
        sub, ns = np.unique(self.subjects, return_counts=True)
        return dict(zip(lab.tolist(), nl.tolist())), dict(zip(sub.tolist(), ns.tolist()))


@dataclass
class Tally:
    """What windowing kept and dropped, in recordings and seconds (at the window rate)."""

    recordings: int = 0
    labelled_windows: int = 0
    unlabelled_windows: int = 0
    short_recordings: int = 0  # shorter than one window: nothing of them is kept
    short_recording_s: float = 0.0
    short_runs_s: float = 0.0  # labelled runs shorter than one window
    unlabelled_s: float = 0.0  # unlabelled runs, when unlabelled windows are not kept
    tails_s: float = 0.0  # the end of a run after its last full window
    short_examples: list = field(default_factory=list)  # a few sources of short recordings

    def to_dict(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def window_recording(rec: Recording, cfg: WindowConfig, keep_unlabelled: bool = False,
                     tally: Tally | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut one recording into windows.

    Returns:
        X: (N, T, C) float32, labels: (N,) str. Windows are laid within runs of one label; runs
        labelled "" give windows labelled "" only with `keep_unlabelled`. `tally` (when given)
        counts what is dropped: runs shorter than a window, the tail of each run.
    """
    if cfg.channels == "acc+gyro":
        if rec.gyro is None:
            raise DataError("recording has no gyroscope but 6 channels (acc+gyro) were asked for; "
                            "use channels = \"acc\"", rec.source)
        sig = np.concatenate([rec.acc, rec.gyro], axis=1)
    else:
        sig = rec.acc
    sig = resample(sig, rec.rate, cfg.rate_hz)
    labels = resample_labels(rec.labels, len(sig), rec.rate, cfg.rate_hz)
    T, s = cfg.window, cfg.stride
    # windows are laid out from the start of every run of one label (as LIMU-BERT's per-segment
    # windowing), so a labelled segment yields floor((len - T) / stride) + 1 windows
    bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    run_start = np.concatenate([[0], bounds])
    run_end = np.concatenate([bounds, [len(labels)]])
    use = [(a, b) for a, b in zip(run_start, run_end) if keep_unlabelled or labels[a] != ""]
    starts_l = [np.arange(a, b - T + 1, s) for a, b in use if b - a >= T]
    starts = np.concatenate(starts_l).astype(np.int64) if starts_l else np.zeros(0, np.int64)
    if tally is not None:
        _count(tally, rec, labels, run_start, run_end, starts, cfg, keep_unlabelled)
    idx = starts[:, None] + np.arange(T)[None, :]
    return sig[idx], labels[starts]


def _count(t: Tally, rec: Recording, labels: np.ndarray, run_start, run_end, starts, cfg: WindowConfig,
           keep_unlabelled: bool) -> None:
    T, hz = cfg.window, cfg.rate_hz
    t.recordings += 1
    n_unl = int((labels[starts] == "").sum()) if len(starts) else 0
    t.unlabelled_windows += n_unl
    t.labelled_windows += len(starts) - n_unl
    if len(labels) < T:
        t.short_recordings += 1
        t.short_recording_s += len(labels) / hz
        if len(t.short_examples) < 3:
            t.short_examples.append(f"{rec.source} ({len(labels) / hz:.1f} s)")
        return
    for a, b in zip(run_start, run_end):
        n = int(b - a)
        if labels[a] == "" and not keep_unlabelled:
            t.unlabelled_s += n / hz
        elif n < T:
            t.short_runs_s += n / hz
        else:
            covered = ((n - T) // cfg.stride) * cfg.stride + T
            t.tails_s += (n - covered) / hz


def zscore_by_subject(X: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Per subject and channel z-normalisation (to match datasets shipped that way, e.g. HHAR-SA)."""
    out = np.empty_like(X)
    for s in np.unique(subjects):
        m = subjects == s
        x = X[m].astype(np.float64)
        mu = x.mean(axis=(0, 1), keepdims=True)
        sd = np.maximum(x.std(axis=(0, 1), keepdims=True), 1e-6)
        out[m] = (x - mu) / sd
    return out


def make_windows(recs: list[Recording], cfg: WindowConfig, dataset: str, keep_unlabelled: bool = False,
                 tally: Tally | None = None) -> WindowSet:
    """Window every recording and stack them. Recordings lacking gyro are an error for 6 channels."""
    xs, ls, ss, es = [], [], [], []
    for r in recs:
        X, lab = window_recording(r, cfg, keep_unlabelled, tally)
        xs.append(X)
        ls.append(lab.astype(str))
        ss.append(np.full(len(X), r.subject, dtype=object))
        es.append(np.full(len(X), r.session or r.source, dtype=object))
    C = len(CHANNELS[cfg.channels])
    X = np.concatenate(xs) if xs else np.zeros((0, cfg.window, C), np.float32)
    labels = np.concatenate(ls).astype(str) if ls else np.zeros(0, str)
    subjects = np.concatenate(ss).astype(str) if ss else np.zeros(0, str)
    sessions = np.concatenate(es).astype(str) if es else np.zeros(0, str)
    return WindowSet(normalize(X, subjects, cfg), labels, subjects, sessions, dataset, cfg)


def normalize(X: np.ndarray, subjects: np.ndarray, cfg: WindowConfig) -> np.ndarray:
    """(N, T, C) windows -> float32 windows normalised as `cfg.normalize` says."""
    if cfg.normalize == "zscore_subject" and len(X):
        X = zscore_by_subject(X, subjects)
    return X.astype(np.float32)
