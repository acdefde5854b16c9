"""The one attention and the one transformer block, used by the encoder and by the heads.

Attention goes through `F.scaled_dot_product_attention`: it picks the fused CPU kernel when no
dropout is asked for, exports to ONNX (opset >= 14), and its matrix products are counted by
`crosshar.tools.complexity`'s own rule (thop cannot see them). Checkpoints written before this
module existed (the heads' separate q/k/v/out projections and `nn.Sequential` feed-forward) load
through `_load_from_state_dict` key maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _rename(state_dict: dict, prefix: str, old: str, new: str) -> None:
    for suffix in ("weight", "bias"):
        if prefix + f"{old}.{suffix}" in state_dict:
            state_dict[prefix + f"{new}.{suffix}"] = state_dict.pop(prefix + f"{old}.{suffix}")


def _linear_blocks(dim: int, n: int) -> nn.Linear:
    """nn.Linear(dim, n * dim) whose n row blocks are drawn one after another exactly as n separate
    nn.Linear(dim, dim) would be (weight, then bias, per block: PyTorch's default initialisation)."""
    lin = torch.nn.utils.skip_init(nn.Linear, dim, n * dim)
    with torch.no_grad():
        for i in range(n):
            nn.init.kaiming_uniform_(lin.weight[i * dim:(i + 1) * dim], a=math.sqrt(5))
            nn.init.uniform_(lin.bias[i * dim:(i + 1) * dim], -1 / math.sqrt(dim), 1 / math.sqrt(dim))
    return lin


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention: queries (B, Tq, D) attend over keys/values (B, Tk, D).

    Self-attention (`cross=False`) projects q, k and v with one fused `qkv` (D -> 3D) matmul;
    cross-attention (`cross=True`, DIN's co-attention) projects the queries with `q` (D -> D) and the
    keys/values with `kv` (D -> 2D). Two layouts rather than slices of one weight: a slice of a
    parameter stays a run-time Slice in the exported ONNX graph, which the int8 quantiser cannot
    quantise and onnxruntime recomputes on every call.

    Args:
        dim: width D (divisible by n_heads).
        n_heads: attention heads.
        dropout: dropout on the attention weights while training (0: the fused kernel).
        cross: the cross-attention layout (forward then needs `kv`).
        separate_init: draw the q, k and v blocks (and the output) as separate D x D `nn.Linear`s, in
            that order, as the heads' former layout did, so that a seed gives the weights it gave before
            the layouts were unified (the encoder's attention was always fused: False).

    forward(x: (B, Tq, D), kv: (B, Tk, D), or None for self-attention) -> (B, Tq, D)
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0, cross: bool = False,
                 separate_init: bool = False):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"width {dim} is not divisible by n_heads {n_heads}")
        self.dim, self.n_heads, self.dropout, self.cross = dim, n_heads, dropout, cross
        self.scale = (dim // n_heads) ** -0.5
        fused = (lambda n: _linear_blocks(dim, n)) if separate_init else (lambda n: nn.Linear(dim, n * dim))
        if cross:
            self.q, self.kv = nn.Linear(dim, dim), fused(2)
        else:
            self.qkv = fused(3)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: Tensor, n: int) -> tuple[Tensor, ...]:
        """(B, T, n*D) -> n tensors (B, H, T, D/H)."""
        b, t, _ = x.shape
        return x.reshape(b, t, n, self.n_heads, self.dim // self.n_heads).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: Tensor, kv: Tensor | None = None) -> Tensor:
        b, t, d = x.shape
        if self.cross != (kv is not None):
            raise ValueError("cross-attention needs kv and self-attention takes none")
        if self.cross:
            (q,), (k, v) = self._heads(self.q(x), 1), self._heads(self.kv(kv), 2)
        else:
            q, k, v = self._heads(self.qkv(x), 3)
        # an explicit scale: without it the ONNX export computes 1/sqrt(D/H) from the tensor's shape at run time
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           scale=self.scale)
        return self.proj(h.transpose(1, 2).reshape(b, t, d))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "k.weight" in state_dict:  # the heads' former layout: separate q, k, v and out
            for suffix in ("weight", "bias"):
                k, v = (state_dict.pop(prefix + f"{n}.{suffix}") for n in ("k", "v"))
                if self.cross:
                    state_dict[prefix + f"kv.{suffix}"] = torch.cat([k, v])
                else:
                    state_dict[prefix + f"qkv.{suffix}"] = torch.cat([state_dict.pop(prefix + f"q.{suffix}"), k, v])
            _rename(state_dict, prefix, "out", "proj")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class FeedForward(nn.Module):
    """Position-wise Linear(D, d_ff) -> activation (-> dropout) -> Linear(d_ff, D)."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _rename(state_dict, prefix, "0", "fc1")  # the heads' former nn.Sequential(Linear, ReLU, Dropout, Linear)
        _rename(state_dict, prefix, "3", "fc2")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TransformerBlock(nn.Module):
    """Self-attention and feed-forward, each inside a residual connection.

    norm="pre": x + f(LN(x)) (stable for deeper stacks); norm="post": LN(x + f(x)) (BERT,
    LIMU-BERT, `nn.TransformerEncoderLayer`'s default). The published CrossHAR / LIMU-BERT block
    computes `h = attn(h); h = LN(h + proj(h))`, so its residual skips only the output projection;
    here the residual wraps the whole attention.

    Args:
        d_model: width D.
        n_heads: attention heads.
        d_ff: feed-forward width.
        dropout: dropout on the output of both residual branches (as nanoGPT).
        norm: "pre" or "post".
        activation: feed-forward activation, "gelu" (the encoder) or "relu" (the heads, as
            `nn.TransformerEncoderLayer`).
        attn_dropout: dropout on the attention weights (0 keeps the fused kernel; the heads use it).
        ff_dropout: dropout inside the feed-forward, after the activation (the heads use it).
        separate_init: MultiHeadAttention's (the heads: True, as their former layout).

    forward(x: (B, T, D)) -> (B, T, D)
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, norm: str = "pre",
                 activation: str = "gelu", attn_dropout: float = 0.0, ff_dropout: float = 0.0,
                 separate_init: bool = False):
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {norm!r}")
        self.pre_norm = norm == "pre"
        self.attn = MultiHeadAttention(d_model, n_heads, attn_dropout, separate_init=separate_init)
        self.ff = FeedForward(d_model, d_ff, activation, ff_dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D) -> (B, T, D)."""
        if self.pre_norm:
            x = x + self.drop(self.attn(self.norm1(x)))
            return x + self.drop(self.ff(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self.ff(x)))
