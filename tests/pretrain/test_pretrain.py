"""Pretraining stage: run folder contents, determinism, exact resume, refusal of a changed config,
and a falling masked-reconstruction loss on a slice of the real UCI recordings."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
import torch

import crosshar.train.pretrain as pr
from crosshar import checkpoint
from crosshar.errors import CrossharError
from crosshar.inference import load_encoder
from crosshar.train.pretrain import PretrainJob, run
from synthdata import AUGMENT, TINY_ENCODER, TINY_PRETRAIN, WINDOW, home, synth, synth_root  # noqa: F401


def job(**pretrain) -> PretrainJob:
    return PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN.replace(**pretrain))


def weights(run_dir, name="last.pt") -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / name)["model"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"tensors differ: {diff}"


def quiet(*_):
    pass


def test_run_writes_checkpoints_and_run_info(synth, home):
    d = run(job(), out=home / "r", log=quiet, progress=False)
    assert {"best.pt", "last.pt", "run.json", "tb"} <= {p.name for p in d.iterdir()}
    info = json.loads((d / "run.json").read_text())
    assert info["finished"] is True and info["source"] == "uci" and info["world_size"] == 1
    assert [h["stage"] for h in info["history"]] == [1, 2]
    assert set(info["history"][0]["train"]) == {"mse", "loss"}
    assert set(info["history"][1]["train"]) == {"mse", "contrast", "loss"}
    # subjects are held out for validation, never shared with training
    split = info["split"]
    assert split["val_subjects"] and not set(split["val_subjects"]) & set(split["train_subjects"])
    assert info["configs"]["encoder"] == TINY_ENCODER.to_dict()
    ck = checkpoint.load(d / "last.pt")
    assert ck["epoch"] == 1 and ck["format"] == pr.FORMAT
    # the encoder loads back on its own, with the run's split for finetuning
    enc, scaler, jd = load_encoder(d)
    assert enc.embed_dim == TINY_ENCODER.d_model and jd["split"] == split
    assert not any(p.name.endswith(".tmp") for p in d.iterdir())


def test_activities_pretrains_on_the_label_spaces_windows_only(synth, home):
    from crosshar.data.sources import in_label_space, load_sources

    whole = json.loads((run(job(), out=home / "a", log=quiet, progress=False) / "run.json").read_text())
    some = json.loads((run(job(activities="basic4"), out=home / "b", log=quiet, progress=False) / "run.json").read_text())
    kept = in_label_space(load_sources(["uci"], None, WINDOW), "basic4")  # walking and standing of the five
    assert set(kept.labels.tolist()) == {"walking", "standing"}
    assert some["n_train"] + some["n_val"] == len(kept) < whole["n_train"] + whole["n_val"]
    assert some["split"] == whole["split"]  # the same people held out
    assert some["configs"]["pretrain"]["activities"] == "basic4" and whole["configs"]["pretrain"]["activities"] == ""


def test_same_seed_same_weights(synth, home):
    a = run(job(), out=home / "a", log=quiet, progress=False)
    b = run(job(), out=home / "b", log=quiet, progress=False)
    c = run(job(seed=1), out=home / "c", log=quiet, progress=False)
    assert_same(weights(a), weights(b))
    assert any(not torch.equal(weights(a)[k], weights(c)[k]) for k in weights(a))


def test_resume_gives_the_weights_of_an_uninterrupted_run(synth, home, monkeypatch):
    cfg = dict(stage1_epochs=2, stage2_epochs=2)
    full = run(job(**cfg), out=home / "full", log=quiet, progress=False)

    real = pr.train_one_epoch

    def interrupted(*args, **kw):
        epoch = args[5]
        if epoch == 3:  # epochs 0..2 done and checkpointed, in the middle of stage 2
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(pr, "train_one_epoch", interrupted)
    part = home / "part"
    with pytest.raises(KeyboardInterrupt):
        run(job(**cfg), out=part, log=quiet, progress=False)
    assert checkpoint.load(part / "last.pt")["epoch"] == 2
    assert json.loads((part / "run.json").read_text())["finished"] is False
    monkeypatch.setattr(pr, "train_one_epoch", real)

    logs = []
    run(job(**cfg), out=part, resume=True, log=logs.append, progress=False)
    assert any("resuming" in m and "epoch 4/4" in m for m in logs)
    assert_same(weights(full), weights(part))
    assert_same(weights(full, "best.pt"), weights(part, "best.pt"))
    ck_full, ck_part = checkpoint.load(full / "last.pt"), checkpoint.load(part / "last.pt")
    assert ck_full["step"] == ck_part["step"]
    assert [h["train"] for h in ck_full["history"]] == [h["train"] for h in ck_part["history"]]
    info = json.loads((part / "run.json").read_text())
    assert info["finished"] is True and len(info["history"]) == 4


def test_a_resumed_run_shows_each_step_once_in_tensorboard(synth, home, monkeypatch):
    """TensorBoard held the steps an interrupted pretraining logged after its last checkpoint twice, and its epoch
    scalars on another scale (epochs) than its step scalars (optimiser steps), which one purge could not fit: now
    every scalar is at its optimiser step and the resumed writer hides what the cut run logged after last.pt."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = dict(stage1_epochs=2, stage2_epochs=2)
    real = pr.train_one_epoch

    def cut(*args, **kw):
        if args[5] != 3:
            return real(*args, **kw)
        log_step = args[9]

        def once(nb, m):  # epoch 4's first step is logged, then the run is cut
            log_step(nb, m)
            raise KeyboardInterrupt

        return real(*args[:9], once, *args[10:], **kw)

    monkeypatch.setattr(pr, "train_one_epoch", cut)
    with pytest.raises(KeyboardInterrupt):
        run(job(**cfg), out=home / "r", log=quiet, progress=False)
    monkeypatch.setattr(pr, "train_one_epoch", real)
    run(job(**cfg), out=home / "r", resume=True, log=quiet, progress=False)
    acc = EventAccumulator(str(home / "r" / "tb"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/step_loss")]
    total = checkpoint.load(home / "r" / "last.pt")["step"]
    assert steps == list(range(1, total + 1))
    ends = [e.step for e in acc.Scalars("val/loss")]
    assert len(ends) == 4 and ends == sorted(set(ends)) and ends[-1] == total
    assert [e.value for e in acc.Scalars("train/epoch")] == [1, 2, 3, 4]


def test_resume_with_a_changed_config_is_refused(synth, home):
    d = run(job(), out=home / "r", log=quiet, progress=False)
    before = (d / "last.pt").read_bytes()
    with pytest.raises(CrossharError, match=r"cannot resume.*pretrain\.lr"):
        run(job(lr=1e-4), out=d, resume=True, log=quiet, progress=False)
    with pytest.raises(CrossharError, match=r"cannot resume.*encoder"):
        run(PretrainJob(("uci",), WINDOW, TINY_ENCODER.replace(d_ff=32), AUGMENT, TINY_PRETRAIN), out=d,
            resume=True, log=quiet, progress=False)
    assert (d / "last.pt").read_bytes() == before  # nothing overwritten


@pytest.mark.parametrize("entry, value", [("job", [1]), ("epoch", "x"), ("epoch", 99), ("epoch", -5),
                                          ("history", "x"), ("best", None), ("step", None),
                                          ("optimizer", {"state": {}, "param_groups": []}),
                                          ("epoch", 0), ("best", {}), ("history", [{"epoch": 1}, {"epoch": 1}])])
def test_resume_from_a_damaged_last_checkpoint_names_it(synth, home, entry, value):
    """A last.pt whose entries are of the wrong kind (hand-edited, another version) used to end --resume in a
    traceback (TypeError in the log line, AttributeError in the config check) or, for an epoch beyond the run's,
    in a "resumed" run that trained nothing; it is one error naming last.pt."""
    d = run(job(), out=home / "r", log=quiet, progress=False)
    ck = checkpoint.load(d / "last.pt")
    ck[entry] = value
    torch.save(ck, d / "last.pt")
    with pytest.raises(CrossharError) as e:
        run(job(), out=d, resume=True, log=quiet, progress=False)
    assert str(e.value).startswith(f"{d / 'last.pt'}: damaged or incompatible checkpoint") and "\n" not in str(e.value)


def test_resume_after_the_last_epoch_was_checkpointed_says_so(synth, home):
    """Killed between the last epoch's last.pt and the finished run.json: --resume finishes the run, and says
    that every epoch was trained rather than "resuming at epoch 3/2"."""
    d = run(job(), out=home / "r", log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    (d / "run.json").write_text(json.dumps(info | {"finished": False}))
    logs = []
    run(job(), out=d, resume=True, log=logs.append, progress=False)
    assert any("all 2 epochs were trained" in m for m in logs) and not any("epoch 3/2" in m for m in logs)
    assert json.loads((d / "run.json").read_text())["finished"] is True


def test_a_run_checkpointed_before_an_option_existed_still_resumes(synth, home):
    """A last.pt written before an option was added lacks its key: it reads as the option's default (the behaviour
    of that time) instead of refusing to resume an unchanged job ("differs in pretrain.mse_channels"); a value the
    checkpoint does record still has to match."""
    d = run(job(), out=home / "r", log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    (d / "run.json").write_text(json.dumps(info | {"finished": False}))
    ck = checkpoint.load(d / "last.pt")
    del ck["job"]["pretrain"]["mse_channels"], ck["job"]["encoder"]["stem"]
    torch.save(ck, d / "last.pt")
    logs = []  # mse_channels lacking: the run used the masked MSE of that time, "raw" (PretrainConfig.BEFORE)
    run(job(mse_channels="raw"), out=d, resume=True, log=logs.append, progress=False)
    assert any("all 2 epochs were trained" in m for m in logs)
    with pytest.raises(CrossharError, match=r"cannot resume.*pretrain\.mse_channels"):
        run(job(), out=d, resume=True, log=quiet, progress=False)  # today's default, "equal"
    # a key this version does not know (a newer version's option) is a difference; one it lists as removed is not
    ck["job"]["pretrain"]["num_workers"] = 4  # PretrainConfig.REMOVED
    torch.save(ck, d / "last.pt")
    (d / "run.json").write_text(json.dumps(info | {"finished": False}))
    run(job(mse_channels="raw"), out=d, resume=True, log=quiet, progress=False)
    ck["job"]["pretrain"]["warp_speed"] = 9
    torch.save(ck, d / "last.pt")
    (d / "run.json").write_text(json.dumps(info | {"finished": False}))
    with pytest.raises(CrossharError, match=r"cannot resume.*pretrain\.warp_speed \(unknown here\)"):
        run(job(mse_channels="raw"), out=d, resume=True, log=quiet, progress=False)


def test_resume_without_out_picks_the_latest_unfinished_run(synth, home, monkeypatch):
    real = pr.train_one_epoch

    def stop(*args, **kw):
        if args[5] == 1:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(pr, "train_one_epoch", stop)
    with pytest.raises(KeyboardInterrupt):
        run(job(), out=home / "runs" / "pretrain" / "uci-interrupted", log=quiet, progress=False)
    monkeypatch.setattr(pr, "train_one_epoch", real)
    # a finished run written later must not be taken for the one to resume
    run(job(), out=home / "runs" / "pretrain" / "uci-finished", log=quiet, progress=False)
    d = run(job(), resume=True, log=quiet, progress=False)
    assert d.name == "uci-interrupted"
    assert json.loads((d / "run.json").read_text())["finished"] is True


def test_resume_of_a_run_cut_before_its_first_checkpoint_says_there_is_nothing_to_resume(synth, home):
    """Ctrl-C in epoch 1 leaves run.json (unfinished) and tb/, no checkpoint: --resume used to say that no run
    existed at all; it now names the folder, says there is nothing to resume and how to start over."""
    cut = home / "runs" / "pretrain" / "uci-cut"
    (cut / "tb").mkdir(parents=True)
    (cut / "tb" / "events.out").write_bytes(b"epoch 1, cut")
    (cut / "run.json").write_text(json.dumps({"kind": "pretrain", "source": "uci", "finished": False}))
    with pytest.raises(CrossharError) as e:
        run(job(), resume=True, log=quiet, progress=False)
    assert str(e.value).startswith("--resume: nothing to resume: ") and "\n" not in str(e.value)
    assert f"{cut}, was interrupted before its first checkpoint; rerun without --resume" in str(e.value)
    assert f"--out {cut} --resume to start over in it" in str(e.value)


@pytest.mark.realdata
def test_a_last_step_that_overflows_is_an_error_not_a_nan_best_checkpoint(synth, home, monkeypatch):
    """The loss is checked before each step: a last step whose weights overflow printed "done: best validation loss
    nan", wrote best.pt with those weights and NaN into run.json; now a CrossharError, the last epoch unsaved."""
    real = pr.train_one_epoch
    last = TINY_PRETRAIN.epochs - 1

    def diverging(model, opt, X, aug, job, epoch, *a, **kw):
        out = real(model, opt, X, aug, job, epoch, *a, **kw)
        if epoch == last:
            with torch.no_grad():
                next(model.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(pr, "train_one_epoch", diverging)
    with pytest.raises(CrossharError, match=f"pretraining diverged at epoch {last + 1}.*lower the learning rate"):
        run(job(), out=home / "r", log=quiet, progress=False)
    for name in ("best.pt", "last.pt"):  # only the epochs before it, whole and finite
        if (home / "r" / name).exists():
            assert all(bool(torch.isfinite(t).all()) for t in weights(home / "r", name).values() if t.is_floating_point())
    assert not json.loads((home / "r" / "run.json").read_text()).get("finished")


def test_a_diverging_rate_stops_with_the_losses_as_numbers(synth, home):
    """lr = 1e6 in a config: one line naming the losses, as numbers (it printed tensor(nan, grad_fn=<DivBackward0>))."""
    with pytest.raises(CrossharError, match="non-finite loss at epoch 1, step .*loss (nan|-?inf); lower the learning rate") as e:
        run(job(lr=1e30), out=home / "r", log=quiet, progress=False)
    assert "tensor(" not in str(e.value) and "grad_fn" not in str(e.value)


def test_masked_loss_falls_on_real_uci(real_data, tmp_path, monkeypatch):
    """A few epochs of stage 1 on four subjects of the real HAPT recordings."""
    src = real_data / "uci_hapt" / "RawData"
    if not src.is_dir():
        pytest.skip(f"real UCI HAPT recordings not found under {src}")
    dst = tmp_path / "data" / "uci_hapt" / "RawData"
    dst.mkdir(parents=True)
    exps = range(1, 9)  # users 1..4
    for p in src.iterdir():
        if p.name.startswith(("acc_exp", "gyro_exp")) and int(p.name[7 if p.name[0] == "a" else 8:][:2]) in exps:
            shutil.copy(p, dst / p.name)
    lab = src / "labels.txt.gz" if (src / "labels.txt.gz").is_file() else src / "labels.txt"
    text = gzip.decompress(lab.read_bytes()).decode() if lab.suffix == ".gz" else lab.read_text()
    (dst / "labels.txt").write_text("".join(l + "\n" for l in text.splitlines() if l.split() and int(l.split()[0]) in exps))
    assert len(list(dst.glob("acc_exp*"))) == 8
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CROSSHAR_DATA", str(tmp_path / "data"))
    j = PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT,
                    TINY_PRETRAIN.replace(stage1_epochs=5, stage2_epochs=0, lr=3e-3))
    d = run(j, out=tmp_path / "r", log=quiet, progress=False)
    hist = json.loads((d / "run.json").read_text())["history"]
    assert all(h["stage"] == 1 for h in hist)
    first, last = hist[0]["train"]["mse"], hist[-1]["train"]["mse"]
    assert last < 0.6 * first, [h["train"]["mse"] for h in hist]
    assert hist[-1]["val"]["mse"] < hist[0]["val"]["mse"]
