"""LIMU-BERT span masking of IMU windows for masked reconstruction pretraining."""

from __future__ import annotations

import torch
from torch import Tensor


def span_length_probs(span_max: int, p: float) -> Tensor:
    """(span_max,) probabilities of span lengths 1..span_max: geometric(p) truncated and renormalised.

    P(L = l) is proportional to p (1 - p)^(l - 1), as LIMU-BERT's span masking (p = 0.2, up to 10).
    """
    if span_max < 1:
        raise ValueError(f"span_max must be >= 1, got {span_max}")
    if not 0 < p <= 1:
        raise ValueError(f"span_p must be in (0, 1], got {p}")
    probs = p * (1 - p) ** torch.arange(span_max, dtype=torch.float64)
    return probs / probs.sum()


def sample_span_lengths(shape: tuple[int, ...], span_max: int, p: float, generator: torch.Generator) -> Tensor:
    """Span lengths in [1, span_max] from the truncated geometric(p), as a long tensor of `shape`."""
    cdf = span_length_probs(span_max, p).cumsum(0).to(generator.device)
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return torch.searchsorted(cdf, u, right=True).clamp(max=span_max - 1) + 1


def span_mask(
    batch: int, T: int, ratio: float, span_max: int, p: float, generator: torch.Generator
) -> Tensor:
    """Boolean (B, T) mask made of random spans, exactly max(1, round(ratio * T)) True per row.

    LIMU-BERT's masking (Xu et al., SenSys 2021), vectorised over the batch (the Python loop is
    over rounds, about 13 for B = 512, T = 120, about 5 ms on one CPU thread): each round, every
    row still short of its goal draws one span length L ~ geometric(p) truncated to
    [1, span_max] and a start uniform in [-(L - 1), T - 1]; the span is cut to the window, a span
    whose first step is already masked is rejected (as in LIMU-BERT), and only the first steps
    the row still needs are added. Every row ends with exactly the goal count.
    Consequences: spans may touch or overlap earlier ones, so observed runs can exceed span_max
    (under 1 % of runs at the defaults), and spans cut at the window ends or to the remaining
    need are shorter than drawn (mean run 3.5 steps against a drawn mean of 3.8).
    Two deliberate differences from LIMU-BERT's code: its starts are uniform in [0, T - 1], which
    masks the first steps about 3 times less often than the rest (here every step is masked with
    the same probability), and its spans stop one step early, so it never masks the last step.

    Args:
        batch: B.
        T: window length.
        ratio: fraction of time steps to mask, in (0, 1).
        span_max: longest span.
        p: geometric parameter of the span length.
        generator: all randomness is drawn from it; the mask lives on its device.

    Returns:
        (B, T) bool, True = masked.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    if T < 2:
        raise ValueError(f"T must be >= 2, got {T}")
    goal = max(1, int(round(ratio * T)))
    device = generator.device
    span_length_probs(span_max, p)  # validates span_max and p
    steps = torch.arange(T, device=device)[None, :]  # (1, T)
    mask = torch.zeros(batch, T, dtype=torch.bool, device=device)
    count = torch.zeros(batch, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # rows still short of the goal
    for _ in range(100 * (T + span_max)):  # each round adds a step to a short row with prob. > 0
        if active.numel() == 0:
            return mask
        n = active.numel()
        length = sample_span_lengths((n,), span_max, p, generator)
        # start in [-(L - 1), T - 1], so that every step is covered equally often (spans are cut at
        # both ends); LIMU-BERT starts in [0, T - 1], which rarely masks the first steps
        start = torch.randint(0, T + span_max - 1, (n,), generator=generator, device=device)
        start = start - (span_max - 1)
        ok = start > -length  # rejection keeps the start distribution uniform for each length
        first = start.clamp(min=0)
        rows = mask[active]
        ok &= ~rows[torch.arange(n, device=device), first]  # anchor already masked: redraw
        need = goal - count[active]
        # the first `need` still-unmasked steps of the span
        new = (steps >= start[:, None]) & (steps < (start + length)[:, None]) & ok[:, None] & ~rows
        new &= new.cumsum(1) <= need[:, None]
        mask[active] = rows | new
        count[active] += new.sum(1)
        active = active[count[active] < goal]
    raise RuntimeError("span_mask did not reach its goal (this should not happen)")


def apply_mask(
    x: Tensor, mask: Tensor, mask_prob: float, generator: torch.Generator, per_window: bool = False
) -> Tensor:
    """Zero masked time steps (all channels) with probability `mask_prob`, else keep them.

    BERT-style corruption: the loss is taken on every masked step, but only a fraction of them is
    actually hidden, so the encoder cannot rely on "zero means masked" alone. By default the coin
    is tossed per masked step. LIMU-BERT / CrossHAR toss it once per *window* (with prob 0.8
    all masked steps of a window are zeroed, otherwise none); `per_window=True` does that. Their
    code also has a branch that replaces masked steps with U(0, 1) noise, but its probability
    (replace_prob) defaults to 0 and is never set, so it is not offered.

    Args:
        x: (B, T, C) scaled windows.
        mask: (B, T) bool from span_mask.
        mask_prob: probability that a masked step is zeroed.
        generator: randomness source.
        per_window: one coin per window instead of one per masked step.

    Returns:
        (B, T, C) copy of x with the chosen masked steps set to 0.
    """
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match windows {tuple(x.shape)}")
    shape = (x.shape[0], 1) if per_window else tuple(mask.shape)
    coin = torch.rand(shape, generator=generator, device=generator.device) < mask_prob
    hide = mask.to(x.device) & coin.to(x.device)
    return x.masked_fill(hide[:, :, None], 0.0)
