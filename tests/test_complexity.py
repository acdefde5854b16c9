"""Parameter, MAC and latency counting against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crosshar.tools.complexity import (
    count_params, format_table, head_complexity, latency_ms, macs_per_window,
)
from crosshar.models.heads.common import DotProductSelfAttention, MultiHeadAttention


class ConvOverTime(nn.Module):
    """(B, T, D) -> Conv1d over time -> (B, C, T)."""

    def __init__(self, d: int, c: int, k: int):
        super().__init__()
        self.conv = nn.Conv1d(d, c, k, padding=k // 2)

    def forward(self, x):
        return self.conv(x.transpose(1, 2))


class Scale(nn.Module):
    """A parametrised leaf thop has no rule for."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.w


def test_count_params():
    lin = nn.Linear(3, 2)
    assert count_params(lin) == 8
    lin.weight.requires_grad_(False)
    assert count_params(lin, trainable_only=True) == 2


def test_macs_of_linear_and_conv_per_window():
    assert macs_per_window(nn.Linear(6, 10), (120, 6)) == 120 * 6 * 10
    # a batch in in_shape is divided out
    assert macs_per_window(nn.Linear(6, 10), (4, 120, 6)) == 120 * 6 * 10
    assert macs_per_window(ConvOverTime(6, 16, 5), (120, 6)) == 120 * 16 * 6 * 5


def test_macs_of_attention_are_counted():
    t, d = 10, 8
    projections = 4 * t * d * d
    products = 2 * t * t * d
    assert macs_per_window(MultiHeadAttention(d, 2), (t, d)) == projections + products
    assert macs_per_window(DotProductSelfAttention(d), (t, d)) == products


def test_macs_warns_about_modules_thop_cannot_count():
    with pytest.warns(UserWarning, match="Scale"):
        macs_per_window(nn.Sequential(nn.Linear(6, 6), Scale()), (5, 6))


def test_latency_restores_threads_and_mode():
    model = nn.Linear(6, 4).train()
    threads = torch.get_num_threads()
    ms = latency_ms(model, (120, 6), batch=2, threads=1, repeats=3, warmup=1)
    assert ms > 0
    assert model.training and torch.get_num_threads() == threads
    with pytest.raises(ValueError):
        latency_ms(model, (1, 120, 6))


def test_head_complexity_of_the_linear_probe():
    row = head_complexity("linear", 72, num_classes=4, repeats=3)
    assert row["params"] == 72 * 4 + 4 + 2 * 72  # linear + LayerNorm
    # LayerNorm (thop: 4 per element with affine) + linear; the time mean is not counted
    assert row["macs"] == 4 * 72 + 72 * 4
    assert "linear" in format_table([row])
