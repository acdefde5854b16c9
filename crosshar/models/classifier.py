"""The deployable model: input scaling -> (pretrained encoder) -> head, plus its checkpoint format.

A finetuned checkpoint carries everything `crosshar cross` and `crosshar export` need: the window
config, channel order, label space, scaling statistics, encoder and head configs and weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crosshar import checkpoint
from crosshar.errors import ConfigError, CrossharError
from crosshar.config import EncoderConfig, WindowConfig
from crosshar.models.encoder import Encoder
from crosshar.models.frame import heading_turns
from crosshar.models.heads import create_head, saved_options
from crosshar.models.heads.ensemble import HeadEnsemble, log_mean_probs
from crosshar.models.scaling import InputScaler
from crosshar.models.views import CadenceReplays, cadence_speeds

FORMAT = "crosshar-classifier/1"


class HARClassifier(nn.Module):
    """Raw windows in physical units to class logits.

    Args:
        scaler: InputScaler (physical / source statistics), saved with the model.
        encoder: a pretrained Encoder, or None to feed the head the scaled raw window (D = C).
        head: a registered head taking (B, T, D).
        skip: the head reads the encoder's embedding concatenated with the scaled window
            (D = embed_dim + C; `FinetuneConfig.head_input = "embedding+window"`); without an encoder,
            the scaled window beside the same window in skip_scaler's frame (D = 2C: two frames, one head).
        skip_scaler: with `skip`, an InputScaler putting the window the head reads beside the embedding
            in a frame of its own (`FinetuneConfig.skip_frame`); None: the encoder's scaled input.
        heading_views: K > 1 makes the prediction heading-invariant: in eval mode the class
            probabilities are averaged over the window turned about gravity by 0, 360/K, ... degrees
            (`FinetuneConfig.heading_views`); training reads one view.
        cadence: a CadenceReplays: in eval mode the class probabilities are also averaged over the window
            replayed at its K fixed speeds (`FinetuneConfig.cadence_views`, `crosshar cross/export
            --cadence-views`: test-time views the exported model carries); None or training: one view.
    """

    def __init__(self, scaler: nn.Module, encoder: nn.Module | None, head: nn.Module, skip: bool = False,
                 heading_views: int = 1, skip_scaler: nn.Module | None = None, cadence: CadenceReplays | None = None):
        super().__init__()
        self.scaler = scaler
        self.encoder = encoder
        self.head = head
        self.skip = skip and (encoder is not None or skip_scaler is not None)
        self.skip_scaler = skip_scaler if self.skip else None
        self.heading_views = heading_views
        self.cadence = cadence

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) physical units -> (B, T, D) head input."""
        z = self.scaler(x)
        h = z if self.encoder is None else self.encoder.forward_features(z)
        if not self.skip:
            return h
        return torch.cat([h, z if self.skip_scaler is None else self.skip_scaler(x)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> logits (B, K); with cadence replays or heading_views > 1 in eval mode, the log of the
        class probabilities averaged over every replay turned every way (their softmax is that average)."""
        if self.training:
            return self.head(self.features(x))
        b, views = x.shape[0], 1
        if self.cadence is not None and self.cadence.k > 1:
            x, views = self.cadence(x), self.cadence.k
        if self.heading_views > 1:
            x, views = heading_turns(x, self.heading_views), views * self.heading_views
        logits = self.head(self.features(x))
        return logits if views == 1 else log_mean_probs(logits.reshape(views, b, -1))


def build(meta: dict[str, Any]) -> HARClassifier:
    """An untrained HARClassifier with the architecture that `meta` describes."""
    w = WindowConfig.from_dict(meta["window"])
    C = w.n_channels
    scaler = InputScaler(meta["scaling"], C, frame=meta.get("frame", "device"), rate_hz=w.rate_hz)
    enc = None
    if meta.get("encoder") is not None:
        enc = Encoder(EncoderConfig.from_dict(meta["encoder"]), n_channels=C, max_len=w.window)
    skip = uses_skip(enc is not None, meta.get("head_input", "embedding"), meta.get("skip_frame"))
    head = make_head(meta["head"], head_dim(enc, C, skip), len(meta["classes"]), w.window,
                     saved_options(meta["head"], meta.get("head_cfg", {})), int(meta.get("ensemble", 1)))
    return HARClassifier(scaler, enc, head, skip=skip, heading_views=int(meta.get("heading_views", 1)),
                         skip_scaler=skip_scaler(meta["scaling"], C, meta.get("skip_frame"), w.rate_hz) if skip else None,
                         cadence=cadence_replays(w.window, int(meta.get("cadence_views", 1)), meta.get("cadence_span")))


def cadence_replays(window: int, k: int, span: float | None) -> CadenceReplays | None:
    """The fixed replays of K cadence views over [1 - span, 1 + span] (None for one view)."""
    if k < 1:
        raise ConfigError(f"cadence views must be >= 1, got {k}")
    if k == 1:
        return None
    if span is None or not 0 < span < 1:
        raise ConfigError(f"{k} cadence views need the cadence range they span, in (0, 1), got {span}")
    return CadenceReplays(window, cadence_speeds(k, float(span)))


def cadence_span(meta: dict[str, Any]) -> float:
    """The cadence range a model's views span: the one it was finetuned with (its meta's augmentation)."""
    aug = meta.get("augment")
    if not isinstance(aug, dict) or not 0 < float(aug.get("cadence", 0.0)) < 1:
        raise CrossharError("the model's finetuning augmentation records no cadence range (augment.cadence), so "
                            "it has no cadence views to draw; finetune it with a cadence change")
    return float(aug["cadence"])


def with_cadence_views(model: nn.Module, meta: dict[str, Any], k: int) -> dict[str, Any]:
    """Give a loaded model (or every model of an ensemble) K cadence views over its finetuning cadence range;
    returns the meta that says so (what `crosshar export` writes in the sidecar). The weights are untouched."""
    span = cadence_span(meta) if k > 1 else None
    window = WindowConfig.from_dict(meta["window"]).window
    for m in [m for m in model.modules() if isinstance(m, HARClassifier)]:  # (listed first: this adds modules)
        replays = cadence_replays(window, k, span)
        m.cadence = None if replays is None else replays.to(next(m.parameters(), torch.empty(0)).device)
    return meta | {"cadence_views": k, "cadence_span": span}


def uses_skip(has_encoder: bool, head_input: str, skip_frame: str | None) -> bool:
    """Whether the head reads a second input beside the first (`head_input = "embedding+window"`): the window
    beside the encoder's embedding, or, without an encoder, the window in `skip_frame` beside the window in the
    pipeline's own frame (nothing to add when that frame is the same one: skip_frame None or "encoder")."""
    return head_input == "embedding+window" and (has_encoder or skip_frame not in (None, "encoder"))


def skip_scaler(scaling: str, n_channels: int, frame: str | None, rate_hz: float) -> InputScaler | None:
    """The scaler of the window a skip connection puts beside the embedding when it has a frame of its own
    (`FinetuneConfig.skip_frame`; None or "encoder": the encoder's scaled input, no second scaler)."""
    if frame in (None, "encoder"):
        return None
    if scaling == "source_stats":
        raise ConfigError("skip_frame needs a scaling without fitted statistics (source_stats is fitted on the encoder's frame)")
    return InputScaler(scaling, n_channels, frame=frame, rate_hz=rate_hz)


def make_head(name: str, in_dim: int, n_classes: int, seq_len: int, head_cfg: dict[str, Any],
              ensemble: int = 1) -> nn.Module:
    """The registered head `name`, or with `ensemble` K > 1 a HeadEnsemble of K of them, drawn one after
    another from the current random state (FinetuneConfig.ensemble)."""
    heads = [create_head(name, in_dim, n_classes, seq_len=seq_len, **head_cfg) for _ in range(ensemble)]
    return heads[0] if ensemble == 1 else HeadEnsemble(heads)


def head_dim(encoder: Encoder | None, n_channels: int, skip: bool) -> int:
    """The width D of the head's input: the embedding's, or the window's channels without an encoder; plus
    the window's channels with `skip`."""
    return (n_channels if encoder is None else encoder.embed_dim) + (n_channels if skip else 0)


def save(path: str | Path, model: HARClassifier, meta: dict[str, Any]) -> None:
    checkpoint.save(path, {"format": FORMAT, "meta": meta, "state_dict": model.state_dict()})


def load(path: str | Path) -> tuple[HARClassifier, dict[str, Any]]:
    """(model in eval mode, meta) from a finetuned checkpoint file or run folder.

    A run folder whose finetuning did not finish (its run.json says so: interrupted, or still running) is a
    CrossharError: its best.pt is a model from before the end. Naming that best.pt loads it anyway."""
    _refuse_unfinished(Path(path))
    ck = checkpoint.load(path, FORMAT, keys=("meta", "state_dict"))
    with checkpoint.reading(path):
        for key, empty in (("source", True), ("classes", False)):  # read as lists of names by every command
            v = ck["meta"].get(key, []) if empty else ck["meta"][key]
            if not (isinstance(v, (list, tuple)) and (empty or v) and all(isinstance(x, str) and x for x in v)):
                raise TypeError(f"meta {key!r} must be a list of names, got {v!r}"[:200])
        model = build(ck["meta"])
        model.load_state_dict(ck["state_dict"])
    return model.eval(), ck["meta"]


def _refuse_unfinished(run: Path) -> None:
    """CrossharError when `run` is a finetuning run folder whose run.json says it has not finished."""
    try:
        info = json.loads((run / "run.json").read_text()) if run.is_dir() else None
    except (OSError, ValueError):
        return  # no run.json (a model folder copied without it) or an unreadable one: checkpoint.load decides
    if isinstance(info, dict) and info.get("kind") == "finetune" and info.get("finished") is False:
        raise CrossharError(f"{run}: its finetuning has not finished (interrupted, or still running), so its best.pt "
                            f"is a model from before the end; rerun it (with --force), or name {run / 'best.pt'} to "
                            "use that model anyway")


class ModelEnsemble(HeadEnsemble):
    """Several finetuned classifiers of one source, window and classes: their class probabilities averaged.

    A HeadEnsemble whose members are whole classifiers, each with its own input pipeline, encoder and head:
    forward(x: (B, T, C) physical windows) -> (B, K), the log of the models' mean probabilities (its softmax is
    that mean), so the ensemble scores, exports and runs as one classifier (`crosshar cross` and `crosshar
    export` with --run repeated).
    """

    @property
    def head(self) -> nn.Module:
        """The first model's head (its .fc gives the number of classes)."""
        return self.members[0].head


ENSEMBLE_KEYS = ("source", "window", "label_space", "classes")  # what models averaged must share


def load_runs(paths: list[str | Path]) -> tuple[nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """(model in eval mode, meta, each run's meta) for one finetuned run, or for several averaged
    (ModelEnsemble), whose meta is the first run's with `head` naming every head ("din+din") and
    `ensemble_runs` the runs. CrossharError, naming the run, when the runs differ in ENSEMBLE_KEYS."""
    loaded = [load(p) for p in paths]
    metas = [m for _, m in loaded]
    if len(loaded) == 1:
        return loaded[0][0], metas[0], metas
    for key in ENSEMBLE_KEYS:
        for m, p in zip(metas[1:], paths[1:]):
            if m.get(key) != metas[0].get(key):
                raise CrossharError(f"{p}: its {key} {m.get(key)} differs from {paths[0]}'s {metas[0].get(key)}; "
                                    "only models of the same source, window and classes can be averaged")
    meta = metas[0] | {"head": "+".join(m["head"] for m in metas), "ensemble_runs": [str(p) for p in paths]}
    return ModelEnsemble([m for m, _ in loaded]).eval(), meta, metas
