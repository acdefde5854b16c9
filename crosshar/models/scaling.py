"""The input pipeline in front of the encoder: InputScaler (scaling + frame, kept as buffers so it is
saved and exported with the model) and InputPipeline, the one description of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from crosshar.config import INPUT_FRAMES as FRAMES, INPUT_SCALINGS as MODES
from crosshar.limits import GRAVITY
from crosshar.models.frame import coupled_align, gravity_align, heading_align, vertical_align, world_align, world_vertical_align

AMPLITUDE_POWER = {"amplitude_sqrt": 0.5, "amplitude_equal": 0.0}
AMPLITUDE_REF = (0.1, 0.3)  # acc (g), gyro (rad/s): motion below this rms is left as it is (rest, posture)


def compress_amplitude(x: Tensor, power: float, ref: tuple[float, float] = AMPLITUDE_REF) -> Tensor:
    """Compress each sensor's motion amplitude, keeping its direction, its shape in time and gravity.

    Per window and sensor (acc, gyro apart), the motion d = x - mean over time has the rms
    r = sqrt(mean_t |d|^2) (a vector norm: the same in every frame, mirror or rotation). Above the
    reference r0 (`ref`: acc in g, gyro in rad/s) d is scaled by (r / r0)^(power - 1), so r becomes
    r0 (r / r0)^power: power 1 changes nothing, 0.5 takes a square root of the amplitude (a thigh
    pocket's 2x the waist's becomes 1.4x), 0 gives every moving window the same amplitude. Below r0
    (rest: sitting, standing) nothing changes, so noise is never amplified.

    x: (B, T, C) with C = 3 (acc) or 6 (acc, gyro), in g and rad/s -> (B, T, C).
    """
    out = []
    for i in range(0, x.shape[-1], 3):
        s = x[..., i:i + 3]
        m = s.mean(dim=1, keepdim=True)
        d = s - m
        r = d.pow(2).sum(-1, keepdim=True).mean(dim=1, keepdim=True).sqrt()  # (B, 1, 1)
        r0 = ref[i // 3]
        out.append(m + d * (r.clamp_min(r0) / r0).pow(power - 1.0))
    return torch.cat(out, dim=-1)


class InputScaler(nn.Module):
    """Bring (B, T, C) physical-unit windows to the scale the encoder sees.

    Modes (EncoderConfig.input_scaling):
        "physical": acc / 9.80665 (in g), gyro unchanged (rad/s). The same fixed map for every
            dataset, and gravity survives, which is what tells sitting from standing (LIMU-BERT
            divides acc by 9.8 the same way).
        "source_stats": per-channel (x - mean) / std with mean and std set by `fit` on the source
            training windows and stored as buffers (saved in the state dict, exported to ONNX).
        "amplitude_sqrt", "amplitude_equal": "physical", then each window's motion amplitude
            compressed (compress_amplitude, power 0.5 or 0): a body position that moves more (a thigh
            pocket against a waist belt) looks less different; gravity and rest are kept.
        "instance": per-window, per-channel z-normalisation, as the published CrossHAR code
            does. Offered only for comparison: it removes the window mean, i.e. gravity and
            therefore posture (sitting vs standing), and the amplitude, which cancels the
            gain augmentation.

    Args:
        mode: one of "physical", "source_stats", "instance".
        n_channels: 3 (acc) or 6 (acc + gyro).
        eps: added to the variance in "instance" mode; in "source_stats" a channel whose std is at most eps
            (relative to its mean, at least 1) is constant over the source and only centred.
        frame: "device" (the sensor's own axes) or "gravity": each window is first rotated so its
            mean acceleration lies on +z (crosshar.models.frame), acc and gyro alike; or "heading":
            the gravity frame turned about +z so the main axis of horizontal motion is +x; or "world":
            every sample first expressed in the device frame of the window's middle sample (the gyro
            integrated), then the gravity frame: the device's turning within the window removed; or
            "vertical": the gravity frame, each sample's acc and gyro as (horizontal magnitude, 0, vertical);
            or "coupled": the vertical frame with the products of horizontal acc and rotation in its zero channels;
            or "world_vertical": the vertical frame taken in the world frame (the true vertical at every sample).
        rate_hz: the windows' sample rate (the world frame integrates the gyro).
    """

    def __init__(self, mode: str = "physical", n_channels: int = 6, eps: float = 1e-5, frame: str = "device",
                 rate_hz: float = 20.0):
        super().__init__()
        self.rate_hz = rate_hz
        if frame not in FRAMES:
            raise ValueError(f"input frame must be one of {', '.join(FRAMES)}, got {frame!r}")
        self.frame = frame
        if mode not in MODES:
            raise ValueError(f"input scaling must be one of {', '.join(MODES)}, got {mode!r}")
        if n_channels not in (3, 6):
            raise ValueError(f"n_channels must be 3 or 6, got {n_channels}")
        self.mode = mode
        self.n_channels = n_channels
        self.eps = eps
        scale = torch.ones(n_channels)
        scale[:3] = GRAVITY
        self.register_buffer("scale", scale)
        self.register_buffer("mean", torch.zeros(n_channels))
        self.register_buffer("std", torch.ones(n_channels))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, x: Tensor | np.ndarray) -> "InputScaler":
        """Set mean and std per channel from the source training windows, in the scaler's frame (the channels
        `forward` standardises: the gravity frame's +z holds gravity, the vertical frame has zero channels). A
        channel constant over the source (a dead sensor axis, the vertical frame's zeros) is centred only (std 1):
        dividing by its std floor would multiply a target's motion on that axis by 1 / eps.

        Args:
            x: (N, T, C) windows in physical units (source training part only: fitting on
               validation or target data would leak).

        Returns:
            self.
        """
        x = torch.as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.n_channels:
            raise ValueError(f"fit expects (N, T, {self.n_channels}), got {tuple(x.shape)}")
        if x.shape[0] * x.shape[1] < 2:
            raise ValueError("fit needs at least two samples")
        n = x.shape[0] * x.shape[1]
        s1 = torch.zeros(self.n_channels, dtype=torch.float64)
        s2 = torch.zeros(self.n_channels, dtype=torch.float64)
        for chunk in x.split(4096):  # float64 sums chunk by chunk: no full float64 copy
            if not torch.isfinite(chunk).all():
                raise ValueError("fit: windows contain NaN or infinite values")
            c = self.align(chunk.float()).reshape(-1, self.n_channels).to(torch.float64)
            s1 += c.sum(0)
            s2 += c.pow(2).sum(0)
        mean = s1 / n
        var = ((s2 - n * mean.pow(2)) / (n - 1)).clamp_min(0)
        self.mean.copy_(mean.to(self.mean.dtype))
        std = var.sqrt()
        self.std.copy_(torch.where(std > self.eps * mean.abs().clamp_min(1.0), std, 1.0).to(self.std.dtype))
        self.fitted.fill_(True)
        return self

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) physical units -> (B, T, C) scaled."""
        return self._scale(self.align(x))

    def align(self, x: Tensor) -> Tensor:
        """x: (B, T, C) physical units -> (B, T, C) in the scaler's frame, unscaled."""
        if self.frame == "gravity":
            x = gravity_align(x)
        elif self.frame == "heading":
            x = heading_align(x)
        elif self.frame == "world":
            x = world_align(x, self.rate_hz)
        elif self.frame == "vertical":
            x = vertical_align(x)
        elif self.frame == "coupled":
            x = coupled_align(x)
        elif self.frame == "world_vertical":
            x = world_vertical_align(x, self.rate_hz)
        return x

    def _scale(self, x: Tensor) -> Tensor:
        if self.mode == "physical":
            return x / self.scale
        if self.mode in AMPLITUDE_POWER:
            return compress_amplitude(x / self.scale, AMPLITUDE_POWER[self.mode])
        if self.mode == "source_stats":
            if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()) and not bool(self.fitted):
                raise RuntimeError("InputScaler('source_stats') used before fit() on source windows")
            return (x - self.mean) / self.std
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, n_channels={self.n_channels}"


@dataclass(frozen=True)
class InputPipeline:
    """What happens to a window before the encoder (or a head on raw windows): the one home of the
    input pipeline. Its defaults come from configs/encoder.toml (`input_scaling`, `input_frame`); a
    pretraining run fixes it for every model built on its encoder; a finetuned checkpoint records it
    in its meta ("scaling", "frame"), which export, bench and the runtime read back.

    Attributes:
        scaling: "physical", "source_stats" or "instance" (InputScaler's mode).
        frame: "device", "gravity", "heading", "world", "vertical", "coupled" or "world_vertical" (crosshar.models.frame).
    """

    scaling: str = "physical"
    frame: str = "gravity"

    @classmethod
    def default(cls) -> "InputPipeline":
        """The configured default (configs/encoder.toml), as a model trained now would use it."""
        from crosshar import config as C

        return cls.of_encoder(C.load("encoder"))

    @classmethod
    def of_encoder(cls, cfg) -> "InputPipeline":
        """The pipeline an EncoderConfig (or its dict) names."""
        d = cfg if isinstance(cfg, dict) else cfg.to_dict()
        return cls(d["input_scaling"], d.get("input_frame", "device"))

    @classmethod
    def of_meta(cls, meta: dict) -> "InputPipeline":
        """The pipeline a finetuned checkpoint's meta records (older ones: the device frame)."""
        return cls(meta["scaling"], meta.get("frame", "device"))

    def to_meta(self) -> dict[str, str]:
        return {"scaling": self.scaling, "frame": self.frame}

    def scaler(self, n_channels: int, rate_hz: float = 20.0) -> InputScaler:
        return InputScaler(self.scaling, n_channels, frame=self.frame, rate_hz=rate_hz)
