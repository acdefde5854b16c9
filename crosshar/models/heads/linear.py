"""Linear probe: mean over time, optional LayerNorm, one linear layer."""

from __future__ import annotations

import torch
from torch import nn

from crosshar.models.heads.common import check_input
from crosshar.registry import HEADS


@HEADS.register("linear")
class LinearProbe(nn.Module):
    """The standard linear probe of self-supervised learning (as MAE's `main_linprobe.py`).

    It measures how linearly separable the encoder's embeddings are: time-average pooling,
    an optional LayerNorm (MAE uses a non-affine BatchNorm; LayerNorm does not depend on the
    batch, which keeps batch-1 inference on a device identical to training), dropout and one
    linear layer. Not a paper's model, so there is nothing to deviate from (its `paper` preset
    is the default, kept so that every head has one); on raw windows it is
    a "mean of each channel" baseline. Its parameter count (D x classes) is far below the
    other heads' on purpose.

    Args:
        in_dim: input width D (72 for embeddings, 6 or 3 for raw windows).
        num_classes: number of classes.
        seq_len: unused (any T works); kept for the common head signature.
        norm: LayerNorm on the pooled features.
        dropout: dropout before the linear layer.

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, D).
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120,
                 norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        self.feature_dim = in_dim
        self.norm = nn.LayerNorm(in_dim) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, D), the normalised time average."""
        check_input(x, self.in_dim, "linear")
        return self.norm(x.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))
