"""DanHAR: a residual 1-D CNN with channel-then-temporal (CBAM-style) attention in every block."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from crosshar.models.heads.common import as_tuple, check_input
from crosshar.registry import HEADS


class ChannelAttention(nn.Module):
    """Eq. (2) of DanHAR: sigmoid(MLP(avg_t A) + MLP(max_t A)), one shared two-layer MLP.

    forward(a: (B, C, T)) -> weights (B, C) in [0, 1]
    """

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(a.mean(dim=2)) + self.mlp(a.amax(dim=2)))


class TemporalAttention(nn.Module):
    """Eq. (3) of DanHAR: sigmoid(conv_7([avg_c A; max_c A])), pooled over feature channels.

    forward(a: (B, C, T)) -> weights (B, T) in [0, 1]
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([a.mean(dim=1, keepdim=True), a.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled)).squeeze(1)  # (B, T)


class SameConv1d(nn.Conv1d):
    """A convolution padded so that its output has ceil(T / stride) steps for any kernel size.

    TensorFlow's "same" padding (the extra step, if any, on the right); used for even kernels,
    which symmetric padding cannot serve.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, t = self.kernel_size[0], self.stride[0], x.shape[-1]
        total = max((math.ceil(t / s) - 1) * s + k - t, 0)
        return super().forward(F.pad(x, (total // 2, total - total // 2)))


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv1d:
    if k % 2:
        return nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
    return SameConv1d(c_in, c_out, k, stride=stride, bias=False)


class DualAttentionBlock(nn.Module):
    """Two convolutions (BN, ReLU between), channel then temporal attention, shortcut, ReLU.

    The first convolution has stride `stride`; the shortcut is a strided 1x1 convolution with BN
    when the width or the rate changes, the identity otherwise. Odd kernels are padded by k // 2
    on both sides, even ones "same" (`SameConv1d`).

    forward_with_maps(x: (B, C_in, T)) -> (y: (B, C_out, T'), channel (B, C_out), temporal (B, T'))
    with T' = ceil(T / stride).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, reduction: int,
                 temporal_kernel: int):
        super().__init__()
        if temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.body = nn.Sequential(
            _conv(c_in, c_out, kernel_size, stride), nn.BatchNorm1d(c_out), nn.ReLU(),
            _conv(c_out, c_out, kernel_size), nn.BatchNorm1d(c_out),
        )
        self.channel = ChannelAttention(c_out, reduction)
        self.temporal = TemporalAttention(temporal_kernel)
        self.shortcut: nn.Module = nn.Identity()
        if c_in != c_out or stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        self.act = nn.ReLU()

    def forward_with_maps(self, x: torch.Tensor):
        a = self.body(x)
        wc = self.channel(a)  # (B, C_out)
        a = a * wc[:, :, None]
        wt = self.temporal(a)  # (B, T')
        a = a * wt[:, None, :]
        return self.act(a + self.shortcut(x)), wc, wt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_maps(x)[0]


@HEADS.register("danhar")
class DanHAR(nn.Module):
    """DanHAR (Gao, Zhang, Teng, He, Wu: "DanHAR: Dual Attention Network for Multimodal Human
    Activity Recognition Using Wearable Sensors", arXiv 2020; Applied Soft Computing 2021).

    A residual CNN of 3 building blocks, each of 2 convolutions with the same kernel size, batch
    norm and ReLU between, and a shortcut (Sec. III-C); inside each block, before the shortcut
    is added, the channel attention of Eq. (2) (average- and max-pooling over time, a shared
    two-layer MLP with reduction r, sigmoid) and then the temporal attention of Eq. (3)
    (average- and max-pooling over feature channels, concatenated, a 7-tap convolution,
    sigmoid) rescale the features, channel first (the order the paper's ablation, Table VII,
    found best). The classifier is either global average pooling and a linear layer (our
    default) or, as the paper's "conv128-conv128-conv256-conv256-conv384-conv384-fc"
    (Sec. IV-A), the last block's map flattened into one fully connected layer (`pool =
    "flatten"`, the `paper` preset).

    The `paper` preset (configs/heads/danhar.paper.toml, docs/paper_presets.md): widths 128,
    256, 384; kernel 6, stride 3, reduction 16, flatten + FC; about 2.3 M parameters on WISDM's
    200 x 3 windows, Table I's 2.33 M. The paper states neither kernel, stride nor r: those
    three are chosen so that the count matches Table I (kernel 5 gives 1.9 M) and the attention
    overhead matches it (+0.03 M for r = 16).

    Deviations of both presets (the paper works on 2-D feature maps of sensor axis x time):
    - 1-D convolutions over time with the D input features as input channels, instead of
      (k x 1) 2-D kernels over a (sensor axis, time) image; the channel attention therefore
      pools over time only (the paper pools over time and sensor axes) and the temporal
      attention is a 7-tap 1-D convolution (the paper's 7 x 1 kernel).
    - Default only: widths (64, 96, 128), about 0.3 M parameters, sized for a head on top of an
      encoder and for a Raspberry Pi; stride 2 (T = 120 -> 60 -> 30 -> 15); kernel 5; global
      average pooling so any T works; the attention MLP's hidden width is max(C // r, 4).

    Args:
        in_dim: input width D (72 embeddings; 6 or 3 raw channels).
        num_classes: number of classes.
        seq_len: window length T; with `pool = "flatten"` the only T accepted.
        channels: output width of each residual block (one block per entry; 3 in the paper).
        kernel_size: kernel of both convolutions in a block (even kernels are "same"-padded).
        stride: stride of each block's first convolution.
        reduction: reduction ratio r of the channel-attention MLP.
        temporal_kernel: kernel of the temporal-attention convolution (7 in the paper).
        dropout: dropout before the classifier.
        pool: "mean" (global average over time) or "flatten" (the paper's flatten + FC).

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, feature_dim):
    channels[-1] for "mean", channels[-1] * T_3 for "flatten", T_3 = T after the three
    ceil(T / stride) reductions (128 -> 43 -> 15 -> 5 for the paper preset).
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120,
                 channels: Sequence[int] = (64, 96, 128), kernel_size: int = 5, stride: int = 2,
                 reduction: int = 8, temporal_kernel: int = 7, dropout: float = 0.1,
                 pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "flatten"):
            raise ValueError(f"pool must be 'mean' or 'flatten', got {pool!r}")
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        channels = as_tuple(channels, "channels")
        widths = (in_dim,) + channels
        self.blocks = nn.ModuleList(
            DualAttentionBlock(widths[i], widths[i + 1], kernel_size, stride, reduction,
                               temporal_kernel)
            for i in range(len(channels))
        )
        self.pool, self.t_out = pool, seq_len
        for _ in channels:
            self.t_out = math.ceil(self.t_out / stride)
        self.feature_dim = channels[-1] * (self.t_out if pool == "flatten" else 1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, feature_dim), the last block's time average or flattened map."""
        check_input(x, self.in_dim, "danhar")
        if self.pool == "flatten" and not torch.jit.is_tracing() and x.shape[1] != self.seq_len:
            raise ValueError(f"danhar with pool='flatten' takes windows of seq_len={self.seq_len} steps, "
                             f"got {x.shape[1]}")
        h = x.transpose(1, 2)  # (B, D, T)
        for block in self.blocks:
            h = block(h)
        return h.flatten(1) if self.pool == "flatten" else h.mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """The attention weights of every block, for visualisation (as Figs. 10-11 of the paper).

        Call it in eval mode (in train mode batch norm would use, and update, batch statistics).

        Args:
            x: (B, T, D).

        Returns:
            {"channel": [(B, channels[i]) for each block i],
             "temporal": [(B, T_i) for each block i]}, values in [0, 1], where
            T_i = ceil(T / stride^(i+1)) is block i's time resolution (60, 30, 15 for T = 120).
        """
        check_input(x, self.in_dim, "danhar")
        h = x.transpose(1, 2)
        maps: dict[str, list[torch.Tensor]] = {"channel": [], "temporal": []}
        for block in self.blocks:
            h, wc, wt = block.forward_with_maps(h)
            maps["channel"].append(wc)
            maps["temporal"].append(wt)
        return maps
