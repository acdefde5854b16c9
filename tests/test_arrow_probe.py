"""benchmarks/arrow_probe.py: the arrow-of-time probe behind results/arrow_probe.md."""

import importlib.util
from pathlib import Path

import torch
from torch import nn

from crosshar.augment import Augmenter
from crosshar.config import load
from crosshar.models.scaling import InputPipeline

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "arrow_probe.py"
spec = importlib.util.spec_from_file_location("arrow_probe", SCRIPT)
ap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ap)


def climbing(b: int = 96, t: int = 120, seed: int = 0) -> torch.Tensor:
    """(b, t, 6) physical windows, gravity on z, whose vertical acc climbs through the window."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(b, t, 6, generator=g)
    x[..., 2] += 9.8 + (2 + 3 * torch.rand(b, 1, generator=g)) * torch.linspace(-1, 1, t) ** 3
    return x


class Trend(nn.Module):
    """Says "backwards" when the vertical acc falls through the window; `sign` -1 says the opposite."""

    def __init__(self, sign: float = 1.0):
        super().__init__()
        self.sign = sign

    def forward(self, x):
        return self.sign * (x[:, 0, 2] - x[:, -1, 2])


def test_accuracy_scores_each_window_forwards_and_backwards():
    x, scaler = climbing(), nn.Identity()
    assert ap.accuracy(Trend(), x, scaler) == 1.0
    assert ap.accuracy(Trend(-1.0), x, scaler) == 0.0  # read backwards: below chance, not at it
    assert ap.accuracy(lambda v: torch.zeros(len(v)), x, scaler) == 0.5  # one guess for all: chance


def test_the_encoder_probe_learns_the_arrow_of_a_trend_and_the_cnn_gives_one_logit_per_window():
    w = load("window")
    aug = Augmenter(load("augment_finetune"), 6, w.rate_hz)
    scaler = InputPipeline.of_encoder(load("encoder")).scaler(6, w.rate_hz)
    torch.manual_seed(0)
    probe = ap.EncoderProbe(6, 120)
    assert ap.accuracy(probe, climbing(seed=1), scaler) < 0.8  # untrained
    ap.train(probe, climbing(b=320), scaler, aug, seed=0, epochs=6)
    assert ap.accuracy(probe, climbing(seed=1), scaler) > 0.9  # windows it has not seen
    assert ap.CNN(6, width=8)(scaler(climbing(b=5))).shape == (5,)


def test_report_averages_over_seeds_and_lists_only_the_models_that_ran():
    rows = []
    for model, base in (("cnn", 0.8), ("encoder_conv", 0.6)):
        for mirror in (False, True):
            for seed, wobble in ((0, -0.05), (1, 0.05)):
                rows.append({"model": model, "mirror": mirror, "seed": seed, "scored": "uci (held-out subjects)",
                             "all": base + wobble})
                rows.append({"model": model, "mirror": mirror, "seed": seed, "scored": "motion", "all": base,
                             "walking": base + wobble, "upstairs": 0.25, "downstairs": 0.75})
    text = ap.report(rows, "uci", "CMD", " (NOTE)")
    assert "`CMD` (NOTE)" in text
    assert "| cnn | no | 80 | 80 |" in text and "| encoder_conv | yes | 60 | 60 |" in text
    assert "| encoder | " not in text  # not run: no row
    assert "| cnn | yes | motion | 80 | 25 | 75 | - |" in text  # per class, "-" where the target has no such class
