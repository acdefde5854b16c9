"""CNN-LSTM with self-attention: a convolution, two attended LSTMs, dense branches fused."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from crosshar.models.heads.common import DotProductSelfAttention, as_tuple, check_input
from crosshar.registry import HEADS


def _dense_bn_drop(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c_in, c_out), nn.ReLU(), nn.BatchNorm1d(c_out), nn.Dropout(dropout))


@HEADS.register("cnn_lstm_attn")
class CNNLSTMAttention(nn.Module):
    """"Deep CNN-LSTM With Self-Attention Model for Human Activity Recognition Using Wearable
    Sensor" (the MHEALTH paper; shared/papers/CNN-LSTM-self-attention.md).

    Following its "Model Architecture" paragraph: input -> Conv1D (ReLU) -> batch norm ->
    dropout; two LSTM layers, each followed by a self-attention layer; two branches of dense
    layers, each followed by batch norm and dropout; the three branches concatenated; another
    dense layer with batch norm and dropout; the output layer. Dropout 0.2 and ReLU as in its
    parameter list.

    The text leaves what the "three branches" are open; our reading (a deviation in itself):
    - branch 1, recurrent: Conv -> LSTM_1 -> self-attention -> LSTM_2 -> self-attention,
      averaged over time;
    - branch 2, dense on branch 1 (Dense -> BN -> dropout);
    - branch 3, dense on the time-averaged convolutional features (Dense -> BN -> dropout), a
      local-feature path that skips the LSTMs.

    Other deviations:
    - Self-attention is parameter-free scaled dot-product attention of the sequence on itself,
      softmax(h h^T / sqrt(d)) h, what Keras' `Attention()([h, h])` computes; the paper does not
      say which attention layer it used.
    - Time averaging instead of flattening the attended sequence, so any T works and the dense
      layers do not scale with T.
    - Widths (64 filters of 3 taps, LSTMs of 64 and 32, dense 64) are ours; the paper gives none.
    - Batch norm after the ReLU in the dense branches, as the paper lists Dense then BN.
    - The paper's input is 100 steps x 12 channels (MHEALTH); here D = 72, 6 or 3 and any T.

    The dense layers' batch norms need at least 2 windows per batch in training mode.

    Args:
        in_dim: input width D.
        num_classes: number of classes.
        seq_len: unused (any T works); kept for the common head signature.
        filters: output channels of the convolution.
        kernel_size: taps of the convolution (odd).
        lstm_hidden: hidden widths of the two (or more) LSTM layers.
        dense: width of each dense branch and of the fusion layer.
        dropout: dropout after the convolution and after each dense layer (0.2 in the paper).

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, dense), the output
    of the fusion layer.
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120, filters: int = 64,
                 kernel_size: int = 3, lstm_hidden: Sequence[int] = (64, 32), dense: int = 64,
                 dropout: float = 0.2):
        super().__init__()
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        lstm_hidden = as_tuple(lstm_hidden, "lstm_hidden")
        self.conv = nn.Sequential(
            nn.Conv1d(in_dim, filters, kernel_size, padding=kernel_size // 2), nn.ReLU(),
            nn.BatchNorm1d(filters), nn.Dropout(dropout),
        )
        widths = (filters,) + lstm_hidden
        self.lstms = nn.ModuleList(
            nn.LSTM(widths[i], widths[i + 1], batch_first=True) for i in range(len(lstm_hidden))
        )
        self.attns = nn.ModuleList(DotProductSelfAttention(w) for w in lstm_hidden)
        self.branch_rnn = _dense_bn_drop(lstm_hidden[-1], dense, dropout)
        self.branch_conv = _dense_bn_drop(filters, dense, dropout)
        self.fuse = _dense_bn_drop(lstm_hidden[-1] + 2 * dense, dense, dropout)
        self.feature_dim = dense
        self.fc = nn.Linear(dense, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, dense)."""
        check_input(x, self.in_dim, "cnn_lstm_attn")
        c = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T, filters)
        h = c
        for lstm, attn in zip(self.lstms, self.attns):
            h, _ = lstm(h)
            h = attn(h)  # (B, T, hidden_i)
        rnn = h.mean(dim=1)  # (B, hidden_last)
        branches = [rnn, self.branch_rnn(rnn), self.branch_conv(c.mean(dim=1))]
        return self.fuse(torch.cat(branches, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))
