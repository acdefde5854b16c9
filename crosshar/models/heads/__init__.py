"""Classification heads, one file per paper's model, all registered in `crosshar.registry.HEADS`.

Every head is built as `Head(in_dim, num_classes, seq_len=120, **cfg)` and maps
`x: (B, T, D) -> logits (B, num_classes)`, where D is the encoder's width (72) or the raw
channel count (6, or 3 for acc-only windows); `forward_features(x) -> (B, feature_dim)` gives the
penultimate features (for the center loss). Defaults of each head's options live in
`configs/heads/<name>.toml` and equal the constructor's defaults.

>>> import torch
>>> head = create_head("danhar", in_dim=72, num_classes=4)
>>> head(torch.zeros(2, 120, 72)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

from torch import nn

from crosshar.config import config_dir, head_config
from crosshar.errors import ConfigError
from crosshar.models.heads.cnn_lstm_attn import CNNLSTMAttention
from crosshar.models.heads.danhar import DanHAR
from crosshar.models.heads.din import DIN
from crosshar.models.heads.gru import GRUHead
from crosshar.models.heads.linear import LinearProbe
from crosshar.models.heads.mag_res2net import MAGRes2Net
from crosshar.models.heads.transformer import TransformerHead
from crosshar.registry import HEADS

_POSITIONAL = ("in_dim", "num_classes", "seq_len")

# what a head was built with before an option existed, where today's default differs: a finetuned checkpoint's
# head_cfg that lacks the key predates it (`saved_options`); a callable reads it off the options saved (the
# transformer's attention weights were dropped as much as the rest until attn_dropout became an option)
BEFORE: dict[str, dict[str, Any]] = {
    "transformer": {"token_kernel": 1, "attn_dropout": lambda saved: saved.get("dropout", 0.1)},
}


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return HEADS.names()


def head_options(name: str) -> dict[str, Any]:
    """A head's configurable options and their constructor defaults (lists as tuples)."""
    sig = inspect.signature(HEADS.get(name).__init__)
    return {
        k: p.default for k, p in sig.parameters.items()
        if k != "self" and k not in _POSITIONAL
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def resolved_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every option `create_head(name, **given)` builds the head with: its config file's, then `given`. What a
    checkpoint saves, so that a later change of a default cannot change the model it describes."""
    return head_config(name, default_config_path(name)) | dict(given)


def saved_options(name: str, saved: dict[str, Any]) -> dict[str, Any]:
    """The options a checkpoint's head was built with. Checkpoints list every option of their head (the config file's,
    which lists them all, or `resolved_options`), so an option a non-empty `saved` lacks was added after it was
    written, and the head then ran as `BEFORE` says; an empty `saved` (a model described, not trained: bench, tests)
    means today's defaults."""
    if not saved:
        return {}
    before = {k: v(saved) if callable(v) else v for k, v in BEFORE.get(name, {}).items()}
    return {**before, **saved}


def default_config_path(name: str) -> Path:
    """`configs/heads/<name>.toml`: the packaged copy, or the source tree's when not installed."""
    return config_dir() / "heads" / f"{name}.toml"


def _check_options(name: str, given: dict[str, Any], source: str) -> None:
    known = head_options(name)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s) {', '.join(unknown)} for head {name!r}; "
            f"known: {', '.join(known)}"
        )


def _check_values(name: str, given: dict[str, Any], source: str) -> None:
    """Each option's value has its default's kind: a flag true or false, a size a whole number (>= 1 where the
    default is, >= 0 otherwise; a tuple of sizes too), a rate a finite number >= 0 (a dropout below 1), a word
    text. A head built from a zero, negative or NaN size fails deep inside PyTorch (or divides by zero)."""
    known = head_options(name)

    def size_ok(v: Any, lo: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo

    for k, v in given.items():
        d, problem = known[k], None
        if isinstance(d, bool):
            problem = None if isinstance(v, bool) else "must be true or false"
        elif isinstance(d, int):
            lo = 1 if d >= 1 else 0
            problem = None if size_ok(v, lo) else f"must be a whole number >= {lo}"
        elif isinstance(d, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            problem = None if ok and not ("dropout" in k and v >= 1) else (
                "must be in [0, 1)" if "dropout" in k else "must be a finite number >= 0")
        elif isinstance(d, tuple):
            ok = isinstance(v, (list, tuple)) and all(size_ok(x, 1) for x in v)
            problem = None if ok else "must be a list of whole numbers >= 1"
        elif isinstance(d, str):
            problem = None if isinstance(v, str) else "must be text"
        if problem:
            raise ConfigError(f"{source}: {k} {problem} (head {name!r}), got {v!r}")


def create_head(name: str, in_dim: int, num_classes: int, seq_len: int = 120,
                config_path: str | Path | None = None, **overrides: Any) -> nn.Module:
    """Build a registered head with its TOML defaults, updated by `overrides`.

    Args:
        name: registered head name (see `list_heads()`).
        in_dim: input width D (72 for encoder embeddings, 6 or 3 for raw windows).
        num_classes: number of classes.
        seq_len: window length T the head will mostly see.
        config_path: a TOML file of options; default `configs/heads/<name>.toml`.
        **overrides: options that replace the file's.

    Raises:
        ConfigError: unknown head, unknown option (naming the head and the key), a missing
            `config_path`, or a value the head rejects.
    """
    HEADS.get(name)  # ConfigError for an unknown name
    if config_path is not None and not Path(config_path).is_file():
        raise ConfigError(f"head config file not found: {config_path}")
    path = Path(config_path) if config_path is not None else default_config_path(name)
    cfg = head_config(name, path)
    _check_options(name, cfg, str(path))
    _check_options(name, overrides, "overrides")
    _check_values(name, cfg, str(path))
    _check_values(name, overrides, "overrides")
    cfg.update(overrides)
    try:
        return HEADS.create(name, in_dim, num_classes, seq_len=seq_len, **cfg)
    except (TypeError, ValueError, ZeroDivisionError, RuntimeError) as e:  # a combination the head cannot build
        raise ConfigError(f"head {name!r}: {e}") from None


__all__ = [
    "CNNLSTMAttention", "DIN", "DanHAR", "GRUHead", "LinearProbe", "MAGRes2Net",
    "TransformerHead", "create_head", "default_config_path", "head_options", "list_heads", "resolved_options",
    "saved_options",
]
