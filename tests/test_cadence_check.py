"""benchmarks/cadence_check.py: the step frequency behind results/cadence.md."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cadence_check.py"
spec = importlib.util.spec_from_file_location("cadence_check", SCRIPT)
cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)


@pytest.mark.parametrize("hz", [1.2, 1.77, 2.3])
def test_step_frequency_finds_the_gait_frequency_of_acc_magnitude(hz):
    """Windows whose vertical acc bounces at `hz` around gravity, with a slower sway, a harmonic and noise on
    the other axes: the peak of |acc| is the bounce, found to the spectrum's resolution."""
    rng = np.random.default_rng(0)
    t = np.arange(120) / 20.0
    X = np.zeros((8, 120, 6), np.float32)
    phase = rng.uniform(0, 2 * np.pi, (8, 1))
    X[..., 2] = 9.8 + 3.0 * np.sin(2 * np.pi * hz * t + phase) + 1.0 * np.sin(4 * np.pi * hz * t)
    X[..., 0] = 0.5 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, 0.2, (8, 120))
    f = cc.step_frequency(X, 20.0)
    assert f.shape == (8,)
    np.testing.assert_allclose(f, hz, atol=0.06)
