"""Building blocks shared by the heads: input checks, sinusoidal positions, attention.

Attention is written out with plain `nn.Linear`, `matmul` and `softmax` instead of
`nn.MultiheadAttention`: PyTorch's fused inference fast path has no ONNX export, and thop cannot
see inside `nn.MultiheadAttention`; `crosshar.tools.complexity` counts `MultiHeadAttention` and
`DotProductSelfAttention` with its own rules.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_input(x: torch.Tensor, in_dim: int, head: str) -> None:
    """Raise a clear error unless `x` is `(B, T, in_dim)`; skipped while tracing for export."""
    if torch.jit.is_tracing():
        return
    if x.dim() != 3 or x.shape[-1] != in_dim:
        raise ValueError(
            f"{head}: expected input of shape (B, T, {in_dim}), got {tuple(x.shape)}"
        )


def as_tuple(v, name: str) -> tuple[int, ...]:
    """A TOML list or a single int as a tuple of ints, for layer-width options."""
    if isinstance(v, int):
        return (v,)
    t = tuple(int(i) for i in v)
    if not t:
        raise ValueError(f"{name} must not be empty")
    return t


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """Fixed positions of "Attention is all you need": `(length, dim)`, sin on even columns."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class SinusoidalPositions(nn.Module):
    """Adds fixed sinusoidal positions to `x: (B, T, d)`; any T (the table grows on demand)."""

    def __init__(self, dim: int, max_len: int = 512):
        super().__init__()
        self.dim = dim
        self.register_buffer("pe", sinusoidal_table(max_len, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if not torch.jit.is_tracing() and t > self.pe.shape[0]:
            self.pe = sinusoidal_table(2 * t, self.dim).to(self.pe)
        return x + self.pe[:t]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with `n_heads` heads.

    Args:
        dim: model width d (divisible by n_heads).
        n_heads: number of heads.
        dropout: dropout on the attention weights.

    forward(q: (B, Tq, d), kv: (B, Tk, d) or None for self-attention) -> (B, Tq, d)
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"width {dim} is not divisible by n_heads {n_heads}")
        self.dim, self.n_heads = dim, n_heads
        self.scale = 1.0 / math.sqrt(dim // n_heads)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.n_heads, -1).transpose(1, 2)  # (B, h, T, d/h)

    def forward(self, q: torch.Tensor, kv: torch.Tensor | None = None) -> torch.Tensor:
        kv = q if kv is None else kv
        b, tq, _ = q.shape
        qh, kh, vh = self._split(self.q(q)), self._split(self.k(kv)), self._split(self.v(kv))
        att = (qh @ kh.transpose(-2, -1)) * self.scale  # (B, h, Tq, Tk)
        att = self.drop(att.softmax(dim=-1))
        y = (att @ vh).transpose(1, 2).reshape(b, tq, self.dim)  # (B, Tq, d)
        return self.out(y)


class DotProductSelfAttention(nn.Module):
    """Parameter-free dot-product self-attention, `softmax(s * h h^T) h`.

    With `scaled=False` (s = 1) this is exactly Keras' `Attention()([h, h])`, the layer the
    CNN-LSTM paper's published model stacks on its LSTMs: Keras' `Attention` has `use_scale=False`
    by default, so it does not divide by sqrt(d). `scaled=True` (s = 1/sqrt(d), Vaswani et al.'s
    scaled dot product) is our default: it keeps the softmax from saturating on wide LSTM states.

    Args:
        dim: width d of the sequence (sets the 1/sqrt(d) scale).
        scaled: divide the scores by sqrt(d) (True) or not, as Keras (False).

    forward(h: (B, T, d)) -> (B, T, d)
    """

    def __init__(self, dim: int, scaled: bool = True):
        super().__init__()
        self.dim = dim
        self.scale = 1.0 / math.sqrt(dim) if scaled else 1.0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        att = (h @ h.transpose(1, 2)) * self.scale  # (B, T, T)
        return att.softmax(dim=-1) @ h


class TransformerBlock(nn.Module):
    """One transformer encoder layer: self-attention and a ReLU feed-forward, each residual.

    Args:
        dim: model width d.
        n_heads: attention heads.
        d_ff: feed-forward width.
        dropout: dropout on attention weights and after each sub-layer.
        norm_first: pre-norm (True) or post-norm as `nn.TransformerEncoderLayer`'s default (False).

    forward(x: (B, T, d)) -> (B, T, d)
    """

    def __init__(self, dim: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(dim, n_heads, dropout)
        self.ff = nn.Sequential(
            nn.Linear(dim, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, dim)
        )
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.drop1(self.attn(self.norm1(x)))
            return x + self.drop2(self.ff(self.norm2(x)))
        x = self.norm1(x + self.drop1(self.attn(x)))
        return self.norm2(x + self.drop2(self.ff(x)))
