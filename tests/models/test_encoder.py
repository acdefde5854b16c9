"""Encoder shapes, residuals, weight sharing and ONNX export; the InputScaler that sits before it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from crosshar.config import EncoderConfig
from crosshar.models import Encoder, InputScaler, TransformerBlock
from crosshar.limits import GRAVITY

SMALL = dict(d_model=32, d_ff=64, n_heads=4)



def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("T", [120, 128])
@pytest.mark.parametrize("C", [3, 6])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_forward_shapes(T, C, norm):
    enc = Encoder(EncoderConfig(norm=norm), n_channels=C, max_len=128)
    h = enc.forward_features(torch.randn(3, T, C))
    assert h.shape == (3, T, enc.embed_dim) == (3, T, 72)
    assert torch.isfinite(h).all()
    assert torch.equal(enc.eval()(torch.ones(2, T, C)), enc.forward_features(torch.ones(2, T, C)))


def test_shorter_windows_work_and_longer_ones_are_rejected():
    enc = Encoder(EncoderConfig(**SMALL), n_channels=6, max_len=120)
    assert enc(torch.randn(2, 50, 6)).shape == (2, 50, 32)
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.randn(2, 121, 6))
    with pytest.raises(ValueError, match="B, T, 6"):
        enc(torch.randn(2, 120, 3))


def test_default_parameter_counts():
    one = n_params(Encoder(EncoderConfig(n_layers=1)))
    two = n_params(Encoder(EncoderConfig(n_layers=2)))
    assert 45_000 < one < 60_000  # CrossHAR / LIMU-BERT: ~52 k
    assert two - one == n_params(TransformerBlock(72, 4, 144))


def test_shared_weights_have_fewer_parameters_but_apply_the_block_n_layers_times():
    cfg = EncoderConfig(**SMALL, n_layers=3, dropout=0.0)
    shared = Encoder(cfg.replace(share_weights=True)).eval()
    separate = Encoder(cfg).eval()
    assert n_params(shared) < n_params(separate)
    assert len(shared.blocks) == 1 and len(separate.blocks) == 3
    once = Encoder(cfg.replace(share_weights=True, n_layers=1)).eval()
    once.load_state_dict(shared.state_dict())
    x = torch.randn(2, 20, 6)
    assert not torch.allclose(once(x), shared(x))


def test_attention_residual_passes_the_input_through():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 32)
    pre = TransformerBlock(32, 4, 64, dropout=0.0, norm="pre").eval()
    with torch.no_grad():
        pre.attn.proj.weight.zero_()
        pre.attn.proj.bias.zero_()
    # attention contributes nothing: only the input and the feed-forward branch remain
    torch.testing.assert_close(pre(x), x + pre.ff(pre.norm2(x)))
    with torch.no_grad():
        pre.ff.fc2.weight.zero_()
        pre.ff.fc2.bias.zero_()
    torch.testing.assert_close(pre(x), x)  # both branches zero: the block is the identity
    post = TransformerBlock(32, 4, 64, dropout=0.0, norm="post").eval()
    with torch.no_grad():
        for lin in (post.attn.proj, post.ff.fc2):
            lin.weight.zero_()
            lin.bias.zero_()
    torch.testing.assert_close(post(x), post.norm2(post.norm1(x)))


def test_dropout_only_in_training_and_gradients_reach_every_parameter():
    enc = Encoder(EncoderConfig(**SMALL, dropout=0.5))
    x = torch.randn(4, 30, 6)
    enc.train()
    assert not torch.allclose(enc(x), enc(x))
    enc(x).pow(2).mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    enc.eval()
    assert torch.equal(enc(x), enc(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is legacy
@pytest.mark.parametrize("norm, share, stem", [("pre", False, "linear"), ("post", True, "linear"), ("pre", False, "conv")])
def test_onnx_export_matches_torch(norm, share, stem):
    ort = pytest.importorskip("onnxruntime")
    enc = Encoder(EncoderConfig(norm=norm, share_weights=share, stem=stem), n_channels=6).eval()
    model = torch.nn.Sequential(InputScaler("physical", 6), enc).eval()
    f = io.BytesIO()
    torch.onnx.export(
        model, (torch.randn(2, 120, 6),), f, dynamo=False, opset_version=17,
        input_names=["x"], output_names=["h"],
        dynamic_axes={"x": {0: "batch", 1: "time"}, "h": {0: "batch", 1: "time"}},
    )
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    for shape in [(3, 120, 6), (1, 64, 6)]:
        x = torch.randn(*shape) * 5
        with torch.no_grad():
            ref = model(x).numpy()
        out = sess.run(None, {"x": x.numpy()})[0]
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_conv_stem_embeds_each_step_from_its_neighbours_only():
    enc = Encoder(EncoderConfig(**SMALL, stem="conv", stem_kernel=5), n_channels=6).eval()
    assert enc.input_proj.conv.weight.shape == (32, 6, 5)
    x = torch.randn(2, 60, 6)
    y = x.clone()
    y[:, 30] += 1.0  # one step changed
    changed = (enc.input_proj(y) - enc.input_proj(x)).abs().amax(dim=(0, 2)) > 0
    assert changed.nonzero().flatten().tolist() == [28, 29, 30, 31, 32]  # its 2 + 2 neighbours, no further
    assert enc(x).shape == (2, 60, 32) and enc(x[:, :7]).shape == (2, 7, 32)  # zero-padded: T kept
    linear = Encoder(EncoderConfig(**SMALL), n_channels=6)
    assert isinstance(linear.input_proj, torch.nn.Linear)  # the default is LIMU-BERT's per-step stem
    assert n_params(enc) - n_params(linear) == 4 * 6 * 32  # four more taps per channel and width
    for bad in (dict(stem="cnn"), dict(stem_kernel=4), dict(stem_kernel=0)):
        with pytest.raises(ValueError, match="stem"):
            EncoderConfig(**SMALL, **bad)


# -- InputScaler ----------------------------------------------------------------------------

def test_physical_scaling_keeps_gravity():
    x = torch.zeros(2, 5, 6)
    x[0, :, 2] = GRAVITY  # lying flat
    x[1, :, 0] = GRAVITY  # upright
    x[:, :, 3] = 0.5
    y = InputScaler("physical", 6)(x)
    assert y[0, 0, 2].item() == pytest.approx(1.0) and y[1, 0, 0].item() == pytest.approx(1.0)
    assert (y[..., 3] == 0.5).all()
    assert not torch.allclose(y[0], y[1])  # the two postures stay distinguishable
    assert InputScaler("physical", 3)(x[..., :3]).shape == (2, 5, 3)


def test_instance_scaling_erases_gravity():
    x = torch.randn(2, 50, 6)
    x2 = x.clone()
    x2[..., :3] += torch.tensor([0.0, 0.0, GRAVITY])  # same motion, gravity on another axis
    s = InputScaler("instance", 6)
    y = s(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(s(x2), y, atol=1e-4, rtol=0)


def _motion(b: int = 4, t: int = 60, amp: float = 1.0) -> torch.Tensor:
    """(b, t, 6) windows in g and rad/s: gravity on z plus a sway of amplitude `amp` x 0.3 g and
    0.8 rad/s (a different direction per window)."""
    g = torch.Generator().manual_seed(1)
    ph = torch.linspace(0, 6 * torch.pi, t)[None, :, None]
    x = torch.sin(ph + torch.rand(b, 1, 6, generator=g) * 6) * torch.rand(b, 1, 6, generator=g)
    x = amp * x * torch.tensor([0.3] * 3 + [0.8] * 3) / x.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-6) / 3 ** 0.5
    x[..., 2] += 1.0
    return x


def _rms(x: torch.Tensor) -> torch.Tensor:  # (B, T, 3) -> (B,)
    return (x - x.mean(1, keepdim=True)).pow(2).sum(-1).mean(1).sqrt()


def test_amplitude_compression_takes_the_power_of_the_motion_above_the_reference_and_keeps_gravity():
    from crosshar.models.scaling import AMPLITUDE_REF, compress_amplitude

    for amp in (1.0, 2.0, 4.0):
        x = _motion(amp=amp)
        r_acc, r_gyro = _rms(x[..., :3]), _rms(x[..., 3:])
        for power in (0.0, 0.5):
            y = compress_amplitude(x, power)
            torch.testing.assert_close(y.mean(1), x.mean(1), atol=1e-5, rtol=0)  # gravity and mean turn kept
            for r, got, r0 in ((r_acc, _rms(y[..., :3]), AMPLITUDE_REF[0]), (r_gyro, _rms(y[..., 3:]), AMPLITUDE_REF[1])):
                assert (r > r0).all()
                torch.testing.assert_close(got, r0 * (r / r0) ** power, atol=1e-5, rtol=1e-4)
            # the motion's shape and direction are kept: y's motion is x's times one factor per sensor
            d, e = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
            torch.testing.assert_close(e[..., :3], d[..., :3] * (_rms(y[..., :3]) / r_acc)[:, None, None])
    rest = _motion(amp=0.1)  # 0.03 g and 0.08 rad/s: below the reference, left alone
    torch.testing.assert_close(compress_amplitude(rest, 0.0), rest)


def test_amplitude_compression_commutes_with_rotations_and_mirrors():
    from crosshar.augment import random_rotation_matrices as random_rotation
    from crosshar.models.scaling import compress_amplitude

    x = _motion(amp=3.0)
    m = random_rotation(4, torch.Generator().manual_seed(0)) * torch.tensor([1.0, -1.0, 1.0])  # (4, 3, 3), det -1
    acc = torch.einsum("bij,btj->bti", m, x[..., :3])
    gyro = -torch.einsum("bij,btj->bti", m, x[..., 3:])  # an axial vector: det(M) M w
    turned = torch.cat([acc, gyro], -1)
    y = compress_amplitude(x, 0.5)
    want = torch.cat([torch.einsum("bij,btj->bti", m, y[..., :3]), -torch.einsum("bij,btj->bti", m, y[..., 3:])], -1)
    torch.testing.assert_close(compress_amplitude(turned, 0.5), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["amplitude_sqrt", "amplitude_equal"])
def test_amplitude_scaling_is_physical_then_compressed_and_exports_to_onnx(tmp_path, mode):
    ort = pytest.importorskip("onnxruntime")
    from crosshar.models.scaling import AMPLITUDE_POWER, compress_amplitude

    x = _motion(amp=3.0) * torch.tensor([GRAVITY] * 3 + [1.0] * 3)
    s = InputScaler(mode, 6, frame="gravity").eval()
    torch.testing.assert_close(s(x), compress_amplitude(InputScaler("physical", 6, frame="gravity")(x),
                                                        AMPLITUDE_POWER[mode]))
    assert EncoderConfig(input_scaling=mode).input_scaling == mode
    path = tmp_path / "s.onnx"
    torch.onnx.export(s, (x,), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
    y = ort.InferenceSession(str(path)).run(None, {"x": x[:2].numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(y), s(x[:2]), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("frame", ["gravity", "vertical"])
def test_source_stats_standardise_the_channels_of_their_frame(frame):
    """fit read the device frame's channels but forward standardised the frame's: in the gravity frame +z (gravity,
    ~9.8) came out at mean 1.3 on MotionSense, and the vertical frame's zero channels at a constant 0.84."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 40, 6, generator=g) * torch.tensor([1.0, 2, 3, 0.5, 0.5, 0.5])
    x[..., 0] += 9.8  # gravity along the device's x: the frame turns it onto +z
    y = InputScaler("source_stats", 6, frame=frame).fit(x)(x).reshape(-1, 6)
    torch.testing.assert_close(y.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    live = [0, 1, 2, 3, 4, 5] if frame == "gravity" else [0, 2, 3, 5]  # the vertical frame's 1 and 4 are zeros
    torch.testing.assert_close(y.std(0)[live], torch.ones(len(live)), atol=1e-3, rtol=0)


def test_a_channel_constant_over_the_source_is_centred_not_divided_by_eps():
    """A dead gyro axis in the source had std floored at eps = 1e-5: a target's rotation on it came out 1e5 times
    larger, finite and silent. Now the channel is centred only."""
    x = torch.randn(32, 40, 6, generator=torch.Generator().manual_seed(1))
    x[..., 4] = 0.0
    x[..., 5] = 3.0
    s = InputScaler("source_stats", 6).fit(x)
    assert s.std[4] == 1 and s.std[5] == 1 and s.mean[5] == 3
    target = x.clone()
    target[..., 4] = 0.5
    assert s(target)[..., 4].abs().max() == 0.5


def test_source_stats_fit_saved_and_required():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 20, 6, generator=g) * torch.tensor([1.0, 2, 3, 0.1, 0.2, 0.3]) + 5
    s = InputScaler("source_stats", 6)
    with pytest.raises(RuntimeError, match="fit"):
        s(x)
    y = s.fit(x)(x)
    torch.testing.assert_close(y.reshape(-1, 6).mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.reshape(-1, 6).std(0), torch.ones(6), atol=1e-4, rtol=0)
    state = s.state_dict()
    assert {"mean", "std", "scale", "fitted"} <= set(state)
    fresh = InputScaler("source_stats", 6)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), y)
    with pytest.raises(ValueError):
        s.fit(torch.randn(10, 20, 3))
    with pytest.raises(ValueError):
        InputScaler("zscore", 6)
