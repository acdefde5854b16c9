import numpy as np
import pytest

from crosshar.config import WindowConfig
from crosshar.data.recording import Recording
from crosshar.data.splits import label_subset, subject_split
from crosshar.data.windows import make_windows, resample, window_recording
from crosshar.errors import ConfigError, DataError


def rec(n=1000, rate=50.0, labels=None, gyro=True, subject="t:1"):
    t = np.arange(n) / rate
    acc = np.stack([np.full(n, 9.8), np.sin(2 * np.pi * 2 * t), np.zeros(n)], 1)
    lab = np.array(labels if labels is not None else ["walking"] * n)
    return Recording(acc, acc * 0.1 if gyro else None, rate, lab, subject, "t", "mem").validate()


def test_resample_is_antialiased():
    rate = 50.0
    t = np.arange(5000) / rate
    x = np.sin(2 * np.pi * 2 * t)[:, None] + np.sin(2 * np.pi * 18 * t)[:, None]  # 18 Hz aliases at 20 Hz
    y = resample(x, rate, 20.0)
    assert y.shape == (2000, 1)
    spec = np.abs(np.fft.rfft(y[200:-200, 0]))
    freqs = np.fft.rfftfreq(len(y) - 400, 1 / 20)

    # the 18 Hz tone must not fold to 2 Hz: energy near 2 Hz stays that of the 2 Hz tone alone
    ref = resample(np.sin(2 * np.pi * 2 * t)[:, None], rate, 20.0)
    assert np.abs(y - ref)[200:-200].max() < 0.05


def test_windows_keep_only_pure_labels():
    labels = ["walking"] * 500 + ["sitting"] * 500
    X, lab = window_recording(rec(labels=labels), WindowConfig(window=120, stride=120))
    # 1000 samples at 50 Hz = 400 at 20 Hz: a 200-sample run of each label, one window from the start of each
    assert X.shape == (2, 120, 6)
    assert lab.tolist() == ["walking", "sitting"]


def test_unlabelled_windows_dropped_and_gyro_required():
    X, lab = window_recording(rec(labels=[""] * 1000), WindowConfig())
    assert len(X) == 0
    with pytest.raises(DataError, match="gyroscope"):
        window_recording(rec(gyro=False), WindowConfig())
    X, _ = window_recording(rec(gyro=False), WindowConfig(channels="acc"))
    assert X.shape[1:] == (120, 3)


def test_zscore_subject():
    ws = make_windows([rec(3000, subject="a:1"), rec(3000, subject="a:2")], WindowConfig(normalize="zscore_subject"), "t")
    for s in ("a:1", "a:2"):
        x = ws.X[ws.subjects == s]
        assert np.allclose(x.mean((0, 1))[:2], 0, atol=1e-4)


def test_recording_validation():
    r = rec()
    r.acc[5, 1] = np.nan
    with pytest.raises(DataError, match="sample 5"):
        r.validate()


def test_subject_split_is_by_subject_and_seeded():
    subjects = np.repeat([f"d:{i}" for i in range(10)], 7)
    tr, va = subject_split(subjects, 0.2, seed=3)
    assert set(subjects[tr]).isdisjoint(subjects[va]) and len(set(subjects[va])) == 2
    assert np.array_equal(va, subject_split(subjects, 0.2, seed=3)[1])

    with pytest.raises(ConfigError):
        subject_split(np.array(["a"] * 5), 0.2, 0)


@pytest.mark.parametrize("rate", [0.0001, 0.001])
def test_label_subset_keeps_a_window_of_every_class_at_a_tiny_rate(rate):
    """MotionSense's 3,251 training windows at -lr 0.001: the stratified split of 4 windows over 4 classes
    rounded downstairs (400 windows) to none, and finetune stopped ("no window of ['downstairs']") though
    label_subset promises every class at least one window."""
    y = np.array([0] * 1000 + [1] * 500 + [2] * 400 + [3] * 1300)
    keep = label_subset(y, rate, seed=0)
    assert (np.bincount(y[keep], minlength=4) >= 1).all() and len(set(keep)) == len(keep)
    assert np.array_equal(keep, label_subset(y, rate, seed=0))


def test_label_subset_stratified():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    keep = label_subset(y, 0.1, seed=0)
    assert len(keep) == 100
    counts = np.bincount(y[keep], minlength=3)
    assert counts[0] == 90 and counts[1] == 9 and counts[2] == 1
    assert np.array_equal(keep, label_subset(y, 0.1, seed=0))
