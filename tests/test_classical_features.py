"""benchmarks/classical_features.py: hand-made features in the world-vertical frame and their table."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from crosshar.augment import mirror, rotate

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "classical_features.py"
spec = importlib.util.spec_from_file_location("classical_features", SCRIPT)
cf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cf)


def walking_windows(n: int = 6, T: int = 120, seed: int = 0) -> np.ndarray:
    """(n, T, 6) device-frame windows: gravity plus a gait bounce and a slow turn about the vertical, in a
    random orientation each."""
    t = np.arange(T) / 20.0
    rng = np.random.default_rng(seed)
    x = np.zeros((n, T, 6), np.float32)
    x[..., 2] = 9.81 + 2.0 * np.sin(2 * np.pi * 1.8 * t + rng.uniform(0, 6, (n, 1)))
    x[..., 0] = 1.0 * np.sin(2 * np.pi * 0.9 * t)
    x[..., 5] = 0.4 + 0.2 * np.sin(2 * np.pi * 1.8 * t)  # turning one way about the vertical
    return rotate(torch.from_numpy(x), torch.Generator().manual_seed(seed)).numpy()


def test_features_are_finite_one_row_per_window_and_blind_to_the_devices_orientation():
    x = walking_windows()
    f = cf.features(x)
    assert f.shape[0] == len(x) and np.isfinite(f).all()
    turned = rotate(torch.from_numpy(x), torch.Generator().manual_seed(7)).numpy()  # another device orientation
    np.testing.assert_allclose(cf.features(turned), f, atol=0.1)  # float32 rounding in logs of tiny band shares


def test_a_mirror_image_changes_only_the_signed_variant():
    x = walking_windows()
    m = mirror(torch.from_numpy(x), torch.Generator().manual_seed(3), p=1.0).numpy()
    np.testing.assert_allclose(cf.features(m), cf.features(x), atol=0.1)
    assert np.abs(cf.features(m, signed=True) - cf.features(x, signed=True)).max() > 0.5  # the turn reversed (mean 0.4 -> -0.4 rad/s)


def test_table_puts_the_variants_beside_the_matrix_rows_of_the_same_seeds(tmp_path):
    rows = [{"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": s, "macro_f1": f}
            for s, f in ((0, 0.6), (1, 0.8), (5, 0.0))]
    rows.append({"source": "uci", "target": "motion", "method": "scratch", "head": "transformer", "seed": 0,
                 "macro_f1": 0.1})
    p = tmp_path / "rows.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    deep = cf.deep_rows(p, seeds=3)
    assert deep == {("scratch", "uci", "motion"): [0.6, 0.8]}
    md = cf.table({"classical features": {("uci", "motion"): [0.5, 0.7]}}, deep, ("scratch", "crosshar"))
    assert "| uci → motion | 60.0 | 70.0 | - |" in md
    assert "| **mean of the pairs** | **60.0** | **70.0** | - |" in md
