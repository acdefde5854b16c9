"""Span masking: exact counts, span-length statistics, uniform coverage; BERT-style zeroing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crosshar.models.masking import apply_mask, sample_span_lengths, span_length_probs, span_mask



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run_lengths(mask: torch.Tensor) -> torch.Tensor:
    d = torch.diff(F.pad(mask.int(), (1, 1)), dim=1)
    starts = (d == 1).nonzero()[:, 1]
    ends = (d == -1).nonzero()[:, 1]
    return (ends - starts).float()


@pytest.mark.parametrize("T, expected", [(120, 18), (128, 19), (10, 2)])
def test_span_mask_masks_exactly_round_ratio_T_per_row(T, expected):
    m = span_mask(300, T, 0.15, 10, 0.2, gen())
    assert m.shape == (300, T) and m.dtype == torch.bool
    assert (m.sum(1) == expected).all()


def test_span_mask_mean_fraction_and_uniform_coverage():
    m = span_mask(4000, 120, 0.15, 10, 0.2, gen(1))
    assert m.double().mean().item() == pytest.approx(0.15, abs=1e-12)
    per_step = m.float().mean(0)  # each step ~ 0.15 +- 0.006
    assert per_step.min() > 0.12 and per_step.max() < 0.18
    assert per_step[0] > 0.12 and per_step[-1] > 0.12  # both ends get masked too


def test_span_lengths_follow_truncated_geometric():
    probs = span_length_probs(10, 0.2)
    assert probs.sum().item() == pytest.approx(1.0)
    assert probs[1] / probs[0] == pytest.approx(0.8)
    lengths = sample_span_lengths((100_000,), 10, 0.2, gen(2))
    assert lengths.min() >= 1 and lengths.max() <= 10
    freq = torch.bincount(lengths, minlength=11)[1:].double() / lengths.numel()
    torch.testing.assert_close(freq, probs, atol=0.005, rtol=0)
    mean = (probs * torch.arange(1, 11, dtype=torch.float64)).sum().item()  # 3.80
    assert lengths.double().mean().item() == pytest.approx(mean, abs=0.03)


def test_observed_runs_in_the_mask_match_the_span_lengths():
    # spans are cut at the window ends and to the remaining need, and sometimes merge, so runs
    # average a little below the drawn mean of 3.80 and rarely exceed span_max
    runs = run_lengths(span_mask(4000, 120, 0.15, 10, 0.2, gen(3)))
    assert 3.2 < runs.mean().item() < 3.9
    assert (runs > 10).float().mean().item() < 0.02
    short = run_lengths(span_mask(2000, 120, 0.15, 1, 0.2, gen(3)))  # span_max 1: single steps
    assert short.mean().item() < 1.2
    longer = run_lengths(span_mask(2000, 120, 0.15, 10, 0.05, gen(3)))  # smaller p: longer spans
    assert longer.mean().item() > runs.mean().item() + 0.5


def test_span_mask_reproducible_and_seed_dependent():
    assert torch.equal(span_mask(64, 120, 0.15, 10, 0.2, gen(5)), span_mask(64, 120, 0.15, 10, 0.2, gen(5)))
    assert not torch.equal(span_mask(64, 120, 0.15, 10, 0.2, gen(5)), span_mask(64, 120, 0.15, 10, 0.2, gen(6)))


def test_span_mask_rejects_bad_arguments():
    with pytest.raises(ValueError):
        span_mask(2, 120, 0.0, 10, 0.2, gen())
    with pytest.raises(ValueError):
        span_mask(2, 120, 0.15, 0, 0.2, gen())
    with pytest.raises(ValueError):
        span_mask(2, 120, 0.15, 10, 0.0, gen())


def test_apply_mask_zeroes_about_mask_prob_of_masked_steps_only():
    x = torch.randn(2000, 120, 6) + 3.0  # no exact zeros in the data
    m = span_mask(2000, 120, 0.15, 10, 0.2, gen(0))
    y = apply_mask(x, m, 0.8, gen(1))
    assert torch.equal(y[~m], x[~m]), "unmasked steps must be untouched"
    zeroed = (y == 0).all(-1)
    kept = (y == x).all(-1)
    assert (zeroed | kept).all(), "a masked step is either zeroed (all channels) or kept"
    assert not (zeroed & ~m).any()
    frac = zeroed[m].float().mean().item()
    assert frac == pytest.approx(0.8, abs=0.01)
    assert torch.equal(apply_mask(x, m, 0.0, gen()), x)
    assert (apply_mask(x, m, 1.0, gen())[m] == 0).all()


def test_apply_mask_per_window_is_all_or_nothing():
    x = torch.randn(1000, 50, 3) + 3.0
    m = span_mask(1000, 50, 0.2, 5, 0.2, gen(0))
    y = apply_mask(x, m, 0.8, gen(1), per_window=True)
    zeroed_per_row = ((y == 0).all(-1) & m).sum(1)
    n_masked = m.sum(1)
    assert ((zeroed_per_row == 0) | (zeroed_per_row == n_masked)).all()
    assert (zeroed_per_row > 0).float().mean().item() == pytest.approx(0.8, abs=0.04)


def test_apply_mask_shape_check():
    with pytest.raises(ValueError):
        apply_mask(torch.zeros(2, 10, 6), torch.zeros(2, 11, dtype=torch.bool), 0.8, gen())
