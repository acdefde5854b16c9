"""CrossHAR's hierarchical self-supervised pretraining model; it owns its losses (as MAE does)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crosshar.config import EncoderConfig, PretrainConfig, WindowConfig
from crosshar.losses import equal_channel_weights, masked_mse, nt_xent
from crosshar.models.attention import FeedForward
from crosshar.models.encoder import Encoder
from crosshar.models.frame import reverse_time
from crosshar.models.masking import apply_mask, span_mask
from crosshar.models.scaling import InputPipeline

FORMAT = "crosshar-pretrain/1"  # the checkpoint format of a pretraining run (best.pt, last.pt)
CHECKPOINT_KEYS = ("model", "job", "split")  # what loading the encoder reads


class SequenceAggregator(nn.Module):
    """(B, T, D) per-step embeddings -> (B, D) one vector per window, via a CLS token.

    TS-TCC's contextual contrasting module as CrossHAR uses it: a learned CLS token is prepended
    and one pre-norm transformer layer runs over [CLS, h_1..h_T]; the CLS output summarises the
    window. Only the CLS row of that layer is ever used, so only it is computed (the CLS query
    attends to all T + 1 tokens, then the feed-forward runs on it alone): the same function as
    the full layer at O(T) instead of O(T^2) cost. Kept at the encoder's width D (CrossHAR first
    projects 72 -> 100).

    Args:
        d_model: D.
        n_heads: attention heads.
        d_ff: feed-forward width.
        dropout: dropout on the two residual branches.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.trunc_normal_(self.cls, std=0.02, a=-0.04, b=0.04)
        self.norm1 = nn.LayerNorm(d_model)
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, h: Tensor) -> Tensor:
        """h: (B, T, D) -> (B, D)."""
        b, t, d = h.shape
        cls = self.cls.expand(b, -1, -1)
        tokens = self.norm1(torch.cat([cls, h], dim=1))  # (B, T + 1, D)
        q = self.q(tokens[:, :1]).reshape(b, 1, self.n_heads, -1).transpose(1, 2)  # (B, H, 1, dh)
        k, v = self.kv(tokens).reshape(b, t + 1, 2, self.n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, d)
        c = cls + self.drop(self.proj(a))
        c = c + self.drop(self.ff(self.norm2(c)))
        return self.norm(c[:, 0])


class CrossHARPretrainer(nn.Module):
    """Masked reconstruction (stage 1) then masked reconstruction + NT-Xent (stage 2).

    CrossHAR (Hong et al., IMWUT 2024) pretrains a LIMU-BERT encoder hierarchically: first
    masked reconstruction alone, then `w_mse * MSE + w_contrast * NT-Xent`, so that the encoder
    first learns local signal structure and then window-level features that do not change under
    the augmentations.

    Stage 1: each given view is span-masked, encoded and decoded; "mse" is the masked MSE
    (averaged over the views when two are given, as the CrossHAR code does).
    Stage 2: both views are masked and encoded in one batched pass; "mse" averages their
    reconstruction losses, and the sequence embeddings of the same *masked* views are contrasted
    (as in the CrossHAR code). Contrasting the masked encodings costs no extra encoder pass and
    asks the window summary to be robust to missing spans too.
    The reconstruction target is always the unmasked, scaled view.
    Arrow of time (cfg.arrow > 0, both stages): the caller plays a random half of the windows
    backwards (`reverse_time`, the same windows in both views) and passes which; a linear probe on
    the mean of the per-step embeddings must tell which, at weight cfg.arrow ("arrow": its binary
    cross-entropy). Up and down stairs differ in which way their steps run, a cue that survives the
    mirror; this asks the encoder to keep it where a head reads it.

    Args:
        encoder: an Encoder (its `embed_dim` and `cfg.n_heads`, `cfg.d_ff` size the branches).
        cfg: PretrainConfig (masking, temperature, stage 2 weights, proj_dim).
        n_channels: C, 3 or 6.

    Example:
        >>> out = model(v1, v2, stage=2, generator=g)  # doctest: +SKIP
        >>> out["loss"].backward()  # doctest: +SKIP
    """

    def __init__(
        self, encoder: Encoder, cfg: PretrainConfig | None = None, n_channels: int = 6,
    ):
        super().__init__()
        cfg = cfg if cfg is not None else PretrainConfig()
        d = encoder.embed_dim
        enc_cfg = getattr(encoder, "cfg", None)
        n_heads = enc_cfg.n_heads if enc_cfg is not None else 4
        d_ff = enc_cfg.d_ff if enc_cfg is not None else 2 * d
        dropout = enc_cfg.dropout if enc_cfg is not None else 0.1
        self.cfg = cfg
        self.n_channels = n_channels
        self.encoder = encoder
        # LIMU-BERT's decoder: Linear, GELU, LayerNorm, Linear to the channels
        self.decoder = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, n_channels))
        self.aggregator = SequenceAggregator(d, n_heads, d_ff, dropout)
        # SimCLR / TS-TCC projection head; BatchNorm sees both views together (see contrast)
        self.projector = nn.Sequential(
            nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(inplace=True), nn.Linear(d, cfg.proj_dim)
        )
        self.arrow = nn.Linear(d, 1) if cfg.arrow > 0 else None  # (B, D) mean embedding -> backwards? logit

    def mask(self, x: Tensor, g: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """x: (B, T, C) scaled -> (x_masked (B, T, C), mask (B, T) bool, True = predict here)."""
        g = g if g is not None else torch.default_generator
        c = self.cfg
        m = span_mask(x.shape[0], x.shape[1], c.mask_ratio, c.span_max, c.span_p, g).to(x.device)
        return apply_mask(x, m, c.mask_prob, g, per_window=c.mask_per_window), m

    def encode(self, x: Tensor) -> Tensor:
        """x: (B, T, C) scaled -> h: (B, T, D)."""
        return self.encoder.forward_features(x)

    def reconstruct(self, h: Tensor) -> Tensor:
        """h: (B, T, D) -> (B, T, C) reconstruction of the scaled input at every step."""
        return self.decoder(h)

    def project(self, h: Tensor) -> Tensor:
        """h: (B, T, D) -> z: (B, proj_dim), the window's contrastive projection."""
        return self.projector(self.aggregator(h))

    def contrast(self, h1: Tensor, h2: Tensor) -> Tensor:
        """NT-Xent between the projections of two views h1, h2: (B, T, D) -> scalar.

        Both views go through the aggregator and projector as one batch, so the projector's
        BatchNorm normalises them with shared statistics.
        """
        z = self.project(torch.cat([h1, h2], dim=0))
        z1, z2 = z.chunk(2, dim=0)
        return nt_xent(z1, z2, self.cfg.temperature)

    def forward(
        self, view1: Tensor, view2: Tensor | None = None, stage: int = 1,
        generator: torch.Generator | None = None, backwards: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Named losses of one batch.

        Args:
            view1: (B, T, C) first augmented view (already scaled: InputScaler runs before the pretrainer).
            view2: (B, T, C) second view of the same windows; required in stage 2.
            stage: 1 (masked reconstruction) or 2 (+ contrastive).
            generator: randomness of the masks (default: torch's global generator).
            backwards: (B,) bool, the windows played backwards (`reverse_time`; in both views); with
                cfg.arrow > 0 it adds the arrow-of-time loss (ignored when cfg.arrow is 0).

        Returns:
            {"mse", "loss"} in stage 1; {"mse", "contrast", "loss"} in stage 2, where
            loss = w_mse * mse + w_contrast * contrast; with the arrow of time also "arrow", and
            loss += arrow * that.
        """
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        if stage == 2 and view2 is None:
            raise ValueError("stage 2 needs two views (view2 is None)")
        if view2 is not None and view2.shape != view1.shape:
            raise ValueError(f"views differ in shape: {tuple(view1.shape)} vs {tuple(view2.shape)}")
        x = view1 if view2 is None else torch.cat([view1, view2], dim=0)
        x_masked, m = self.mask(x, generator)
        h = self.encode(x_masked)
        weight = equal_channel_weights(x) if self.cfg.mse_channels == "equal" else None
        mse = masked_mse(self.reconstruct(h), x, m, weight)
        if stage == 1:
            out = {"mse": mse, "loss": mse}
        else:
            h1, h2 = h.chunk(2, dim=0)
            con = self.contrast(h1, h2)
            out = {"mse": mse, "contrast": con, "loss": self.cfg.w_mse * mse + self.cfg.w_contrast * con}
        if self.arrow is not None and backwards is not None:
            target = backwards.to(h.device, h.dtype).repeat(len(x) // len(view1))  # (B) or (2B): both views
            out["arrow"] = F.binary_cross_entropy_with_logits(self.arrow(h.mean(dim=1)).squeeze(-1), target)
            out["loss"] = out["loss"] + self.cfg.arrow * out["arrow"]
        return out


class PretrainingModel(nn.Module):
    """Input pipeline + encoder + CrossHAR pretrainer: what pretraining trains and its checkpoint
    holds (state-dict keys scaler.*, encoder.*, pretrainer.*), one module so that DDP syncs it all.

    Args:
        window: the windows' config (channels C, length T).
        encoder: EncoderConfig (its input_scaling and input_frame give the InputPipeline).
        pretrain: PretrainConfig.
    """

    def __init__(self, window: WindowConfig, encoder: EncoderConfig, pretrain: PretrainConfig):
        super().__init__()
        C = window.n_channels
        self.scaler = InputPipeline.of_encoder(encoder).scaler(C, window.rate_hz)
        self.encoder = Encoder(encoder, n_channels=C, max_len=window.window)
        self.pretrainer = CrossHARPretrainer(self.encoder, pretrain, C)

    def forward(self, v1: Tensor, v2: Tensor | None, stage: int, g: torch.Generator) -> dict:
        """v1, v2: (B, T, C) physical views (v2 None in stage 1) -> the pretrainer's named losses.

        With the arrow of time on, a coin per window (p = 0.5, from `g`) plays it backwards in both
        views, in physical units, before the input pipeline (whose gravity frame and scaling do not
        depend on the direction of time)."""
        rev = None
        if self.pretrainer.arrow is not None:
            rev = (torch.rand(len(v1), generator=g, device=g.device) < 0.5).to(v1.device)
            v1 = torch.where(rev[:, None, None], reverse_time(v1), v1)
            v2 = None if v2 is None else torch.where(rev[:, None, None], reverse_time(v2), v2)
        return self.pretrainer(self.scaler(v1), None if v2 is None else self.scaler(v2), stage=stage, generator=g,
                               backwards=rev)
