"""Model cost: parameters, multiply-accumulates per window (thop) and CPU latency per window.

Run `python -m crosshar.tools.complexity` for a table of every registered head on encoder embeddings
(D = 72) and on raw windows (D = 6).
"""

from __future__ import annotations

import copy
import importlib
import statistics
import time
import warnings
from typing import Any, Sequence

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _window_input(in_shape: Sequence[int], batch: int = 1) -> tuple[torch.Tensor, int]:
    """A random input for `in_shape` = (T, D) or (B, T, D); returns it and its batch size."""
    shape = tuple(int(s) for s in in_shape)
    if len(shape) == 2:
        return torch.randn(batch, *shape), batch
    if len(shape) == 3:
        return torch.randn(*shape), shape[0]
    raise ValueError(f"in_shape must be (T, D) or (B, T, D), got {shape}")


def _thop():
    """The `thop.profile` module, imported without its distutils deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("thop.profile")


def _attention_rules() -> dict[type, Any]:
    """thop rules for the heads' attention modules, whose matrix products thop cannot see, and for
    subclasses of layers thop knows (it matches exact types)."""
    from crosshar.models.heads.common import DotProductSelfAttention, MultiHeadAttention
    from crosshar.models.heads.danhar import SameConv1d

    def mha(m: MultiHeadAttention, inputs: tuple, y: torch.Tensor) -> None:
        q = inputs[0]
        kv = inputs[1] if len(inputs) > 1 and inputs[1] is not None else q
        b, tq, d = q.shape
        tk = kv.shape[1]
        proj = (2 * tq + 2 * tk) * d * d  # q and out on the queries; k and v on the keys
        products = 2 * tq * tk * d  # q k^T and att v, summed over heads
        m.total_ops += torch.DoubleTensor([b * (proj + products)])

    def dot(m: DotProductSelfAttention, inputs: tuple, y: torch.Tensor) -> None:
        b, t, d = inputs[0].shape
        m.total_ops += torch.DoubleTensor([2 * b * t * t * d])

    return {MultiHeadAttention: mha, DotProductSelfAttention: dot, SameConv1d: _thop().register_hooks[nn.Conv1d]}


def uncounted_modules(model: nn.Module) -> list[str]:
    """Leaf modules holding parameters that thop has no rule for (their cost would read as 0)."""
    register_hooks = _thop().register_hooks
    # thop recurses into containers even though they have a (zero) rule
    rules = (set(register_hooks) - {nn.Sequential, nn.ModuleList}) | set(_attention_rules())
    covered: set[int] = set()
    for m in model.modules():
        if type(m) in rules:
            covered.update(id(c) for c in m.modules())
    return sorted({
        type(m).__name__ for m in model.modules()
        if id(m) not in covered and not list(m.children())
        and any(True for _ in m.parameters(recurse=False))
    })


class _Wrapper(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)


def macs_per_window(model: nn.Module, in_shape: Sequence[int]) -> int:
    """Multiply-accumulates for one window, counted by thop at batch 1 in eval mode.

    thop counts convolutions, linear layers, normalisation, LSTM / GRU cells and pooling;
    the attention modules of `crosshar.models.heads.common` are counted by our own rules
    (projections plus the two matrix products). Not counted, by thop's convention: activations,
    sigmoid / tanh gates, element-wise products and sums, and reductions written as tensor
    methods (`mean`, `amax`) — all linear in the feature-map size and small next to the
    convolutions. A warning names any parametrised module thop has no rule for.

    Args:
        model: the module; a deep copy is profiled, so `model` is left untouched.
        in_shape: (T, D) for one window, or (B, T, D) (the count is divided by B).
    """
    profile = _thop().profile
    missing = uncounted_modules(model)
    if missing:
        warnings.warn(f"thop cannot count {', '.join(missing)}; their MACs read as 0", stacklevel=2)
    x, b = _window_input(in_shape)
    # thop adds the root module's own count to its children's, so a root with a rule (a bare
    # attention module) would be counted twice: profile it inside a wrapper.
    macs, _ = profile(_Wrapper(copy.deepcopy(model)), inputs=(x,),
                      custom_ops=_attention_rules(), verbose=False)
    return int(round(macs / b))


def latency_ms(model: nn.Module, in_shape: Sequence[int], batch: int = 1, threads: int = 1,
               repeats: int = 50, warmup: int = 5) -> float:
    """Median CPU wall time per window in milliseconds, in eval mode without autograd.

    Args:
        model: the module (its training mode is restored afterwards).
        in_shape: (T, D) of one window.
        batch: windows per forward call; the time is divided by it.
        threads: torch intra-op threads during the measurement (restored afterwards).
        repeats: timed forward calls (the median is reported).
        warmup: untimed calls first.
    """
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 2:
        raise ValueError(f"in_shape must be (T, D), got {shape}")
    x, _ = _window_input(shape, batch)
    was_training, prev_threads = model.training, torch.get_num_threads()
    torch.set_num_threads(threads)
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(max(repeats, 1)):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev_threads)
        model.train(was_training)
    return 1000.0 * statistics.median(times) / batch


def head_complexity(name: str, in_dim: int, num_classes: int = 4, seq_len: int = 120,
                    repeats: int = 50, **overrides: Any) -> dict[str, Any]:
    """Parameters, MACs per window and latency per window (batch 1, 1 thread) of a head."""
    from crosshar.models.heads import create_head

    torch.manual_seed(0)
    head = create_head(name, in_dim, num_classes, seq_len=seq_len, **overrides)
    return {
        "head": name, "in_dim": in_dim, "params": count_params(head),
        "macs": macs_per_window(head, (seq_len, in_dim)),
        "latency_ms": latency_ms(head, (seq_len, in_dim), repeats=repeats),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `head_complexity` rows."""
    lines = [f"{'head':<14} {'in_dim':>6} {'params':>9} {'MACs/window':>12} {'ms/window':>10}"]
    for r in rows:
        lines.append(f"{r['head']:<14} {r['in_dim']:>6} {r['params']:>9,} {r['macs']:>12,} "
                     f"{r['latency_ms']:>10.3f}")
    return "\n".join(lines)


def main() -> None:
    from crosshar.models.heads import list_heads

    rows = [head_complexity(n, d) for n in list_heads() for d in (72, 6)]
    print(format_table(rows))


if __name__ == "__main__":
    main()
