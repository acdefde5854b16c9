"""Losses of CrossHAR's pretraining (masked MSE, NT-Xent) and of the MAG-Res2Net recipe (center loss)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def partial_cross_entropy(logits: Tensor, y: Tensor, allowed: Tensor) -> Tensor:
    """Cross-entropy where a target may be a set of classes: -log of the set's summed probability.

    A window labelled only "stairs" (WISDM) trains a head whose classes are upstairs and downstairs
    on P(upstairs) + P(downstairs): the marginal likelihood of what the label says, no more.

    Args:
        logits: (B, K).
        y: (B,) codes: k < K is class k, K + g the g-th set of classes.
        allowed: (K + G, K) bool; row k < K is the one-hot of class k (so those rows give plain
            cross-entropy), row K + g marks the classes of set g.

    Returns:
        Scalar mean over the batch.
    """
    logits = logits.float()
    inside = logits.masked_fill(~allowed[y], float("-inf"))
    return (torch.logsumexp(logits, -1) - torch.logsumexp(inside, -1)).mean()


def smoothed(loss: Callable[[Tensor, Tensor], Tensor], eps: float) -> Callable[[Tensor, Tensor], Tensor]:
    """Label smoothing (Szegedy et al. 2016) around any cross-entropy on (logits (B, K), targets):
    (1 - eps) x loss + eps x the cross-entropy against the uniform distribution over the K classes, i.e.
    the target's probability mass spread by eps. eps = 0 returns `loss` itself. Equals PyTorch's
    `cross_entropy(label_smoothing=eps)` when `loss` is plain cross-entropy (tested)."""
    if eps == 0:
        return loss

    def f(logits: Tensor, y: Tensor) -> Tensor:
        uniform = -torch.log_softmax(logits.float(), dim=-1).mean(dim=-1).mean()
        return (1 - eps) * loss(logits, y) + eps * uniform

    return f


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, channel_weight: Tensor | None = None) -> Tensor:
    """Mean squared error over the masked time steps and all channels (LIMU-BERT's loss).

    Args:
        pred: (B, T, C) reconstruction.
        target: (B, T, C) the unmasked input.
        mask: (B, T) bool, True where the step was masked.
        channel_weight: (C,) weight of each channel's squared error (None: all 1).

    Returns:
        Scalar: sum over masked steps and channels of weight_c x (pred - target)^2, divided by
        their number (0 when nothing is masked).
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
                         f"mask {tuple(mask.shape)}")
    if channel_weight is not None and channel_weight.shape != pred.shape[-1:]:
        raise ValueError(f"channel_weight {tuple(channel_weight.shape)} for {pred.shape[-1]} channels")
    w = mask.to(pred.dtype)[:, :, None]
    sq = (pred - target).pow(2) * w
    if channel_weight is not None:
        sq = sq * channel_weight.to(sq.dtype)
    return sq.sum() / (w.sum() * pred.shape[-1]).clamp_min(1.0)


def equal_channel_weights(target: Tensor, floor: float = 1e-6) -> Tensor:
    """(B, T, C) batch -> (C,) weights that give every channel's squared error the same expected size.

    weight_c = mean(var) / var_c, var over the batch's windows and steps (no gradient): a channel's
    reconstruction error counts relative to how much it varies, at the raw loss's scale (all 1 when
    every channel varies alike). A channel varying less than `floor` x the largest variance (a
    constant channel, or the zero channels of the vertical frames) has nothing to equalise: it keeps
    weight 1 and stays out of the mean. The floor is far below any sensor channel: on scaled batches of
    256 real windows in the gravity frame (what the pretrainer sees) the least varying channel has 3 % of
    the largest one's variance (UCI, MotionSense, WISDM; 100 batches each).
    """
    var = target.detach().float().var(dim=(0, 1), unbiased=False)
    live = var > floor * var.max()
    if not live.any():
        return torch.ones_like(var)
    return torch.where(live, var[live].mean() / var.clamp_min(1e-12), torch.ones_like(var))


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.2) -> Tensor:
    """SimCLR's normalised-temperature cross-entropy (Chen et al., ICML 2020).

    Each of the 2N projections is an anchor whose positive is the other view of the same window
    and whose 2N - 2 negatives are all the other projections; similarity is cosine / temperature.

    Args:
        z1: (N, d) projections of view 1.
        z2: (N, d) projections of view 2 (row i is the same window as row i of z1).
        temperature: softmax temperature (CrossHAR: 0.2).

    Returns:
        Scalar: cross-entropy averaged over the 2N anchors.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (N, d) tensors of the same shape, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    n = z1.shape[0]
    if n < 2:
        raise ValueError("NT-Xent needs at least 2 windows per batch (no negatives otherwise)")
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.T / temperature  # (2N, 2N)
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_pairs, float("-inf"))
    idx = torch.arange(n, device=z.device)
    positives = torch.cat([idx + n, idx])
    return F.cross_entropy(sim, positives)


class CenterLoss(nn.Module):
    """Center loss (Wen et al., ECCV 2016): pull each feature towards a learned center of its class.

    L = 1/2 * mean_i ||f_i - c_{y_i}||^2. Wen et al. sum over the mini-batch and update the
    centers with their own rule (rate alpha); here the centers are ordinary parameters trained
    by the optimizer, and the mean over the batch keeps the weight independent of batch size.

    Args:
        num_classes: K.
        feat_dim: d, width of the features.
    """

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        if num_classes < 1 or feat_dim < 1:
            raise ValueError(f"num_classes and feat_dim must be >= 1, got {num_classes}, {feat_dim}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """features: (B, d), labels: (B,) in [0, K) -> scalar loss."""
        if features.ndim != 2 or features.shape[1] != self.feat_dim:
            raise ValueError(f"expected features (B, {self.feat_dim}), got {tuple(features.shape)}")
        if labels.shape != features.shape[:1]:
            raise ValueError(f"labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes}), got "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        diff = features - self.centers[labels]
        return 0.5 * diff.pow(2).sum(dim=1).mean()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}"
