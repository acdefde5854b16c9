"""benchmarks/turning_check.py: the net turn about the vertical of each window, and its sense."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

from crosshar.augment import mirror, rotate

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "turning_check.py"
spec = importlib.util.spec_from_file_location("turning_check", SCRIPT)
tc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tc)


def turning_windows(rate: float, n: int = 4, T: int = 120) -> np.ndarray:
    """(n, T, 6): a device turning about the vertical at `rate` rad/s (gravity along its z, which is up)."""
    x = np.zeros((n, T, 6), np.float32)
    x[..., 2] = 9.81
    x[..., 5] = rate
    return x


def test_a_turn_at_a_known_rate_gives_its_angle_and_sense_whatever_the_devices_orientation():
    x = turning_windows(0.3)
    expected = np.degrees(0.3 * 6.0)  # 120 samples at 20 Hz
    np.testing.assert_allclose(tc.turning(x), expected, rtol=1e-3)
    np.testing.assert_allclose(tc.turning(turning_windows(-0.3)), -expected, rtol=1e-3)
    held_otherwise = rotate(torch.from_numpy(x), torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(tc.turning(held_otherwise), expected, rtol=1e-3)


def test_a_mirror_image_reverses_the_turn():
    x = rotate(torch.from_numpy(turning_windows(0.3)), torch.Generator().manual_seed(1))
    m = mirror(x, torch.Generator().manual_seed(2), p=1.0).numpy()
    np.testing.assert_allclose(tc.turning(m), -np.degrees(0.3 * 6.0), rtol=1e-3)


def test_table_reports_size_and_sense_per_class():
    md = tc.table({"uci": {"upstairs": np.array([90.0, 100.0, 110.0, -95.0])}})
    assert "| uci | upstairs | 4 | 98 (94-102) | 75 % |" in md
