"""A deep ensemble of heads: K copies of one registered head, initialised independently, trained side by
side on the same batches, whose class probabilities are averaged (Lakshminarayanan et al. 2017).

Members differ only in their initial weights (and dropout draws); each trains on its own cross-entropy,
so a member learns exactly what it would learn alone on those batches (`finetune` clips each member's
gradient norm separately). The ensemble is one `nn.Module`, so it saves, loads and exports as any head.
"""

from __future__ import annotations

import torch
from torch import nn


def log_mean_probs(logits: torch.Tensor) -> torch.Tensor:
    """(K, B, C) logits of K predictions -> (B, C): the log of their mean class probabilities (its softmax is
    that mean). Shared by an ensemble's members and a model's heading views."""
    return torch.log(torch.softmax(logits, dim=-1).mean(dim=0).clamp_min(1e-12))


class HeadEnsemble(nn.Module):
    """K heads mapping (B, T, D) -> logits (B, C); their softmax outputs are averaged.

    Args:
        members: the K >= 2 heads (same input width and classes).

    forward(x: (B, T, D)) -> (B, C): the log of the members' mean class probabilities, so that its
    softmax is that mean; member_logits(x) -> (K, B, C): each member's own logits (for training).
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 heads, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def fc(self) -> nn.Module:
        """The first member's output layer (every registered head ends in .fc): its width is the classes'."""
        return self.members[0].fc

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return log_mean_probs(self.member_logits(x))
