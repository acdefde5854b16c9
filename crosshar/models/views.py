"""Test-time views a model carries: the window replayed at fixed speeds (the cadence views).

The time warp's resampling (`replay_weights`) lives here so that the augmentation (crosshar.augment.time_warp,
crosshar.augment.replay) and the views a model carries into its export read a window at the same positions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def replay_weights(t: int, speed: Tensor | float, device: torch.device | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Where each step of a window replayed `speed` times as fast reads its input: (i0, i1, w), each (S, t)
    for S speeds (S = 1 for a float), so that step i is x[i0] * (1 - w) + x[i1] * w (linear interpolation at
    time i * speed, positions past the last sample reflected back from it). w is float64."""
    speed = torch.as_tensor(speed, dtype=torch.float64, device=device).reshape(-1, 1)
    pos = torch.arange(t, dtype=torch.float64, device=speed.device)[None, :] * speed  # (S, t)
    last = float(t - 1)
    pos = torch.where(pos > last, 2 * last - pos, pos).clamp(0, last)
    i0 = pos.floor().long().clamp(0, t - 1)
    return i0, (i0 + 1).clamp(max=t - 1), pos - i0.to(pos.dtype)


class CadenceReplays(torch.nn.Module):
    """A window replayed at K fixed speeds, for test-time views a model can carry (and export).

    The speeds are evenly spaced over the finetuning augmentation's cadence range, [1 - span, 1 + span]
    (`cadence_speeds`); each replay is crosshar.augment.replay's resampling with constant indices and weights,
    so the exported graph holds constant Gathers and element-wise products, and its batch size stays free.

    forward(x: (B, T, C)) -> (K * B, T, C): replay k of window b at row k * B + b.
    """

    def __init__(self, window: int, speeds: list[float] | tuple[float, ...]):
        super().__init__()
        if not speeds or min(speeds) <= 0:
            raise ValueError(f"replay speeds must be > 0, got {speeds}")
        self.speeds = tuple(float(s) for s in speeds)
        i0, i1, w = replay_weights(window, torch.tensor(self.speeds))
        # not in the state dict: a checkpoint's weights stay the same whatever views it is scored with
        self.register_buffer("i0", i0.reshape(-1), persistent=False)  # (K * T,)
        self.register_buffer("i1", i1.reshape(-1), persistent=False)
        self.register_buffer("w", w.reshape(1, -1, 1).float(), persistent=False)  # (1, K * T, 1)

    @property
    def k(self) -> int:
        return len(self.speeds)

    def forward(self, x: Tensor) -> Tensor:
        t, c = x.shape[1], x.shape[2]
        y = x.index_select(1, self.i0) * (1 - self.w) + x.index_select(1, self.i1) * self.w  # (B, K * T, C)
        return y.reshape(-1, self.k, t, c).transpose(0, 1).reshape(-1, t, c)


def cadence_speeds(k: int, span: float) -> tuple[float, ...]:
    """K replay speeds evenly spaced over [1 - span, 1 + span] (the time warp's range; an odd K includes 1)."""
    if k < 1 or not 0 <= span < 1:
        raise ValueError(f"cadence views need k >= 1 and a span in [0, 1), got k={k}, span={span}")
    if k == 1:
        return (1.0,)
    return tuple(round(float(v), 12) for v in torch.linspace(1 - span, 1 + span, k, dtype=torch.float64))


__all__ = ["replay_weights", "CadenceReplays", "cadence_speeds"]
