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
@pytest.mark.parametrize("norm, share", [("pre", False), ("post", True)])
def test_onnx_export_matches_torch(norm, share):
    ort = pytest.importorskip("onnxruntime")
    enc = Encoder(EncoderConfig(norm=norm, share_weights=share), n_channels=6).eval()
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
