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

    Following its "Model Architecture" paragraph: input -> Conv1D -> batch norm -> dropout; two
    LSTM layers, each followed by a self-attention layer; two branches of dense layers, each
    followed by batch norm and dropout; the three branches concatenated; another dense layer
    with batch norm and dropout; the output layer. Dropout 0.2 as in its parameter list.

    Two layouts, chosen by the options (docs/paper_presets.md):

    - default (ours): Conv1D of 64 filters with ReLU; LSTMs 64 and 32, each followed by scaled
      self-attention (1/sqrt(d)); the attended sequence averaged over time is branch 1; branch 2
      is a dense layer on branch 1; branch 3 is a dense layer on the time-averaged convolutional
      features (a local path that skips the LSTMs).
    - `paper` preset (the authors' published Keras model, as the issue tracker read it):
      Conv1D of 16 filters without activation; LSTM(64) -> Attention() -> LSTM(64) ->
      Attention() -> a third LSTM(64) whose last state is branch 1; both dense branches read
      that state; attention unscaled as Keras' `Attention()` (`use_scale=False`).

    Remaining deviations in both layouts:
    - Dense widths (64) and the 3-tap kernel are not given in the paper text.
    - Batch norm after the ReLU in the dense branches, as the paper lists Dense then BN.
    - PyTorch's LSTM has two bias vectors per gate (Keras one): 4 * hidden more parameters
      per LSTM layer than the Keras model.
    - The paper's input is 100 steps x 12 channels (MHEALTH); here D = 72, 6 or 3 and any T.

    The dense layers' batch norms need at least 2 windows per batch in training mode.

    Args:
        in_dim: input width D.
        num_classes: number of classes.
        seq_len: unused (any T works); kept for the common head signature.
        filters: output channels of the convolution.
        kernel_size: taps of the convolution (odd).
        lstm_hidden: hidden widths of the LSTM layers, each followed by self-attention.
        dense: width of each dense branch and of the fusion layer.
        dropout: dropout after the convolution and after each dense layer (0.2 in the paper).
        conv_activation: ReLU after the convolution (the published model has none).
        attention_scale: scale attention scores by 1/sqrt(d) (Keras' `Attention()` does not).
        final_lstm: width of a last LSTM (no attention) whose last state is the recurrent
            branch; 0 = none, the attended sequence is averaged over time instead.
        conv_branch: the third branch reads the time-averaged convolution features (ours);
            False = it reads the recurrent branch, as the published model's two dense branches.

    forward(x: (B, T, D)) -> logits (B, num_classes); forward_features -> (B, dense), the output
    of the fusion layer.
    """

    def __init__(self, in_dim: int, num_classes: int, seq_len: int = 120, filters: int = 64,
                 kernel_size: int = 3, lstm_hidden: Sequence[int] = (64, 32), dense: int = 64,
                 dropout: float = 0.2, conv_activation: bool = True, attention_scale: bool = True,
                 final_lstm: int = 0, conv_branch: bool = True):
        super().__init__()
        self.in_dim, self.num_classes, self.seq_len = in_dim, num_classes, seq_len
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        lstm_hidden = as_tuple(lstm_hidden, "lstm_hidden")
        act = [nn.ReLU()] if conv_activation else []
        self.conv = nn.Sequential(
            nn.Conv1d(in_dim, filters, kernel_size, padding=kernel_size // 2), *act,
            nn.BatchNorm1d(filters), nn.Dropout(dropout),
        )
        widths = (filters,) + lstm_hidden
        self.lstms = nn.ModuleList(
            nn.LSTM(widths[i], widths[i + 1], batch_first=True) for i in range(len(lstm_hidden))
        )
        self.attns = nn.ModuleList(DotProductSelfAttention(w, attention_scale) for w in lstm_hidden)
        self.final = nn.LSTM(lstm_hidden[-1], final_lstm, batch_first=True) if final_lstm else None
        rnn_dim = final_lstm or lstm_hidden[-1]
        self.conv_branch = conv_branch
        self.branch_rnn = _dense_bn_drop(rnn_dim, dense, dropout)
        self.branch_conv = _dense_bn_drop(filters if conv_branch else rnn_dim, dense, dropout)
        self.fuse = _dense_bn_drop(rnn_dim + 2 * dense, dense, dropout)
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
        if self.final is not None:
            rnn = self.final(h)[0][:, -1]  # (B, final_lstm), Keras' LSTM(return_sequences=False)
        else:
            rnn = h.mean(dim=1)  # (B, hidden_last)
        third = self.branch_conv(c.mean(dim=1) if self.conv_branch else rnn)
        return self.fuse(torch.cat([rnn, self.branch_rnn(rnn), third], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))
