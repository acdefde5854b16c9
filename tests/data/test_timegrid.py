"""Timestamped streams onto a uniform grid: spans, intersections, interpolation, nearest."""

from __future__ import annotations

import numpy as np

from crosshar.data.timegrid import NS, grid, interpolate, intersect, median_rate, nearest, sort_unique, spans

T0 = 1_424_696_631_913_248_572  # an epoch in ns: float64 cannot hold it exactly


def test_sort_unique_keeps_the_first_of_equal_times():
    t = np.array([5, 3, 3, 9, 5, 1])
    order, dup = sort_unique(t)
    assert order.tolist() == [5, 1, 0, 3] and dup == 2


def test_spans_and_intersection():
    t = T0 + (np.array([0, 0.5, 1.0, 3.0, 3.2, 10.0]) * NS).astype(np.int64)
    s = spans(t, max_gap_s=1.0)
    assert ((s - T0) / NS).tolist() == [[0.0, 1.0], [3.0, 3.2], [10.0, 10.0]]
    other = T0 + (np.array([[0.2, 3.1], [9.0, 11.0]]) * NS).astype(np.int64)
    both = intersect(s, other)
    assert ((both - T0) / NS).round(6).tolist() == [[0.2, 1.0], [3.0, 3.1]]  # zero-length spans dropped


def test_grid_includes_the_end_and_rate():
    g = grid(T0, T0 + NS, 20.0)
    assert len(g) == 21 and g[-1] == T0 + NS and (np.diff(g) == NS // 20).all()
    assert median_rate(g) == 20.0
    assert len(grid(T0, T0 + NS - 1, 20.0)) == 20


def test_interpolation_is_exact_for_linear_signals_at_epoch_times():
    rng = np.random.default_rng(0)
    t = T0 + np.cumsum(rng.integers(8_000_000, 12_000_000, 200))  # jittered ~100 Hz
    x = np.stack([(t - T0) / NS, 2 * (t - T0) / NS + 1], axis=1)
    g = grid(int(t[0]), int(t[-1]), 50.0)
    y = interpolate(t, x, g)
    np.testing.assert_allclose(y[:, 0], (g - T0) / NS, atol=1e-9)
    np.testing.assert_allclose(y[:, 1], 2 * (g - T0) / NS + 1, atol=1e-9)


def test_nearest():
    t = np.array([0, 10, 20, 30])
    assert nearest(t, np.array([-5, 4, 6, 15, 29, 40])).tolist() == [0, 0, 1, 1, 3, 3]
    assert nearest(np.array([7]), np.array([0, 100])).tolist() == [0, 0]
