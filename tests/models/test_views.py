"""crosshar.models.views: the fixed cadence replays a model carries as test-time views."""

from __future__ import annotations

import pytest
import torch

from crosshar.augment import replay
from crosshar.models.views import CadenceReplays, cadence_speeds


def test_cadence_replays_are_replay_at_each_fixed_speed():
    """CadenceReplays stacks the window replayed at each of its speeds (row k * B + b: speed k, window b), the
    speeds evenly spaced over the cadence range, 1 in the middle for an odd K."""
    assert cadence_speeds(5, 0.1) == pytest.approx((0.9, 0.95, 1.0, 1.05, 1.1))
    assert cadence_speeds(1, 0.1) == (1.0,) and cadence_speeds(2, 0.2) == pytest.approx((0.8, 1.2))
    x = torch.randn(4, 120, 6, generator=torch.Generator().manual_seed(0))
    b, t, _ = x.shape
    speeds = cadence_speeds(3, 0.25)
    y = CadenceReplays(t, speeds)(x)
    assert y.shape == (3 * b, *x.shape[1:])
    for k, s in enumerate(speeds):
        torch.testing.assert_close(y[k * b:(k + 1) * b], replay(x, s))
    assert torch.equal(y[b:2 * b], x)  # speed 1: the window as recorded
    assert not CadenceReplays(t, speeds).state_dict()  # nothing enters a checkpoint
    for bad in ((0, 0.1), (3, 1.0), (3, -0.1)):
        with pytest.raises(ValueError, match="cadence views"):
            cadence_speeds(*bad)
    with pytest.raises(ValueError, match="speeds"):
        CadenceReplays(t, (1.0, 0.0))
