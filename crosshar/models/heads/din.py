"""DIN: a convolutional local branch and a patch-transformer global branch, fused by co-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crosshar.models.heads.common import (
    MixStyle, MultiHeadAttention, SinusoidalPositions, TransformerBlock, check_input,
)
from crosshar.registry import HEADS


class LocalConvBlock(nn.Module):
    """Residual pair of 1-D convolutions with BN over time: the local branch's stage.

    forward(x: (B, T, d)) -> (B, T, d)
    """

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(dim), nn.ReLU(),
            nn.Conv1d(dim, dim, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(dim),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        return self.act(h + self.body(h)).transpose(1, 2)


class CoAttention(nn.Module):
    """Cross-attention in both directions between local tokens L and global tokens G.

    global-to-local: L attends to G (L queries, G keys/values) and adds the result to L;
    local-to-global: G attends to L and adds the result to G. Both read the states before the
    update (pre-norm, residual).

    forward(l: (B, T, d), g: (B, N, d)) -> (l', g') of the same shapes
    """

    def __init__(self, dim: int, n_heads: int, dropout: float, attn_dropout: float | None = None):
        super().__init__()
        attn = dropout if attn_dropout is None else attn_dropout
        self.norm_l, self.norm_g = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.g2l = MultiHeadAttention(dim, n_heads, attn, cross=True, separate_init=True)
        self.l2g = MultiHeadAttention(dim, n_heads, attn, cross=True, separate_init=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, l: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ln, gn = self.norm_l(l), self.norm_g(g)
        return l + self.drop(self.g2l(ln, gn)), g + self.drop(self.l2g(gn, ln))


class InteractiveBlock(nn.Module):
    """One DIN stage: a local conv block, a global transformer block, then co-attention."""

    def __init__(self, dim: int, n_heads: int, d_ff: int, kernel_size: int, dropout: float,
                 attn_dropout: float | None = None):
        super().__init__()
        self.local = LocalConvBlock(dim, kernel_size)
        self.glob = TransformerBlock(dim, n_heads, d_ff, dropout, norm="pre", activation="relu",
                                     attn_dropout=dropout if attn_dropout is None else attn_dropout,
                                     ff_dropout=dropout, separate_init=True)
        self.co = CoAttention(dim, n_heads, dropout, attn_dropout)

    def forward(self, l: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.co(self.local(l), self.glob(g))


@HEADS.register("din")
class DIN(nn.Module):
    """DIN, the Dual-branch Interactive Network (Tang, Zhang, Wu, He, Song: "Dual-branch
    Interactive Networks on Multichannel Time Series for Human Activity Recognition", IEEE
    Journal of Biomedical and Health Informatics).

    There is no official code ("coming soon" in the authors' repository) and the text available
    to us is the abstract, so the model is our reading of it.

    Specified by the paper (its abstract):
    - two streams that disentangle local and global features;
    - the local stream embeds the series by convolution ("conv-embedding"), the global one by
      patches ("patch-embedding") and models them with Transformer self-attention;
    - a co-attention mechanism fuses them in both directions, global-to-local and
      local-to-global;
    - few parameters and FLOPs (the abstract gives no numbers).

    Ours (the `paper` preset keeps them, as the paper gives nothing to replace them with):
    - Conv embedding: a 5-tap convolution D -> d with BN and ReLU, then per block a residual
      pair of 5-tap convolutions with BN, at full time resolution (one token per step).
    - Patch embedding: a linear map of each flattened (patch_size x D) patch, written as a
      convolution with kernel = stride = patch_size; the last partial patch is zero-padded, so
      T need not be a multiple of patch_size (T = 120, patch 8 -> 15 patches; T = 128 -> 16).
    - Positions are fixed sinusoids (any number of patches) rather than learned.
    - Global blocks are pre-norm transformer layers (ReLU feed-forward `d_ff`).
    - Co-attention = two multi-head cross-attentions with residuals and pre-norm, both reading
      the states before the update, after every one of `depth` interactive blocks.
    - Each stream average-pooled, the two concatenated (LayerNorm) before a linear classifier.
    - Width d = 64, depth 2, 4 heads (about 0.28 M parameters on embeddings), and the whole
      training recipe (the `paper` preset only turns our augmentation off).
    - Input may be embeddings (D = 72) or raw windows (D = 6 or 3); only the two input
      embeddings depend on D.

    Args:
        in_dim: input width D.
        num_classes: number of classes.
        seq_len: expected T; only sizes the position table (longer inputs extend it).
        dim: width d of both branches (divisible by n_heads).
        depth: number of interactive blocks.
        n_heads: heads of every attention.
        d_ff: feed-forward width of the global transformer blocks.
        patch_size: time steps per patch of the global branch.
        kernel_size: taps of the local convolutions (odd).
        dropout: dropout in attention, feed-forward and before the classifier.
        attn_dropout: dropout on the attention weights (the rest of the model: `dropout`). On a CPU their dropout
            mask is a quarter of a finetuning step's time (0: the fused kernel); matrix rows *_attn0.
        mixstyle: MixStyle's probability per training batch (0: off) on both streams after the first interactive
            block (crosshar.models.heads.common.MixStyle; the identity in evaluation); matrix rows *_mixstyle.

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, 2 * dim), the
    concatenated pooled local and global features.
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120, dim: int = 64,
                 depth: int = 2, n_heads: int = 4, d_ff: int = 128, patch_size: int = 8,
                 kernel_size: int = 5, dropout: float = 0.1, attn_dropout: float = 0.0, mixstyle: float = 0.0):
        super().__init__()
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.patch_size = patch_size
        self.conv_embed = nn.Sequential(
            nn.Conv1d(in_dim, dim, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(dim), nn.ReLU(),
        )
        self.patch_embed = nn.Conv1d(in_dim, dim, patch_size, stride=patch_size)
        self.pos = SinusoidalPositions(dim, max_len=max(-(-seq_len // patch_size), 64))
        self.blocks = nn.ModuleList(
            InteractiveBlock(dim, n_heads, d_ff, kernel_size, dropout, attn_dropout) for _ in range(depth)
        )
        self.mix_l, self.mix_g = MixStyle(mixstyle), MixStyle(mixstyle)
        self.norm = nn.LayerNorm(2 * dim)
        self.feature_dim = 2 * dim
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, 2 * dim)."""
        check_input(x, self.in_dim, "din")
        xc = x.transpose(1, 2)  # (B, D, T)
        local = self.conv_embed(xc).transpose(1, 2)  # (B, T, d)
        pad = (-x.shape[1]) % self.patch_size
        if pad:
            xc = F.pad(xc, (0, pad))
        glob = self.pos(self.patch_embed(xc).transpose(1, 2))  # (B, N, d)
        for i, block in enumerate(self.blocks):
            local, glob = block(local, glob)
            if i == 0:
                local, glob = self.mix_l(local), self.mix_g(glob)
        return self.norm(torch.cat([local.mean(dim=1), glob.mean(dim=1)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))
