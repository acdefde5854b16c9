"""Losses against hand-written naive references."""

from __future__ import annotations

import math

import pytest
import torch

from crosshar.losses import CenterLoss, equal_channel_weights, masked_mse, nt_xent



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_masked_mse_matches_a_loop():
    g = gen()
    pred, target = torch.randn(4, 12, 6, generator=g), torch.randn(4, 12, 6, generator=g)
    mask = torch.rand(4, 12, generator=g) < 0.3
    total, n = 0.0, 0
    for b in range(4):
        for t in range(12):
            if mask[b, t]:
                for c in range(6):
                    total += (pred[b, t, c].item() - target[b, t, c].item()) ** 2
                    n += 1
    assert masked_mse(pred, target, mask).item() == pytest.approx(total / n, rel=1e-5)


def test_masked_mse_ignores_unmasked_steps_and_handles_empty_mask():
    pred, target = torch.zeros(2, 5, 3), torch.zeros(2, 5, 3)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1] = True
    pred[1] = 100.0  # unmasked: no effect
    pred[0, 1] = 2.0
    assert masked_mse(pred, target, mask).item() == pytest.approx(4.0)
    assert masked_mse(pred, target, torch.zeros_like(mask)).item() == 0.0
    with pytest.raises(ValueError):
        masked_mse(pred, target, mask[:, :4])


def test_channel_weights_scale_each_channels_squared_error():
    g = gen(1)
    pred, target = torch.randn(3, 10, 4, generator=g), torch.randn(3, 10, 4, generator=g)
    mask = torch.rand(3, 10, generator=g) < 0.5
    w = torch.tensor([1.0, 0.0, 2.0, 0.5])
    per_channel = [masked_mse(pred[..., c:c + 1], target[..., c:c + 1], mask).item() for c in range(4)]
    expected = sum(wc * e for wc, e in zip(w.tolist(), per_channel)) / 4
    assert masked_mse(pred, target, mask, w).item() == pytest.approx(expected, rel=1e-5)
    assert masked_mse(pred, target, mask, torch.ones(4)).item() == pytest.approx(masked_mse(pred, target, mask).item())
    with pytest.raises(ValueError, match="channel_weight"):
        masked_mse(pred, target, mask, torch.ones(3))


def test_equal_channel_weights_make_every_channels_error_count_alike():
    g = gen(2)
    scale = torch.tensor([3.0, 1.0, 0.5])
    target = torch.randn(64, 50, 3, generator=g) * scale + torch.tensor([0.0, 1.0, 0.0])  # an offset changes nothing
    w = equal_channel_weights(target)
    var = target.var(dim=(0, 1), unbiased=False)
    assert (w * var).std() / (w * var).mean() < 1e-5  # weight x variance the same for every channel
    assert w.mean().item() == pytest.approx((var.mean() * (1 / var).mean()).item(), rel=1e-5)
    # the same relative error in every channel now gives the same loss, channel by channel
    noise = torch.randn(64, 50, 3, generator=gen(3)) * scale
    mask = torch.ones(64, 50, dtype=torch.bool)
    per = [masked_mse(target[..., c:c + 1] + noise[..., c:c + 1], target[..., c:c + 1], mask, w[c:c + 1]).item()
           for c in range(3)]
    assert max(per) / min(per) < 1.1
    # equal variances: all weights 1, the raw loss
    assert torch.allclose(equal_channel_weights(torch.randn(8, 20, 6, generator=g) * 0 + torch.randn(8, 20, 1, generator=g)),
                          torch.ones(6), atol=1e-5)


def test_a_constant_channel_keeps_weight_one_and_stays_out_of_the_mean():
    target = torch.randn(16, 30, 3, generator=gen(4))
    target[..., 1] = 1.0  # constant (gravity held still)
    target[..., 2] = 0.0  # a zero channel of the vertical frames
    w = equal_channel_weights(target)
    assert torch.isfinite(w).all() and w[1].item() == 1.0 and w[2].item() == 1.0
    assert w[0].item() == pytest.approx(1.0)  # the one live channel: its own mean
    assert torch.equal(equal_channel_weights(torch.zeros(4, 10, 6)), torch.ones(6))


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    z = torch.cat([z1, z2]).double()
    n2 = z.shape[0]
    n = n2 // 2

    def cos(a, b):
        return (a @ b / (a.norm() * b.norm())).item()

    total = 0.0
    for i in range(n2):
        pos = (i + n) % n2
        num = math.exp(cos(z[i], z[pos]) / tau)
        den = sum(math.exp(cos(z[i], z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(num / den)
    return total / n2


@pytest.mark.parametrize("tau", [0.2, 0.5, 1.0])
def test_nt_xent_matches_naive_loop(tau):
    g = gen(1)
    z1, z2 = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(naive_nt_xent(z1, z2, tau), rel=1e-5)


def test_nt_xent_is_low_for_matching_views_and_symmetric():
    z = torch.eye(8) * 5
    aligned = nt_xent(z, z + 0.01, 0.2).item()
    shuffled = nt_xent(z, z.roll(1, dims=0), 0.2).item()
    assert aligned < 0.1 < shuffled
    g = gen(2)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    assert nt_xent(a, b, 0.2).item() == pytest.approx(nt_xent(b, a, 0.2).item(), rel=1e-6)
    with pytest.raises(ValueError):
        nt_xent(a[:1], b[:1], 0.2)


def test_center_loss_matches_reference_and_pulls_centers():
    torch.manual_seed(0)
    loss_fn = CenterLoss(num_classes=3, feat_dim=4)
    feats = torch.randn(10, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    ref = sum(0.5 * (feats[i] - loss_fn.centers[labels[i]]).pow(2).sum() for i in range(10)) / 10
    loss = loss_fn(feats, labels)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    opt = torch.optim.SGD(loss_fn.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        loss_fn(feats, labels).backward()
        opt.step()
    for k in range(3):  # each center converges to its class mean
        torch.testing.assert_close(loss_fn.centers[k].detach(), feats[labels == k].mean(0), atol=1e-3, rtol=0)
    with pytest.raises(ValueError):
        loss_fn(feats, torch.full((10,), 3))


def test_partial_cross_entropy_is_cross_entropy_on_fine_labels_and_the_sets_likelihood_on_coarse_ones():
    import torch.nn.functional as F

    from crosshar.losses import partial_cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    allowed = torch.cat([torch.eye(4, dtype=torch.bool), torch.tensor([[False, True, True, False]])])
    fine = torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(partial_cross_entropy(logits, fine, allowed), F.cross_entropy(logits, fine))
    coarse = torch.full((5,), 4)  # "stairs": upstairs or downstairs
    p = logits.softmax(-1)
    torch.testing.assert_close(partial_cross_entropy(logits, coarse, allowed), -(p[:, 1] + p[:, 2]).log().mean())
    # no gradient pushes upstairs against downstairs: only the set's total against the rest
    lg = logits.clone().requires_grad_(True)
    partial_cross_entropy(lg, coarse, allowed).backward()
    g = lg.grad
    torch.testing.assert_close(g[:, 1] / g[:, 2], (p[:, 1] / p[:, 2]))


def test_label_smoothing_matches_pytorch_and_spreads_a_coarse_label_too():
    import torch.nn.functional as F

    from crosshar.losses import partial_cross_entropy, smoothed

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    torch.testing.assert_close(smoothed(F.cross_entropy, 0.1)(logits, y), F.cross_entropy(logits, y, label_smoothing=0.1))
    assert smoothed(F.cross_entropy, 0.0) is F.cross_entropy
    allowed = torch.cat([torch.eye(4, dtype=torch.bool), torch.tensor([[False, True, True, False]])])
    coarse = torch.full((16,), 4)
    sm = smoothed(lambda lg, t: partial_cross_entropy(lg, t, allowed), 0.2)(logits, coarse)
    uniform = -torch.log_softmax(logits, -1).mean()
    torch.testing.assert_close(sm, 0.8 * partial_cross_entropy(logits, coarse, allowed) + 0.2 * uniform)
