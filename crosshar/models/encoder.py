"""LIMU-BERT-style transformer encoder of IMU windows, as used by CrossHAR."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crosshar.config import EncoderConfig
from crosshar.models.attention import TransformerBlock


class ConvStem(nn.Module):
    """(B, T, C) -> (B, T, D): a convolution over time of width k (odd, zero-padded to keep T), so that
    each step's embedding sees its k - 1 neighbours: local shape (a slope, a peak's sharp or slow side)
    the per-step Linear stem leaves to attention and learned positions to find.

    Args:
        n_channels: C.
        d_model: D.
        kernel: k.
    """

    def __init__(self, n_channels: int, d_model: int, kernel: int = 5):
        super().__init__()
        self.conv = nn.Conv1d(n_channels, d_model, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class Encoder(nn.Module):
    """LIMU-BERT-style transformer over the time steps of an IMU window (CrossHAR's encoder).

    Linear(C -> D) input projection (or, with cfg.stem "conv", a convolution over time, `ConvStem`,
    keeping PyTorch's default Conv1d initialisation), learned positional embedding (up to `max_len` steps),
    LayerNorm, then `n_layers` transformer blocks (or one block applied `n_layers` times when
    `share_weights`, as LIMU-BERT does), then a final LayerNorm in pre-norm mode so that the
    embeddings handed to heads are normalised either way. CrossHAR uses D = 72, d_ff = 144,
    4 heads, 1 layer, post-norm, shared weights (Hong et al., IMWUT 2024; Xu et al., SenSys 2021).

    It takes already-scaled input (see InputScaler), so that scaling is a choice made in one place.

    Args:
        cfg: EncoderConfig.
        n_channels: C, 3 (acc) or 6 (acc + gyro).
        max_len: longest window the positional embedding covers; any T <= max_len works.

    Attributes:
        embed_dim: D, the width of the features.
    """

    def __init__(self, cfg: EncoderConfig | None = None, n_channels: int = 6, max_len: int = 120):
        super().__init__()
        cfg = cfg if cfg is not None else EncoderConfig()
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.cfg = cfg
        self.n_channels = n_channels
        self.max_len = max_len
        self.embed_dim = cfg.d_model
        self.input_proj = (nn.Linear(n_channels, cfg.d_model) if cfg.stem == "linear"
                           else ConvStem(n_channels, cfg.d_model, cfg.stem_kernel))
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, cfg.d_model))
        self.embed_norm = nn.LayerNorm(cfg.d_model)
        self.embed_drop = nn.Dropout(cfg.dropout)
        n_blocks = 1 if cfg.share_weights else cfg.n_layers
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.norm) for _ in range(n_blocks)
        )
        self.n_layers = cfg.n_layers
        self.final_norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BERT initialisation: N(0, 0.02) truncated at 2 std for weights and positions, zero biases."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, T, C) scaled windows, T <= max_len -> (B, T, D) per-step embeddings."""
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            if x.ndim != 3 or x.shape[-1] != self.n_channels:
                raise ValueError(f"expected (B, T, {self.n_channels}), got {tuple(x.shape)}")
            if x.shape[1] > self.max_len:
                raise ValueError(f"window of {x.shape[1]} steps is longer than max_len={self.max_len}")
        t = x.shape[1]
        h = self.input_proj(x) + self.pos_embed[:, :t]
        h = self.embed_drop(self.embed_norm(h))
        if len(self.blocks) == 1:
            for _ in range(self.n_layers):
                h = self.blocks[0](h)
        else:
            for block in self.blocks:
                h = block(h)
        return self.final_norm(h)

    def forward(self, x: Tensor) -> Tensor:
        """Same as forward_features: (B, T, C) -> (B, T, D)."""
        return self.forward_features(x)
