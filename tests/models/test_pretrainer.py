"""CrossHARPretrainer: finite named losses, the right target, learning on a tiny fixed batch."""

from __future__ import annotations

import math

import pytest
import torch

from crosshar.config import EncoderConfig, PretrainConfig
from crosshar.losses import equal_channel_weights, masked_mse
from crosshar.models import CrossHARPretrainer, Encoder
from crosshar.limits import GRAVITY

ENC = EncoderConfig(d_model=32, d_ff=64, n_heads=4, n_layers=1, dropout=0.0)



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def synthetic_windows(b: int = 16, t: int = 40, c: int = 6, seed: int = 0) -> torch.Tensor:
    """Walking-like windows in physical units: gravity on z plus sinusoids of random phase."""
    g = gen(seed)
    time = torch.arange(t) / 20.0
    freq = 1.5 + torch.rand(b, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(b, 1, c, generator=g)
    x = torch.sin(2 * math.pi * freq * time[None, :, None] + phase)
    x[..., :3] = 3.0 * x[..., :3]
    x[..., 2] += GRAVITY
    return x.float() / torch.tensor([GRAVITY] * 3 + [1.0] * (c - 3))  # scaled as InputScaler("physical")


def make(c: int = 6, **cfg) -> CrossHARPretrainer:
    """A small pretrainer; the masked MSE over the channels as they are ("raw") unless `cfg` names it, as the tests
    that compute the expected loss by hand do."""
    torch.manual_seed(0)
    return CrossHARPretrainer(Encoder(ENC, n_channels=c), PretrainConfig(**{"mse_channels": "raw", **cfg}), c)


@pytest.mark.parametrize("c", [3, 6])
def test_stage1_and_stage2_return_finite_named_losses(c):
    model = make(c)
    x = synthetic_windows(c=c)
    out1 = model(x, stage=1, generator=gen())
    assert set(out1) == {"mse", "loss"} and torch.isfinite(out1["loss"])
    assert out1["loss"] is out1["mse"]
    out2 = model(x, x.flip(1), stage=2, generator=gen())
    assert set(out2) == {"mse", "contrast", "loss"}
    assert all(torch.isfinite(v) for v in out2.values())
    cfg = model.cfg
    expected = cfg.w_mse * out2["mse"].item() + cfg.w_contrast * out2["contrast"].item()
    assert out2["loss"].item() == pytest.approx(expected)


def test_bad_calls_are_rejected():
    model = make()
    x = synthetic_windows()
    with pytest.raises(ValueError, match="two views"):
        model(x, stage=2)
    with pytest.raises(ValueError, match="stage"):
        model(x, x, stage=3)
    with pytest.raises(ValueError, match="shape"):
        model(x, x[:, :20], stage=2)


def test_target_is_the_unmasked_input():
    model = make().eval()
    x = synthetic_windows()  # already scaled: the InputScaler runs before the pretrainer
    out = model(x, stage=1, generator=gen(3))
    scaled = x
    x_masked, mask = model.mask(scaled, gen(3))  # same generator state: the same mask
    assert mask.sum(1).eq(round(0.15 * x.shape[1])).all()
    assert (x_masked[mask] == 0).any() and torch.equal(x_masked[~mask], scaled[~mask])
    expected = masked_mse(model.reconstruct(model.encode(x_masked)), scaled, mask)
    assert out["mse"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_equal_mse_channels_weigh_the_reconstruction_by_the_batchs_channel_variance():
    x = synthetic_windows()
    raw, equal = make().eval(), make(mse_channels="equal").eval()
    x_masked, mask = raw.mask(x, gen(5))
    rec = raw.reconstruct(raw.encode(x_masked))
    out_raw, out_eq = raw(x, stage=1, generator=gen(5)), equal(x, stage=1, generator=gen(5))
    assert out_raw["mse"].item() == pytest.approx(masked_mse(rec, x, mask).item(), rel=1e-5)
    assert out_eq["mse"].item() == pytest.approx(masked_mse(rec, x, mask, equal_channel_weights(x)).item(), rel=1e-5)
    assert out_eq["mse"].item() != pytest.approx(out_raw["mse"].item(), rel=1e-3)
    with pytest.raises(ValueError, match="mse_channels"):
        PretrainConfig(mse_channels="variance")


def test_generator_makes_the_losses_reproducible():
    model = make().eval()
    x = synthetic_windows()
    a = model(x, x, stage=2, generator=gen(1))
    b = model(x, x, stage=2, generator=gen(1))
    c = model(x, x, stage=2, generator=gen(2))
    assert a["loss"].item() == b["loss"].item() != c["loss"].item()


@pytest.mark.parametrize("stage", [1, 2])
def test_a_few_adam_steps_lower_the_loss_and_gradients_reach_the_encoder(stage):
    model = make().train()
    x = synthetic_windows(b=16)
    v2 = x + 0.05 * torch.randn(x.shape, generator=gen(9))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(25):
        out = model(x, v2 if stage == 2 else None, stage=stage, generator=gen(step % 2))
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:
            for name, p in model.encoder.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_contrast_only_branch_and_state_dict():
    model = make(proj_dim=16)
    h = torch.randn(8, 40, 32)
    assert model.project(h).shape == (8, 16)
    assert torch.isfinite(model.contrast(h, h + 0.1))
    keys = model.state_dict().keys()
    assert any(k.startswith("encoder.") for k in keys) and not any(k.startswith("scaler.") for k in keys)


def test_aggregator_equals_a_full_cls_transformer_layer():
    from crosshar.models import SequenceAggregator, TransformerBlock

    torch.manual_seed(0)
    agg = SequenceAggregator(32, 4, 64, dropout=0.0).eval()
    full = TransformerBlock(32, 4, 64, dropout=0.0, norm="pre").eval()
    with torch.no_grad():  # give the full layer the aggregator's weights
        full.norm1.load_state_dict(agg.norm1.state_dict())
        full.norm2.load_state_dict(agg.norm2.state_dict())
        full.attn.qkv.weight.copy_(torch.cat([agg.q.weight, agg.kv.weight]))
        full.attn.qkv.bias.copy_(torch.cat([agg.q.bias, agg.kv.bias]))
        full.attn.proj.load_state_dict(agg.proj.state_dict())
        full.ff.load_state_dict(agg.ff.state_dict())
    h = torch.randn(3, 20, 32)
    reference = agg.norm(full(torch.cat([agg.cls.expand(3, -1, -1), h], dim=1))[:, 0])
    torch.testing.assert_close(agg(h), reference, atol=1e-5, rtol=0)
    h2 = h.clone()
    h2[:, 7] += torch.randn(32)  # not a constant shift, which the pre-norm would erase
    assert (agg(h) - agg(h2)).abs().max() > 1e-3  # every step reaches the summary


def trending_windows(b: int = 32, t: int = 40, seed: int = 0) -> torch.Tensor:
    """(b, t, 6) scaled windows whose vertical acc climbs through the window (a cubic trend of random
    height, plus noise): which way time runs shows in the trend."""
    g = gen(seed)
    x = 0.05 * torch.randn(b, t, 6, generator=g)
    x[..., 2] += 1.0 + (0.2 + 0.3 * torch.rand(b, 1, generator=g)) * torch.linspace(-1, 1, t) ** 3
    return x


def test_arrow_of_time_loss_is_added_at_its_weight_and_only_when_on():
    x = trending_windows()
    rev = torch.arange(len(x)) % 2 == 0
    off = make()
    assert off.arrow is None and not any(k.startswith("arrow.") for k in off.state_dict())
    assert "arrow" not in off(x, x, stage=2, generator=gen(), backwards=rev)  # ignored when off
    on = make(arrow=0.5).eval()
    for stage in (1, 2):
        out = on(x, x if stage == 2 else None, stage=stage, generator=gen(), backwards=rev)
        base = on(x, x if stage == 2 else None, stage=stage, generator=gen())  # same masks, no arrow
        assert "arrow" in out and "arrow" not in base
        logits = on.arrow(on.encode(on.mask(x if stage == 1 else torch.cat([x, x]), gen())[0]).mean(1)).squeeze(-1)
        target = rev.float().repeat(1 if stage == 1 else 2)
        assert out["arrow"].item() == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, target).item(), rel=1e-5)
        assert out["loss"].item() == pytest.approx(base["loss"].item() + 0.5 * out["arrow"].item(), rel=1e-5)


def test_the_pretraining_model_plays_half_the_windows_backwards_and_learns_which():
    from crosshar.config import WindowConfig
    from crosshar.models.pretrainer import PretrainingModel

    torch.manual_seed(0)
    enc = EncoderConfig(d_model=32, d_ff=64, n_heads=4, n_layers=1, dropout=0.0, input_frame="device")
    model = PretrainingModel(WindowConfig(window=40), enc, PretrainConfig(arrow=1.0, mse_channels="raw"))
    x = trending_windows(b=64) * torch.tensor([GRAVITY] * 3 + [1.0] * 3)  # physical units, as the loop feeds it
    seen = {}
    model.pretrainer.forward = lambda v1, v2, stage, generator, backwards: seen.update(v1=v1, rev=backwards) or {}
    model(x, None, 1, gen(4))
    rev = seen["rev"]
    assert 0.3 < rev.float().mean() < 0.7  # a fair coin per window
    from crosshar.models.frame import reverse_time
    expected = model.scaler(torch.where(rev[:, None, None], reverse_time(x), x))
    torch.testing.assert_close(seen["v1"], expected)
    del model.pretrainer.forward  # the real one again: the direction is learnt from the windows alone
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    arrow = []
    for step in range(60):
        out = model(x, None, 1, gen(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        arrow.append(out["arrow"].item())
    assert arrow[0] > 0.6 and sum(arrow[-10:]) / 10 < 0.25, arrow
