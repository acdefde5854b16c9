"""Building blocks shared by the heads: input checks, sinusoidal positions, attention, MixStyle.

Multi-head attention and the transformer block are the encoder's (`crosshar.models.attention`, re-exported
here); `DotProductSelfAttention` is the CNN-LSTM paper's parameter-free layer. `crosshar.tools.complexity`
counts both attentions with its own rules (thop cannot see their matrix products).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from crosshar.models.attention import MultiHeadAttention, TransformerBlock  # noqa: F401  (re-exported)


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


class MixStyle(nn.Module):
    """MixStyle (Zhou, Yang, Qiao, Xiang: "Domain Generalization with MixStyle", ICLR 2021) over time: in training,
    with probability `p` per batch, each sequence's per-channel mean and standard deviation over time are replaced
    by a mix of its own and those of another sequence of the batch (weight lam ~ Beta(alpha, alpha) per sequence),
    its normalised content kept: new "styles" (a subject's or a device's intensity and offsets) from the batch's
    own, the labels untouched. The identity in evaluation (and so absent from an exported model).

    forward(x: (B, T, d)) -> (B, T, d)
    """

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"mixstyle must be a probability in [0, 1], got {p}")
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or len(x) < 2 or float(torch.rand(())) >= self.p:
            return x
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((len(x), 1, 1)).to(x.dtype).to(x.device)
        return mix_statistics(x, lam, torch.randperm(len(x)).to(x.device), self.eps)


def mix_statistics(x: torch.Tensor, lam: torch.Tensor, partner: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x (B, T, d) with each sequence's per-channel mean and std over time replaced by lam (B, 1, 1) x its own +
    (1 - lam) x those of sequence partner[i], its normalised content kept (MixStyle's mix; the statistics are mixed,
    not learnt through). Returns (B, T, d)."""
    mu = x.mean(dim=1, keepdim=True).detach()
    sig = (x.var(dim=1, keepdim=True) + eps).sqrt().detach()
    return (x - mu) / sig * (lam * sig + (1 - lam) * sig[partner]) + lam * mu + (1 - lam) * mu[partner]
