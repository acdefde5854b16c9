"""The one attention and transformer block (crosshar.models.attention): self- and cross-attention
equal the written-out arithmetic, and checkpoints in the heads' former layout still load."""

from __future__ import annotations

import pytest
import torch

from crosshar.models.attention import FeedForward, MultiHeadAttention, TransformerBlock


def _written_out(p: dict, q: torch.Tensor, kv: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(QK^T / sqrt(d_h)) V with separate q, k, v, out projections (the heads' former code)."""
    b, t, d = q.shape

    def split(x):
        return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    Q, K, V = (split(x @ p[f"{n}.weight"].T + p[f"{n}.bias"]) for n, x in (("q", q), ("k", kv), ("v", kv)))
    att = (Q @ K.transpose(-2, -1)) / (d // heads) ** 0.5
    y = (att.softmax(-1) @ V).transpose(1, 2).reshape(b, t, d)
    return y @ p["out.weight"].T + p["out.bias"]


def test_former_head_layout_loads_and_gives_the_same_attention():
    torch.manual_seed(0)
    d = 8
    old = {f"{n}.{s}": torch.randn(d, d) if s == "weight" else torch.randn(d) for n in "q k v out".split()
           for s in ("weight", "bias")}
    x, kv = torch.randn(2, 5, d), torch.randn(2, 7, d)
    cross = MultiHeadAttention(d, 2, cross=True).eval()
    cross.load_state_dict(dict(old))
    torch.testing.assert_close(cross(x, kv), _written_out(old, x, kv, 2), atol=1e-5, rtol=0)
    self_attn = MultiHeadAttention(d, 2).eval()
    self_attn.load_state_dict(dict(old))
    torch.testing.assert_close(self_attn(x), _written_out(old, x, x, 2), atol=1e-5, rtol=0)


def test_layout_and_call_must_agree():
    x = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="cross-attention needs kv"):
        MultiHeadAttention(8, 2, cross=True)(x)
    with pytest.raises(ValueError, match="cross-attention needs kv"):
        MultiHeadAttention(8, 2)(x, x)


def test_exported_din_reads_every_weight_from_an_initializer():
    """No parameter is sliced at run time (a Slice of a weight is neither constant-folded by the
    exporter nor quantised), and the attention scale is a constant, not shape arithmetic."""
    import onnx

    from crosshar.config import EncoderConfig, WindowConfig
    from crosshar.export.graph import onnx_bytes
    from crosshar.models.classifier import build
    from crosshar.tools.bench import bench_meta

    w = WindowConfig()
    graph = onnx.load_from_string(onnx_bytes(build(bench_meta("din", EncoderConfig())).eval(), w.window,
                                             w.n_channels)).graph
    params = {i.name for i in graph.initializer if len(i.dims) == 2}  # the weight matrices
    sliced = [n.name for n in graph.node if n.op_type in ("Slice", "Split", "Gather") and n.input[0] in params]
    assert not sliced
    assert not [n.name for n in graph.node if n.op_type == "Sqrt"]


def test_former_sequential_feed_forward_loads():
    seq = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 8)).eval()
    ff = FeedForward(8, 16, activation="relu", dropout=0.1).eval()
    ff.load_state_dict(seq.state_dict())
    x = torch.randn(3, 8)
    torch.testing.assert_close(ff(x), seq(x))


def test_block_norms_and_activation_are_options():
    x = torch.randn(2, 6, 16)
    for norm in ("pre", "post"):
        for act in ("gelu", "relu"):
            blk = TransformerBlock(16, 4, 32, dropout=0.0, norm=norm, activation=act).eval()
            assert blk(x).shape == x.shape
    names = set(TransformerBlock(16, 4, 32).state_dict())
    assert {"attn.qkv.weight", "attn.proj.weight", "ff.fc1.weight", "ff.fc2.weight"} <= names


@pytest.mark.parametrize("cross", [False, True])
def test_separate_init_draws_the_weights_the_former_head_layout_drew(cross):
    """A seed gives the heads the weights it gave before the layouts were unified (q, k, v, out as
    separate linears, drawn in that order), so earlier results reproduce."""
    d = 12
    torch.manual_seed(3)
    old = {f"{n}.{s}": p.detach().clone() for n in ("q", "k", "v", "out")
           for s, p in torch.nn.Linear(d, d).named_parameters()}
    torch.manual_seed(3)
    new = MultiHeadAttention(d, 3, cross=cross, separate_init=True)
    mapped = MultiHeadAttention(d, 3, cross=cross)
    mapped.load_state_dict(old)
    for name, p in mapped.state_dict().items():
        torch.testing.assert_close(new.state_dict()[name], p, rtol=0, atol=0)
