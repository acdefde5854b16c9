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


class SystemCall:
    """A payload naming a function of a module torch blocks outright (os): a harmless one here."""

    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_the_refusal_names_the_global_and_never_advises_weights_only_false(tmp_path):
    """For a global from a blocked module torch's first line advises re-running torch.load with
    weights_only=False, which would run the payload; the refusal quoted that line instead of the one naming
    the global."""
    torch.save({"format": "crosshar-pretrain/1", "job": SystemCall()}, tmp_path / "best.pt")
    with pytest.raises(CrossharError) as e:
        checkpoint.load(tmp_path / "best.pt")
    assert "refused" in str(e.value) and "GLOBAL" in str(e.value) and "getcwd" in str(e.value)
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


def classifier_checkpoint(path, **meta_changes):
    from crosshar.config import WindowConfig
    from crosshar.models import classifier

    meta = {"window": WindowConfig().to_dict(), "channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
            "classes": ["walking", "upstairs", "downstairs", "sitting&standing"], "label_space": "crosshar4",
            "encoder": None, "head": "linear", "head_cfg": {}, "scaling": "physical", "frame": "gravity",
            "source": ["uci"]}
    model = classifier.build(meta)
    classifier.save(path, model, meta | meta_changes)
    return path


@pytest.mark.parametrize("changes, words", [
    ({"window": {"rate_hz": 20.0, "x": 1}}, ["unknown key(s) x for [WindowConfig]"]),
    ({"head": "nosuch"}, ["unknown head 'nosuch'"]),
    ({"head_cfg": {"dim": 8}}, ["unknown option(s) dim for head 'linear'"]),
    ({"source": 5}, ["meta 'source' must be a list of names, got 5"]),
    ({"classes": []}, ["meta 'classes' must be a list of names"]),
])
@pytest.mark.parametrize("args", [["cross", "-d", "uci", "-td", "motion", "--run"], ["export", "--run"]])
def test_a_checkpoint_with_a_damaged_meta_is_one_line_naming_it(tmp_path, synth, home, args, changes, words):
    """A meta this version refuses (a config's unknown key or bad value, a head it lacks) was an error without the
    checkpoint's name ("<dict>: unknown key(s) ..."); a mistyped source list was a traceback in the leakage guard."""
    path = classifier_checkpoint(tmp_path / "run" / "best.pt", **changes)
    one_line_error(runner.invoke(app, [*args, str(path)]), str(path), "damaged or incompatible checkpoint", *words)


def test_an_encoder_checkpoint_with_a_damaged_split_is_one_line_naming_it(tmp_path, synth, home):
    """finetune --encoder read the encoder's subject split only when it applied it: a traceback (TypeError)."""
    from crosshar.train.pretrain import PretrainJob, run
    from synthdata import AUGMENT, TINY_ENCODER, TINY_PRETRAIN, WINDOW

    d = run(PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN), out=tmp_path / "pre",
            log=lambda *_: None, progress=False)
    ck = checkpoint.load(d / "best.pt")
    torch.save(ck | {"split": "x"}, d / "best.pt")
    one_line_error(runner.invoke(app, ["finetune", "-d", "uci", "--encoder", str(d), "--epochs", "1"]),
                   str(d), "damaged or incompatible checkpoint", "'split' must hold the lists")


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
