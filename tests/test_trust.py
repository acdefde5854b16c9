"""Hostile and careless input through the CLI: no code runs from a checkpoint, config errors are one
line with exit 2, an interrupt suggests only options the command has (issue 10, classes 1 and 8)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from crosshar import checkpoint
from crosshar.cli import app
from crosshar.errors import CrossharError
from synthdata import home, synth, synth_root  # noqa: F401

runner = CliRunner()


class Payload:
    """Unpickling this calls open(marker, "w"): a stand-in for any command a crafted file could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted(tmp_path, fmt="crosshar-pretrain/1"):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"format": fmt, "job": Payload(marker), "model": {}}, path)
    return path, marker


def one_line_error(res, *words):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and "Traceback" not in res.output, res.output
    text = " ".join(res.output.split())
    for w in words:
        assert w in text, (w, res.output)


def test_a_crafted_checkpoint_is_refused_without_running(tmp_path):
    path, marker = crafted(tmp_path)
    with pytest.raises(CrossharError, match="refused.*Nothing in it was run.*Re-create it"):
        checkpoint.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("args", [["finetune", "-d", "uci", "--encoder"], ["embed", "-d", "uci", "--encoder"],
                                  ["cross", "-d", "uci", "-td", "motion", "--run"], ["export", "--run"]])
def test_every_command_refuses_a_crafted_checkpoint(tmp_path, synth, home, args):
    path, marker = crafted(tmp_path, "crosshar-classifier/1" if args[0] in ("cross", "export") else "crosshar-pretrain/1")
    one_line_error(runner.invoke(app, [*args, str(path)]), "refused", "best.pt")
    assert not marker.exists()


def test_resume_refuses_a_crafted_last_checkpoint(tmp_path, synth, home):
    path, marker = crafted(tmp_path)
    path.rename(tmp_path / "last.pt")
    one_line_error(runner.invoke(app, ["pretrain", "-d", "uci", "--resume", "--out", str(tmp_path), "--quiet"]),
                   "refused", "last.pt")
    assert not marker.exists()


def test_checkpoints_hold_plain_data_only(tmp_path):
    import dataclasses

    import numpy as np

    from crosshar.config import WindowConfig

    obj = {"cfg": WindowConfig(), "a": np.arange(3), "x": np.float32(0.5), "p": tmp_path, "t": torch.ones(2),
           "s": {"b", "a"}, "nested": [(np.int64(1), {"k": np.bool_(True)})]}
    checkpoint.save(tmp_path / "c.pt", obj)
    back = checkpoint.load(tmp_path / "c.pt")  # weights_only=True
    assert back["cfg"] == dataclasses.asdict(WindowConfig()) and back["a"] == [0, 1, 2] and back["x"] == 0.5
    assert back["p"] == str(tmp_path) and torch.equal(back["t"], torch.ones(2)) and back["s"] == ["a", "b"]
    assert back["nested"] == [(1, {"k": True})]
    with pytest.raises(TypeError, match="cannot store a Payload"):
        checkpoint.save(tmp_path / "d.pt", {"x": Payload(tmp_path / "m")})


def test_finetune_on_a_checkpoint_without_job_is_one_line(tmp_path, synth, home):
    torch.save({"format": "crosshar-pretrain/1", "model": {}}, tmp_path / "best.pt")
    one_line_error(runner.invoke(app, ["finetune", "-d", "uci", "--encoder", str(tmp_path)]), "lacks 'job'")
    torch.save({"format": "crosshar-pretrain/1", "model": {}, "job": {}}, tmp_path / "best.pt")
    one_line_error(runner.invoke(app, ["finetune", "-d", "uci", "--encoder", str(tmp_path)]),
                   "damaged or incompatible checkpoint")


@pytest.mark.parametrize("args, words", [
    (["finetune", "-d", "uci", "--no-pretrain", "-lr", "1.5"], ["label_rate must be in (0, 1], got 1.5"]),
    (["finetune", "-d", "uci", "--no-pretrain", "-lr", "0"], ["label_rate must be in (0, 1]"]),
    (["finetune", "-d", "uci", "--no-pretrain", "--optimizer", "sgd"], ["optimizer must be adamw, adam or lion"]),
    (["data", "prepare", "-d", "uci", "--window", "1"], ["window must be >= 2, got 1"]),
    (["data", "prepare", "-d", "uci", "--rate", "-5"], ["rate_hz must be > 0"]),
])
def test_config_values_out_of_range_are_one_line(synth, home, args, words):
    one_line_error(runner.invoke(app, args), *words)


def test_interrupt_hint_names_only_options_the_command_has(synth, home, monkeypatch):
    import crosshar.evaluate.run as er

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(er, "cross", interrupted)
    res = runner.invoke(app, ["cross", "-d", "uci", "-td", "motion"])
    assert res.exit_code == 130 and "interrupted" in res.output and "--resume" not in res.output
