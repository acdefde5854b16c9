"""MAG-Res2Net: gated Res2Net bottleneck blocks with ECA channel attention, for 1-D series."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from crosshar.models.heads.common import as_tuple, check_input
from crosshar.registry import HEADS


class ECA(nn.Module):
    """Efficient channel attention (Wang et al., CVPR 2020): the time-averaged channel vector
    goes through a k-tap 1-D convolution across channels (k adapts to C) and a sigmoid, and
    rescales the channels.

    forward(x: (B, C, T)) -> (B, C, T)
    """

    def __init__(self, channels: int, gamma: int = 2, b: int = 1):
        super().__init__()
        t = int(abs((math.log2(channels) + b) / gamma))
        k = t if t % 2 else t + 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C) in [0, 1]."""
        return torch.sigmoid(self.conv(x.mean(dim=2)[:, None, :]))[:, 0, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[:, :, None]


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()
    )


class GatedRes2NetBlock(nn.Module):
    """A gated Res2Net bottleneck block with ECA.

    1x1 conv (C_in -> s*w, BN, ReLU) giving h; h is split into s groups x_1..x_s of w channels;
    y_1 = x_1, y_2 = K_2(x_2), y_i = K_i(x_i + g_i * y_{i-1}) for i > 2, where K_i is a 3-tap
    conv (BN, ReLU) and the gate g_i = tanh(conv1x1([x_i, y_{i-1}, h])); the y_i are
    concatenated, a 1x1 conv (-> C_out, BN) and ECA follow, then the shortcut and a ReLU.
    With stride > 1 the input is average-pooled first (both paths, as ResNet-D's shortcut).

    forward(x: (B, C_in, T)) -> (B, C_out, T // stride)
    """

    def __init__(self, c_in: int, width: int, scale: int, c_out: int, stride: int = 1,
                 kernel_size: int = 3):
        super().__init__()
        if scale < 2:
            raise ValueError(f"scale must be >= 2, got {scale}")
        mid = width * scale
        self.width, self.scale = width, scale
        self.pool: nn.Module = nn.AvgPool1d(stride, stride) if stride > 1 else nn.Identity()
        self.conv1 = _conv_bn_relu(c_in, mid, 1)
        self.convs = nn.ModuleList(_conv_bn_relu(width, width, kernel_size) for _ in range(scale - 1))
        self.gates = nn.ModuleList(nn.Conv1d(2 * width + mid, width, 1) for _ in range(scale - 2))
        self.conv3 = nn.Sequential(nn.Conv1d(mid, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.eca = ECA(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        h = self.conv1(x)  # (B, s*w, T)
        xs = torch.split(h, self.width, dim=1)
        y = self.convs[0](xs[1])
        ys = [xs[0], y]
        for i in range(2, self.scale):
            g = torch.tanh(self.gates[i - 2](torch.cat([xs[i], y, h], dim=1)))  # (B, w, T)
            y = self.convs[i - 1](xs[i] + g * y)
            ys.append(y)
        out = self.eca(self.conv3(torch.cat(ys, dim=1)))
        return self.act(out + self.shortcut(x))


@HEADS.register("mag_res2net")
class MAGRes2Net(nn.Module):
    """MAG-Res2Net (Liu et al., "MAG-Res2Net: a novel deep learning network for human activity
    recognition", Physiol. Meas. 44 115007, 2023; code github.com/LHY1007/MAG-Res2Net).

    A ResNet-style stack of four stages of gated Res2Net bottleneck blocks (Gated-Res2Net,
    Yang et al. 2020) with ECA channel attention (Sec. 2.3): in each block the 1x1-projected
    input is split into `scale` groups joined by hierarchical residuals, each group's 3-tap conv
    input gated by a tanh gate; the groups are stacked, a 1x1 conv and ECA follow, and a residual
    shortcut closes the block. Global average pooling and a linear layer classify;
    `forward_features` / `feature_dim` expose the pooled features for the paper's center loss.
    The rest of the paper's recipe (cross-entropy + center loss, Lion or AdamW,
    Borderline-SMOTE) lives in the training loop, not here.

    Two presets (docs/paper_presets.md): the default is a light variant for speed on frozen
    embeddings and on a Raspberry Pi, `layers = [1, 1, 1, 1]`, no dropout between stages; the
    `paper` preset is the UCI-HAR model of Table 6, `layers = [3, 4, 6, 3]` (the "50-layer"
    network), with the official notebook's dropout of 0.4 between stages (`stage_dropout`); its
    recipe (Table 6: AdamW 5e-3, batch 256, 30 epochs, cross-entropy + center loss on the
    logits as in the official notebook, Borderline-SMOTE) is the preset's `[finetune]` table.
    `paper_wisdm` is the WISDM model ([3, 4, 5, 1], Lion 3e-3, batch 2048, 40 epochs).

    Deviations that remain:
    - The gate: the paper writes g_i = tanh(f_1(x)) with f_1 acting on the concatenation of the
      block input X, y_{i-1} and x_i; we make f_1 one 1x1 convolution and take X as the block
      input after the first 1x1 convolution (so that its rate and width are defined).
    - ECA is applied after the block's final 1x1 convolution, before the shortcut is added
      ("we pass the data through an ECA module after a 1 x 1 convolution"), as SE in SE-ResNet.
    - A stem convolution (5 taps, `width * scale` channels) maps the D inputs to features;
      stages 2-4 halve the rate by average pooling at their first block (T = 120 -> 60 -> 30
      -> 15) instead of Res2Net's strided 3-tap convolutions with a pooled last split.
    - 1-D convolutions over time with the D features as channels (the paper also feeds
      [channels, time] arrays).

    Args:
        in_dim: input width D.
        num_classes: number of classes.
        seq_len: unused (any T >= 8 works); kept for the common head signature.
        layers: blocks per stage (the number of entries is the number of stages).
        width: channels per split in the first stage (doubled at each later stage).
        scale: number of splits s (>= 2).
        expansion: output channels = expansion * width * scale.
        kernel_size: taps of the split convolutions K_i.
        dropout: dropout before the classifier.
        stage_dropout: dropout after every stage but the last (0.4 in the official notebook).

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, feature_dim).
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120,
                 layers: Sequence[int] = (1, 1, 1, 1), width: int = 4, scale: int = 4,
                 expansion: int = 2, kernel_size: int = 3, dropout: float = 0.1,
                 stage_dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        layers = as_tuple(layers, "layers")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        c = width * scale
        self.stem = _conv_bn_relu(in_dim, c, 5)
        blocks: list[nn.Module] = []
        for s, n in enumerate(layers):
            w = width * 2**s
            c_out = w * scale * expansion
            for j in range(n):
                stride = 2 if (s > 0 and j == 0) else 1
                blocks.append(GatedRes2NetBlock(c, w, scale, c_out, stride, kernel_size))
                c = c_out
            if stage_dropout > 0 and s < len(layers) - 1:
                blocks.append(nn.Dropout(stage_dropout))
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = c
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, feature_dim), the time average of the last stage."""
        check_input(x, self.in_dim, "mag_res2net")
        h = self.blocks(self.stem(x.transpose(1, 2)))  # (B, C, T / 8)
        return h.mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.forward_features(x)))
