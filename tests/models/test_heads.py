"""Every registered head: shapes, finiteness, a training step, ONNX parity, config handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crosshar.config import head_config
from crosshar.errors import ConfigError
from crosshar.models.heads import (
    DanHAR, MAGRes2Net, create_head, default_config_path, head_options, list_heads,
)

HEADS = list_heads()
IN_DIMS = [72, 6]  # encoder embeddings, raw acc+gyro windows
N_CLASSES = 4



def make(name: str, in_dim: int, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_head(name, in_dim, N_CLASSES, **overrides)


def test_the_papers_heads_are_registered():
    assert {"din", "danhar", "mag_res2net", "cnn_lstm_attn", "transformer", "gru",
            "linear"} <= set(HEADS)


@pytest.mark.parametrize("in_dim", IN_DIMS)
@pytest.mark.parametrize("name", HEADS)
def test_logits_and_features(name, in_dim):
    head = make(name, in_dim).eval()
    x = torch.randn(3, 120, in_dim)
    with torch.no_grad():
        logits, feats = head(x), head.forward_features(x)
    assert logits.shape == (3, N_CLASSES)
    assert feats.shape == (3, head.feature_dim)
    assert torch.isfinite(logits).all() and torch.isfinite(feats).all()
    # windows are classified independently: one window alone gives the same logits
    with torch.no_grad():
        alone = head(x[1:2])
    torch.testing.assert_close(alone, logits[1:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("t, in_dim", [(128, 6), (128, 72), (100, 3)])
@pytest.mark.parametrize("name", HEADS)
def test_other_window_lengths_and_acc_only(name, t, in_dim):
    head = make(name, in_dim, seq_len=120).eval()
    with torch.no_grad():
        logits = head(torch.randn(2, t, in_dim))
    assert logits.shape == (2, N_CLASSES) and torch.isfinite(logits).all()


@pytest.mark.parametrize("in_dim", IN_DIMS)
@pytest.mark.parametrize("name", HEADS)
def test_training_steps_lower_the_loss(name, in_dim):
    head = make(name, in_dim).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 120, in_dim, generator=gen)
    y = torch.arange(8) % N_CLASSES
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(2)  # the same dropout masks at every evaluation
        return F.cross_entropy(head(x), y)

    before = loss()
    before.backward()
    unused = [n for n, p in head.named_parameters() if p.grad is None]
    assert not unused, f"parameters without a gradient: {unused}"
    for _ in range(3):
        opt.step()
        opt.zero_grad()
        loss().backward()
    after = loss().item()
    assert np.isfinite(after) and after < before.item()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("in_dim", IN_DIMS)
@pytest.mark.parametrize("name", HEADS)
def test_onnx_export_matches_torch(name, in_dim, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    head = make(name, in_dim).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        head, torch.randn(2, 120, in_dim), str(path), dynamo=False, opset_version=17,
        input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch.randn(batch, 120, in_dim)
        with torch.no_grad():
            want = head(x).numpy()
        got = sess.run(["logits"], {"x": x.numpy()})[0]
        assert got.shape == (batch, N_CLASSES)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", HEADS)
def test_config_file_lists_every_option_with_the_constructor_default(name):
    path = default_config_path(name)
    assert path.is_file(), f"missing {path}"
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in head_config(name, path).items()}
    defaults = head_options(name)
    assert set(cfg) == set(defaults)
    for key, value in cfg.items():
        assert value == defaults[key], f"{path}: {key} = {value!r}, constructor says {defaults[key]!r}"


@pytest.mark.parametrize("name", HEADS)
def test_unknown_option_is_a_config_error_naming_head_and_key(name):
    with pytest.raises(ConfigError, match=rf"bogus_key.*{name}"):
        create_head(name, 6, N_CLASSES, bogus_key=1)


@pytest.mark.parametrize("name", HEADS)
def test_wrong_input_width_is_a_clear_error(name):
    head = make(name, 72).eval()
    with pytest.raises(ValueError, match=r"\(B, T, 72\)"):
        head(torch.zeros(2, 120, 6))


def test_unknown_key_in_a_config_file(tmp_path):
    path = tmp_path / "danhar.toml"
    path.write_text("channels = [8, 8]\nwidth = 3\n")
    with pytest.raises(ConfigError, match=r"danhar\.toml.*width.*'danhar'"):
        create_head("danhar", 6, N_CLASSES, config_path=path)


def test_config_file_and_overrides_are_applied(tmp_path):
    path = tmp_path / "danhar.toml"
    path.write_text("channels = [8, 12]\nkernel_size = 3\n")
    head = create_head("danhar", 6, N_CLASSES, config_path=path)
    assert len(head.blocks) == 2 and head.feature_dim == 12
    head = create_head("danhar", 6, N_CLASSES, config_path=path, channels=[16])
    assert len(head.blocks) == 1 and head.feature_dim == 16


def test_bad_values_and_names_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown head 'nope'"):
        create_head("nope", 6, N_CLASSES)
    with pytest.raises(ConfigError, match="not found"):
        create_head("danhar", 6, N_CLASSES, config_path=tmp_path / "missing.toml")


@pytest.mark.parametrize("t", [120, 128])
def test_danhar_attention_maps(t):
    head = make("danhar", 6).eval()
    maps = head.attention_maps(torch.randn(2, t, 6))
    assert [m.shape for m in maps["channel"]] == [(2, 64), (2, 96), (2, 128)]
    assert [m.shape for m in maps["temporal"]] == [(2, -(-t // 2)), (2, -(-t // 4)), (2, -(-t // 8))]
    for m in maps["channel"] + maps["temporal"]:
        assert ((m >= 0) & (m <= 1)).all()
        assert m.std() > 0  # inputs and positions get different weights


def test_danhar_temporal_attention_rescales_the_features():
    """Closing the temporal gate (weights ~ 0) leaves only the shortcut in every block."""
    head = DanHAR(6, N_CLASSES).eval()
    for block in head.blocks:
        torch.nn.init.constant_(block.temporal.conv.bias, -1e4)
    x = torch.randn(2, 120, 6)
    h = x.transpose(1, 2)
    with torch.no_grad():
        for block in head.blocks:
            h = torch.relu(block.shortcut(h))
        torch.testing.assert_close(head.forward_features(x), h.mean(dim=2))


def test_mag_res2net_depth_follows_layers():
    light = MAGRes2Net(6, N_CLASSES)
    deep = MAGRes2Net(6, N_CLASSES, layers=[3, 4, 6, 3])  # the paper's UCI-HAR network
    assert len(light.blocks) == 4 and len(deep.blocks) == 16
    assert deep.feature_dim == light.feature_dim == 256
    with torch.no_grad():
        assert deep.eval()(torch.randn(2, 120, 6)).shape == (2, N_CLASSES)


def test_transformer_with_the_papers_feed_forward_has_crosshar_size():
    # CrossHAR's classifier (d_ff 2048) has about 460 k parameters
    n = sum(p.numel() for p in make("transformer", 72, d_ff=2048, token_kernel=1).parameters())
    assert 440_000 < n < 480_000


@pytest.mark.parametrize("k", [1, 5])
def test_transformer_tokens_are_projected_from_k_neighbouring_time_steps(k):
    """token_kernel = k: token t is projected from time steps t - k//2 .. t + k//2 (1: CrossHAR's Linear per step)."""
    head = make("transformer", 6, token_kernel=k).eval()
    assert isinstance(head.proj, torch.nn.Linear if k == 1 else torch.nn.Conv1d)
    x = torch.randn(2, 120, 6)
    y = x.clone()
    y[:, 60] += 1.0  # one time step changed
    with torch.no_grad():
        e = lambda v: head.proj(v) if k == 1 else head.proj(v.transpose(1, 2)).transpose(1, 2)
        changed = (e(y) - e(x)).abs().amax(dim=(0, 2)) > 1e-6
        assert head(x).shape == (2, N_CLASSES)
    assert changed.nonzero().flatten().tolist() == list(range(60 - k // 2, 60 + k // 2 + 1))


def test_transformer_attention_dropout_is_its_own_option():
    """attn_dropout drops the attention weights alone (none by default, as the config file says; CrossHAR's 0.1 in the
    paper preset); dropout the rest."""
    from crosshar.config import config_dir, head_config

    assert make("transformer", 6).blocks[0].attn.dropout == 0.0 == head_config("transformer")["attn_dropout"]
    paper = head_config("transformer", config_dir() / "heads" / "transformer.paper.toml")
    assert make("transformer", 6, **paper).blocks[0].attn.dropout == 0.1
    x = torch.randn(4, 120, 6)
    for attn, same in ((0.0, True), (0.5, False)):
        head = make("transformer", 6, dropout=0.0, attn_dropout=attn).train()
        assert head.blocks[0].attn.dropout == attn and head.blocks[0].drop.p == 0.0
        assert torch.equal(head(x), head(x)) is same  # in training, only a dropped attention weight varies a pass


def test_an_even_token_kernel_is_one_config_error():
    with pytest.raises(ConfigError, match="token_kernel must be odd"):
        make("transformer", 72, token_kernel=4)


@pytest.mark.parametrize("T, chunk, starts", [(120, 20, [0, 20, 40, 60, 80, 100]), (130, 20, [0, 20, 40, 60, 80, 100, 110]),
                                              (15, 20, [0]), (120, 0, [0])])
def test_gru_sub_windows_cover_every_step(T, chunk, starts):
    assert make("gru", 6, chunk=chunk).chunk_starts(T) == starts


def test_gru_averages_its_sub_windows_last_step_features():
    """chunk = c: the GRUs run over each c-step sub-window alone (LIMU-BERT's 20-step samples); the window's features
    are the mean of their last-step features. chunk = 0 is one recurrence over the whole window."""
    torch.manual_seed(0)
    head = make("gru", 6, chunk=20).eval()
    x = torch.randn(2, 120, 6)
    with torch.no_grad():
        whole = make("gru", 6, chunk=0).eval()
        whole.load_state_dict(head.state_dict())
        parts = torch.stack([whole.forward_features(x[:, s:s + 20]) for s in range(0, 120, 20)]).mean(0)
        assert torch.allclose(head.forward_features(x), parts, atol=1e-6)
        assert not torch.allclose(whole.forward_features(x), parts, atol=1e-3)
        y = x.clone()
        y[:, :20] = torch.randn(2, 20, 6)  # another first sub-window: only its share of the mean changes
        d = head.forward_features(y) - head.forward_features(x)
        assert torch.allclose(d, (whole.forward_features(y[:, :20]) - whole.forward_features(x[:, :20])) / 6, atol=1e-6)
        assert head(x).shape == (2, N_CLASSES)


def test_a_negative_gru_chunk_is_one_config_error():
    with pytest.raises(ConfigError, match="chunk must be a whole number >= 0"):
        make("gru", 72, chunk=-1)


def test_a_head_ensemble_averages_its_members_probabilities():
    from crosshar.models.heads.ensemble import HeadEnsemble

    torch.manual_seed(0)
    ens = HeadEnsemble([create_head("din", 8, 4, seq_len=20) for _ in range(3)]).eval()
    x = torch.randn(5, 20, 8)
    lg = ens.member_logits(x)
    assert lg.shape == (3, 5, 4) and ens.fc.out_features == 4
    torch.testing.assert_close(torch.softmax(ens(x), -1), torch.softmax(lg, -1).mean(0))
    assert (lg[0] - lg[1]).abs().max() > 1e-3  # members drawn one after another: different weights
    with pytest.raises(ValueError, match="at least 2"):
        HeadEnsemble([create_head("din", 8, 4)])


@pytest.mark.parametrize("head, line, message", [
    ("din", "dim = 0", r"dim must be a whole number >= 1 \(head 'din'\), got 0"),
    ("din", "n_heads = -2", "n_heads must be a whole number >= 1"),
    ("din", "dropout = 1.0", r"dropout must be in \[0, 1\)"),
    ("din", "dropout = nan", r"dropout must be in \[0, 1\)"),
    ("transformer", "d_model = 2.5", "d_model must be a whole number >= 1"),
    ("gru", "hidden = [20, 0]", "hidden must be a list of whole numbers >= 1"),
    ("cnn_lstm_attn", 'conv_branch = "yes"', "conv_branch must be true or false"),
    ("danhar", "pool = 3", "pool must be text"),
])
def test_a_head_option_out_of_range_is_one_config_error(tmp_path, head, line, message):
    """A head config with a zero, negative, fractional or NaN size failed inside PyTorch (a ZeroDivisionError or a
    RuntimeError traceback); now a ConfigError naming the file and the key."""
    toml = tmp_path / f"{head}.toml"
    toml.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message) as e:
        create_head(head, 72, 4, config_path=toml)
    assert str(e.value).startswith(str(toml))


def test_mixstyle_mixes_each_sequences_statistics_over_time_and_is_the_identity_in_evaluation():
    from crosshar.models.heads.common import MixStyle

    torch.manual_seed(0)
    x = torch.randn(6, 40, 5) * torch.rand(6, 1, 5) * 3 + torch.randn(6, 1, 5) * 2
    off, on = MixStyle(0.0), MixStyle(1.0, alpha=0.1)
    assert torch.equal(off.train()(x), x) and torch.equal(on.eval()(x), x)  # off, or evaluating: untouched
    on.train()
    torch.manual_seed(3)
    y = on(x)
    torch.manual_seed(3)  # the same draws, in the same order
    float(torch.rand(()))
    lam = torch.distributions.Beta(0.1, 0.1).sample((6, 1, 1))
    perm = torch.randperm(6)
    assert not torch.equal(perm, torch.arange(6)) and bool(((lam > 0.01) & (lam < 0.99)).any())
    mu, sig = x.mean(1, keepdim=True), (x.var(1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(y.mean(1, keepdim=True), lam * mu + (1 - lam) * mu[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((y.var(1, keepdim=True) + 1e-6).sqrt(), lam * sig + (1 - lam) * sig[perm],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close((y - y.mean(1, keepdim=True)) / y.std(1, keepdim=True),
                               (x - mu) / x.std(1, keepdim=True), atol=1e-4, rtol=1e-4)  # the content kept
    with pytest.raises(ValueError, match="mixstyle"):
        MixStyle(1.5)


def test_din_mixstyle_option_changes_training_only():
    from crosshar.models.heads import create_head

    torch.manual_seed(0)
    plain = create_head("din", 6, 3)
    torch.manual_seed(0)
    mixed = create_head("din", 6, 3, mixstyle=1.0)
    assert plain.state_dict().keys() == mixed.state_dict().keys()  # no weights: checkpoints load either way
    x = torch.randn(4, 120, 6)
    plain.eval(), mixed.eval()
    torch.testing.assert_close(plain(x), mixed(x))
    plain.train(), mixed.train()
    torch.manual_seed(1)
    a = plain(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, mixed(x))
