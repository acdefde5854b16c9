"""Finetuning stage: with and without a pretrained encoder, the label subset, model selection on
held-out source subjects only, SMOTE kept away from validation data, center loss and Lion."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import crosshar.train.finetune as fr
from crosshar import checkpoint
from crosshar.config import WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.store import prepare
from crosshar.errors import ConfigError
from crosshar.inference import predict
from crosshar.train.finetune import FinetuneJob, run
from crosshar.models import classifier as clf
from crosshar.models.scaling import InputScaler
from crosshar.train.pretrain import PretrainJob
from crosshar.train.pretrain import run as pretrain
from synthdata import AUGMENT, TINY_ENCODER, TINY_FINETUNE, TINY_PRETRAIN, WINDOW, cut_finetuning_at, synth_root  # noqa: F401

CLASSES = ("walking", "upstairs", "downstairs", "sitting&standing")


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def pre_run(synth_root, tmp_path_factory):
    job = PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN, data_dir=str(synth_root))
    return pretrain(job, out=tmp_path_factory.mktemp("pretrain") / "run", log=quiet, progress=False)


def fjob(data, encoder_run, **ft) -> FinetuneJob:
    return FinetuneJob(("uci",), WINDOW, TINY_FINETUNE.replace(**ft), AUGMENT, CLASSES, "crosshar4",
                       None if encoder_run is None else str(encoder_run), {}, data_dir=str(data))


def val_windows(data, split) -> np.ndarray:
    """The labelled windows of the split's validation subjects, as finetuning must see them."""
    ws = prepare("uci", data, WINDOW).by_subjects(split["val_subjects"])
    return ws.X[LabelSpace(CLASSES).encode(ws.labels) >= 0]


def row_hashes(X: np.ndarray) -> set[str]:
    X = np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1)
    return {hashlib.blake2b(r.tobytes(), digest_size=16).hexdigest() for r in X}


@pytest.mark.parametrize("pretrained", [True, False], ids=["encoder", "no-pretrain"])
def test_finetune_writes_a_loadable_classifier(synth_root, pre_run, tmp_path, pretrained):
    enc = pre_run if pretrained else None
    d = run(fjob(synth_root, enc, label_rate=0.3), out=tmp_path / "ft", log=quiet, progress=False)
    model, meta = clf.load(d / "best.pt")
    assert meta["classes"] == list(CLASSES) and meta["head"] == "linear"
    with torch.no_grad():
        assert model(torch.zeros(3, WINDOW.window, 6)).shape == (3, len(CLASSES))
    info = json.loads((d / "run.json").read_text())
    assert info["finished"] and info["encoder_run"] == (None if enc is None else str(enc))
    # the labelled subset is ~30 % of the training windows (rounding, at least one per class)
    assert abs(info["n_labelled"] - 0.3 * info["n_train_windows"]) <= len(CLASSES)
    assert info["n_labelled"] < info["n_train_windows"]
    split = info["split"]
    assert split["val_subjects"] and not set(split["val_subjects"]) & set(split["train_subjects"])
    if pretrained:
        assert model.encoder is not None and meta["pretrain_run"] == str(pre_run)
        # model selection held out exactly the pretraining run's validation subjects
        assert split == json.loads((pre_run / "run.json").read_text())["split"]
        # a frozen encoder leaves the pretrained weights as they were
        pre = checkpoint.load(pre_run / "best.pt")["model"]
        for k, v in model.encoder.state_dict().items():
            assert torch.equal(v, pre[f"encoder.{k}"]), k
    else:
        assert model.encoder is None and meta["pretrain_run"] is None


def test_model_selection_sees_only_validation_subjects(synth_root, pre_run, tmp_path, monkeypatch):
    seen = []
    real = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda model, X, y, classes, **kw: seen.append(X.copy()) or real(model, X, y, classes, **kw))
    d = run(fjob(synth_root, pre_run, epochs=2, val_every=1), out=tmp_path / "ft", log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    assert len(seen) == 2  # one validation pass per epoch (val_every = 1)
    expect = val_windows(synth_root, info["split"])
    for X in seen:
        np.testing.assert_array_equal(X, expect)
    assert info["n_val"] == len(expect)


@pytest.mark.parametrize("ties, best_epoch, epochs_run", [("first", 1, 3), ("last", 6, 6)])
def test_a_saturated_validation_score_keeps_training_only_with_ties_last(synth_root, tmp_path, monkeypatch,
                                                                         ties, best_epoch, epochs_run):
    # every epoch scores the same (as a validation set at macro-F1 1.0 does): "first" keeps epoch 1 and
    # stops after `patience` epochs without gain; "last" keeps the latest epoch and runs them all
    monkeypatch.setattr(fr, "evaluate", lambda *a, **kw: {"accuracy": 1.0, "macro_f1": 1.0, "nonfinite": 0})
    d = run(fjob(synth_root, None, epochs=6, patience=2, ties=ties, select="best"), out=tmp_path / "ft", log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    assert info["best"]["epoch"] == best_epoch and len(info["history"]) == epochs_run
    assert clf.load(d / "best.pt")[1]["history"][-1]["epoch"] == best_epoch  # best.pt is that epoch's model


def test_improves_and_ties_are_checked():
    assert fr.improves(0.9, 0.8) and not fr.improves(0.8, 0.8) and fr.improves(0.8, 0.8, "last")
    assert not fr.improves(0.7, 0.8, "last")
    with pytest.raises(ConfigError, match="ties"):
        TINY_FINETUNE.replace(ties="middle")


def test_smote_never_touches_validation_windows(synth_root, pre_run, tmp_path, monkeypatch):
    from imblearn.over_sampling import BorderlineSMOTE

    inputs = []
    real = BorderlineSMOTE.fit_resample

    def spy(self, X, y):
        inputs.append((np.array(X), np.array(y)))
        return real(self, X, y)

    monkeypatch.setattr(BorderlineSMOTE, "fit_resample", spy)
    seen = []
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda model, X, y, classes, **kw: seen.append(len(X)) or real_eval(model, X, y, classes, **kw))
    logs = []
    d = run(fjob(synth_root, pre_run, smote=True, epochs=1), out=tmp_path / "ft", log=logs.append, progress=False)
    info = json.loads((d / "run.json").read_text())
    assert len(inputs) == 1, "SMOTE was not applied"
    X, y = inputs[0]
    assert len(X) == info["n_labelled"] and len(y) == len(X)  # exactly the labelled training windows
    val = val_windows(synth_root, info["split"])
    assert not row_hashes(X) & row_hashes(val)
    assert seen == [len(val)] and info["n_val"] == len(val)  # validation count unchanged
    assert any("Borderline-SMOTE" in m and "validation untouched" in m for m in logs)


def test_a_checkpoint_saves_every_option_its_head_was_built_with(tmp_path):
    """The meta's head_cfg is the head's whole option set (its config file's, then the job's), not the job's overrides
    alone: a checkpoint saved now rebuilds the same head after a default changes (classifier.build, heads.BEFORE)."""
    from crosshar.models.heads import head_options

    job = dataclasses.replace(fjob(tmp_path, None, head="transformer"), head_cfg={"dropout": 0.2})
    model, meta = fr.build_model(job)
    assert set(meta["head_cfg"]) == set(head_options("transformer"))
    assert meta["head_cfg"]["dropout"] == 0.2 and meta["head_cfg"]["token_kernel"] == 5
    rebuilt = clf.build(meta)
    assert [tuple(p.shape) for p in rebuilt.parameters()] == [tuple(p.shape) for p in model.parameters()]


def test_smote_that_cannot_apply_says_so(synth_root):
    """-lr 0.001 --smote on MotionSense: one labelled window of a class, and Borderline-SMOTE (which needs two)
    was skipped with only "5 -> 5 training windows" in the log, while run.json recorded smote = true."""
    job = fjob(synth_root, None, smote=True, label_rate=0.001)
    model, meta = fr.build_model(job)
    lines = []
    d = fr.load_data(job, meta, lines.append)
    assert (np.bincount(d.ytr, minlength=len(CLASSES)) >= 1).all()
    assert any("not applied: a class has 1 labelled window" in ln for ln in lines), lines


def test_center_loss_and_lion(synth_root, pre_run, tmp_path, monkeypatch):
    import lion_pytorch

    calls = {"center": 0, "lion": 0}

    class CountingCenter(fr.CenterLoss):
        def forward(self, f, y):
            calls["center"] += 1
            return super().forward(f, y)

    class CountingLion(lion_pytorch.Lion):
        def step(self, *a, **kw):
            calls["lion"] += 1
            return super().step(*a, **kw)

    monkeypatch.setattr(fr, "CenterLoss", CountingCenter)
    monkeypatch.setattr(lion_pytorch, "Lion", CountingLion)
    d = run(fjob(synth_root, pre_run, center_loss=0.1, optimizer="lion", epochs=2), out=tmp_path / "ft",
            log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    assert calls["center"] > 0 and calls["lion"] == calls["center"]
    assert all(np.isfinite(h["train_loss"]) for h in info["history"])
    assert clf.load(d)[1]["classes"] == list(CLASSES)


@pytest.mark.parametrize("optimizer,base", [("adamw", 1.0), ("lion", 1 / 3)])
def test_a_trained_encoder_learns_at_its_own_rate(synth_root, pre_run, optimizer, base):
    """encoder_lr_scale: every encoder parameter in one group at lr x scale, the head's at lr, through
    the schedule; a frozen encoder has no group at all."""
    job = fjob(synth_root, pre_run, freeze=False, encoder_lr_scale=0.1, optimizer=optimizer)
    model, _ = fr.build_model(job)
    tr = fr._trainer(model, job, torch.device("cpu"))
    lr = {id(p): g["lr"] for g in tr.opt.param_groups for p in g["params"]}
    assert len(lr) == sum(1 for p in model.parameters())  # each parameter once
    assert [lr[id(p)] for p in model.encoder.parameters()] == pytest.approx(
        [job.finetune.lr * base * 0.1] * len(list(model.encoder.parameters())))
    assert [lr[id(p)] for p in model.head.parameters()] == pytest.approx(
        [job.finetune.lr * base] * len(list(model.head.parameters())))
    tr.opt.step()
    tr.sched.step()
    head_g, enc_g = tr.opt.param_groups
    assert enc_g["lr"] / head_g["lr"] == pytest.approx(0.1) and head_g["lr"] < job.finetune.lr * base
    frozen = fjob(synth_root, pre_run, freeze=True, encoder_lr_scale=0.1)
    m2, _ = fr.build_model(frozen)
    assert len(fr._trainer(m2, frozen, torch.device("cpu")).opt.param_groups) == 1
    with pytest.raises(ConfigError, match="encoder_lr_scale"):
        TINY_FINETUNE.replace(encoder_lr_scale=0.0)


def test_moving_average_is_what_validation_selects_and_best_pt_holds(synth_root, pre_run, tmp_path, monkeypatch):
    """average_epochs: the averaged copy moves toward the trained weights every step (decay from the horizon),
    validation scores it, and best.pt holds its weights and BatchNorm statistics, not the last step's."""
    ema = fr.moving_average(torch.nn.BatchNorm1d(2), epochs=2, steps_per_epoch=5)  # decay 0.9
    src = torch.nn.BatchNorm1d(2)
    ema.update_parameters(src)  # the first update copies
    with torch.no_grad():
        src.weight.fill_(2.0)
        src.running_mean.fill_(1.0)
    ema.update_parameters(src)
    assert torch.allclose(ema.module.weight, torch.full((2,), 1.1)) and torch.allclose(ema.module.running_mean, torch.full((2,), 0.1))

    seen = []
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda m, *a, **k: seen.append(m) or real_eval(m, *a, **k))
    d = run(fjob(synth_root, None, average_epochs=3.0, epochs=3, patience=3, ties="last"), out=tmp_path / "ft",
            log=quiet, progress=False)
    trained = seen[0]
    assert all(m is trained for m in seen) and isinstance(trained, clf.HARClassifier)
    saved, _ = clf.load(d)
    live = {k: v for k, v in trained.state_dict().items()}
    assert all(torch.equal(saved.state_dict()[k], live[k]) for k in live)  # best.pt = the average (ties last)
    plain = run(fjob(synth_root, None, epochs=3, patience=3, ties="last"), out=tmp_path / "plain", log=quiet, progress=False)
    w = clf.load(plain)[0].state_dict()
    assert any(not torch.equal(w[k], live[k]) for k in live if live[k].is_floating_point())


def test_window_mismatch_with_the_encoder_is_refused(synth_root, pre_run, tmp_path):
    job = FinetuneJob(("uci",), WindowConfig(window=60, stride=60), TINY_FINETUNE, AUGMENT, CLASSES,
                      encoder_run=str(pre_run), data_dir=str(synth_root))
    with pytest.raises(ConfigError, match="used windows"):
        run(job, out=tmp_path / "ft", log=quiet, progress=False)


def test_paper_recipe_center_loss_on_logits_adam_and_step_schedule(synth_root, pre_run, tmp_path, monkeypatch):
    """The recipe fields the `paper` presets use reach the loop: the center loss on the logits
    (K-wide centres), Adam, and a learning rate that drops by step_gamma every step_epochs."""
    widths, lrs = [], []

    class RecordingCenter(fr.CenterLoss):
        def forward(self, f, y):
            widths.append(f.shape[1])
            return super().forward(f, y)

    class RecordingAdam(torch.optim.Adam):
        def step(self, *a, **kw):
            lrs.append(self.param_groups[0]["lr"])
            return super().step(*a, **kw)

    monkeypatch.setattr(fr, "CenterLoss", RecordingCenter)
    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    run(fjob(synth_root, pre_run, center_loss=0.1, center_on="logits", optimizer="adam", lr_schedule="step",
             step_epochs=1, step_gamma=0.5, epochs=2, lr=1e-3), out=tmp_path / "ft", log=quiet, progress=False)
    assert widths and set(widths) == {len(CLASSES)}
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(5e-4)


def test_frozen_encoder_encodes_validation_once_with_the_same_predictions(synth_root, pre_run, tmp_path, monkeypatch):
    """The cached validation features give exactly the logits of the full model, and are computed once."""
    calls = []
    real_encode = fr.encode
    monkeypatch.setattr(fr, "encode", lambda model, X, *a: calls.append(len(X)) or real_encode(model, X, *a))
    d = run(fjob(synth_root, pre_run, epochs=3), out=tmp_path / "ft", log=quiet, progress=False)
    info = json.loads((d / "run.json").read_text())
    assert calls == [info["n_val"]]  # once, not once per epoch (training windows are augmented: not cached)
    model, meta = clf.load(d)
    X = val_windows(synth_root, info["split"])
    y = np.zeros(len(X), dtype=np.int64)
    a = fr.evaluate(model, X, y, list(CLASSES))
    b = fr.evaluate(model, X, y, list(CLASSES), feats=real_encode(model, X))
    assert a == b
    with torch.no_grad():
        np.testing.assert_array_equal(predict(model, X), model.head(real_encode(model, X)).numpy())


def test_head_input_embedding_plus_window_reaches_the_head(synth_root, pre_run, tmp_path):
    """head_input = "embedding+window": the head reads D + C features, the last C of which are the
    scaled window itself; the checkpoint rebuilds the same model."""
    d = run(fjob(synth_root, pre_run, label_rate=0.3, head_input="embedding+window"), out=tmp_path / "ft",
            log=quiet, progress=False)
    model, meta = clf.load(d / "best.pt")
    assert meta["head_input"] == "embedding+window" and model.skip
    x = torch.randn(2, WINDOW.window, 6)
    with torch.no_grad():
        f = model.features(x)
        assert f.shape == (2, WINDOW.window, model.encoder.embed_dim + 6)
        assert torch.allclose(f[..., -6:], model.scaler(x))
        assert torch.allclose(f[..., :-6], model.encoder.forward_features(model.scaler(x)))


def test_skip_frame_puts_the_window_beside_the_embedding_in_its_own_frame(synth_root, pre_run, tmp_path):
    """skip_frame = "vertical": the embedding still comes from the encoder's (gravity-frame) input, the window
    beside it is in the vertical frame; the checkpoint records it and rebuilds the same model."""
    d = run(fjob(synth_root, pre_run, label_rate=0.3, head_input="embedding+window", skip_frame="vertical"),
            out=tmp_path / "ft", log=quiet, progress=False)
    model, meta = clf.load(d / "best.pt")
    assert meta["skip_frame"] == "vertical" and model.skip_scaler.frame == "vertical" and model.scaler.frame != "vertical"
    x = torch.randn(2, WINDOW.window, 6) + torch.tensor([0.0, 0.0, 9.8, 0.0, 0.0, 0.0])
    with torch.no_grad():
        f = model.features(x)
        assert torch.allclose(f[..., -6:], InputScaler("physical", 6, frame="vertical")(x))
        assert torch.allclose(f[..., :-6], model.encoder.forward_features(model.scaler(x)))
        assert not torch.allclose(f[..., -6:], model.scaler(x))
    with pytest.raises(ConfigError, match="skip_frame"):
        TINY_FINETUNE.replace(skip_frame="sideways")


def test_without_an_encoder_the_head_reads_the_window_in_two_frames(synth_root, tmp_path):
    """No encoder, head_input = "embedding+window", skip_frame = "vertical": one head reads the scaled window in
    the pipeline's frame (gravity here) and in the vertical frame side by side (D = 2C, matrix row scratch_dual);
    the checkpoint rebuilds it. With skip_frame = "encoder" there is no second frame, so no second input."""
    d = run(fjob(synth_root, None, label_rate=0.3, head_input="embedding+window", skip_frame="vertical"),
            out=tmp_path / "ft", log=quiet, progress=False)
    model, meta = clf.load(d / "best.pt")
    assert model.encoder is None and model.skip and meta["skip_frame"] == "vertical"
    assert meta["head_input"] == "embedding+window" and model.scaler.frame == "gravity"
    x = torch.randn(2, WINDOW.window, 6) + torch.tensor([0.0, 0.0, 9.8, 0.0, 0.0, 0.0])
    with torch.no_grad():
        f = model.features(x)
        assert f.shape == (2, WINDOW.window, 12)
        assert torch.allclose(f[..., :6], model.scaler(x))
        assert torch.allclose(f[..., 6:], InputScaler("physical", 6, frame="vertical")(x))
    d = run(fjob(synth_root, None, label_rate=0.3, head_input="embedding+window"), out=tmp_path / "ft2",
            log=quiet, progress=False)
    model, meta = clf.load(d / "best.pt")
    assert not model.skip and meta["head_input"] == "embedding" and model.features(x).shape[-1] == 6


def test_unknown_head_input_is_refused():
    with pytest.raises(ConfigError, match="head_input"):
        TINY_FINETUNE.replace(head_input="window")


def test_coarse_labels_are_kept_as_class_sets_for_training():
    """uci+wisdm: WISDM's "stairs" windows train upstairs-or-downstairs instead of being dropped."""
    from crosshar.data.windows import WindowSet

    labels = np.array(["walking", "upstairs", "stairs", "downstairs", "stairs", "lying", "sitting"])
    ws = WindowSet(np.zeros((7, 4, 6), np.float32), labels, np.array(["s"] * 7), np.array(["r"] * 7), "x",
                   WindowConfig(window=4, stride=4))
    space = LabelSpace.named("crosshar4")
    kept, y, groups = fr.encode_labels(ws, space, coarse=True)
    assert groups == ((1, 2),) and y.tolist() == [0, 1, 4, 2, 4, 3]
    assert kept.labels.tolist() == ["walking", "upstairs", "stairs", "downstairs", "stairs", "sitting"]
    kept, y, groups = fr.encode_labels(ws, space)  # validation: fine labels only
    assert groups == () and y.tolist() == [0, 1, 2, 3]


def test_heading_views_reach_the_saved_model_while_selection_reads_one_view(synth_root, pre_run, tmp_path, monkeypatch):
    seen = []
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda m, *a, **k: seen.append(m.heading_views) or real_eval(m, *a, **k))
    d = run(fjob(synth_root, None, heading_views=4, epochs=2, patience=2), out=tmp_path / "ft", log=quiet, progress=False)
    assert seen and set(seen) == {1}  # model selection: one view
    model, meta = clf.load(d)
    assert meta["heading_views"] == 4 and model.heading_views == 4  # what cross, export and the runtime load
    with pytest.raises(ConfigError, match="heading_views"):
        TINY_FINETUNE.replace(heading_views=0)


def test_cadence_views_reach_the_saved_model_with_the_range_they_span(synth_root, tmp_path, monkeypatch):
    seen = []
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda m, *a, **k: seen.append(m.cadence) or real_eval(m, *a, **k))
    d = run(fjob(synth_root, None, cadence_views=3, epochs=2, patience=2), out=tmp_path / "ft", log=quiet, progress=False)
    assert seen and set(seen) == {None}  # model selection: one view
    model, meta = clf.load(d)
    assert meta["cadence_views"] == 3 and meta["cadence_span"] == AUGMENT.cadence
    assert model.cadence.speeds == pytest.approx((1 - AUGMENT.cadence, 1.0, 1 + AUGMENT.cadence))
    with pytest.raises(ConfigError, match="cadence_views"):
        TINY_FINETUNE.replace(cadence_views=0)
    job = fjob(synth_root, None, cadence_views=3)
    with pytest.raises(ConfigError, match="cadence range"):
        fr.build_model(dataclasses.replace(job, augment=AUGMENT.replace(cadence=0.0)))


def test_an_ensemble_trains_each_member_on_its_own_loss_and_saves_them_all(synth_root, pre_run, tmp_path):
    d = run(fjob(synth_root, None, ensemble=3, epochs=2, patience=2), out=tmp_path / "ft", log=quiet, progress=False)
    model, meta = clf.load(d)
    assert meta["ensemble"] == 3 and len(model.head.members) == 3  # what cross, export and the runtime load
    w = [m.fc.weight.detach() for m in model.head.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])  # independent initialisations
    with pytest.raises(ConfigError, match="ensemble"):
        TINY_FINETUNE.replace(ensemble=0)
    with pytest.raises(ConfigError, match="center_loss"):
        TINY_FINETUNE.replace(ensemble=2, center_loss=0.1)


def test_an_ensemble_members_gradients_are_their_solo_gradients_clipped_one_by_one():
    from crosshar.device import Precision
    from crosshar.models.heads import create_head
    from crosshar.models.heads.ensemble import HeadEnsemble

    torch.manual_seed(0)
    heads = [create_head("linear", 6, 3) for _ in range(2)]
    solo = [create_head("linear", 6, 3) for _ in range(2)]
    for s, h in zip(solo, heads):
        s.load_state_dict(h.state_dict())
    model = clf.HARClassifier(torch.nn.Identity(), None, HeadEnsemble(heads))
    x, y = 10 * torch.randn(8, 12, 6), torch.randint(0, 3, (8,))
    tr = SimpleNamespace(allowed=None, center=None, cfg=TINY_FINETUNE.replace(label_smoothing=0.0), weight=None)
    loss = fr._loss(model, x, y, tr)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    norms = Precision("cpu").step(loss, opt, [list(h.parameters()) for h in heads], clip=0.5)
    assert norms.shape == (2,) and (norms > 0.5).all()  # both clipped, each to 0.5 on its own
    for s, h in zip(solo, heads):
        torch.nn.functional.cross_entropy(s(x), y).backward()
        torch.nn.utils.clip_grad_norm_(s.parameters(), 0.5)
        for ps, ph in zip(s.parameters(), h.parameters()):
            torch.testing.assert_close(ph.grad, ps.grad)


@pytest.mark.parametrize("damage", ["inf", "overflow"])
@pytest.mark.parametrize("pretrained", [True, False], ids=["encoder", "no-pretrain"])
def test_a_last_step_that_overflows_is_an_error_and_saves_nothing(synth_root, pre_run, tmp_path, monkeypatch,
                                                                   damage, pretrained):
    """The loss is checked before each step, not after the last one: a last step whose weights overflow (lr = 1e37
    in a config did it on MotionSense) gave NaN scores that argmax to class 0, a 'source-validation macro-F1 0.110'
    and a best.pt that scores nothing; now a CrossharError before anything is saved."""
    real = fr.train_one_epoch

    def diverging(model, *a, **kw):
        loss = real(model, *a, **kw)
        with torch.no_grad():
            w = model.head.fc.weight
            if damage == "inf":
                w.fill_(float("inf"))
            else:  # finite weights (lr x 1 per step) whose products overflow float32: the scores are +-inf or NaN
                w.copy_(3e38 * (1 - 2 * (torch.arange(w.numel()) % 2)).reshape(w.shape).float())
        return loss

    monkeypatch.setattr(fr, "train_one_epoch", diverging)
    with pytest.raises(fr.CrossharError, match="finetuning diverged at epoch 1.*not finite.*lower the learning rate"):
        run(fjob(synth_root, pre_run if pretrained else None, epochs=1), out=tmp_path / "ft", log=quiet, progress=False)
    assert not (tmp_path / "ft" / "best.pt").exists()
    assert json.loads((tmp_path / "ft" / "run.json").read_text())["finished"] is False


@pytest.mark.parametrize("pretrained", [True, False], ids=["encoder", "no-pretrain"])
def test_the_validation_windows_are_scored_once_an_epoch(synth_root, pre_run, tmp_path, monkeypatch, pretrained):
    """check_finite, before each best.pt, scored the validation windows that epoch's evaluate had just scored a second
    time (9 % of a crosshar_paper cell's CPU); now it reads evaluate's count of the non-finite scores."""
    scored = []  # windows through the head in eval mode (training runs it in train mode)
    real_build = fr.build_model

    def build(*a, **k):
        model, meta = real_build(*a, **k)
        model.head.register_forward_hook(lambda m, inp, out: None if m.training else scored.append(len(out)))
        return model, meta

    monkeypatch.setattr(fr, "build_model", build)
    evaluated = []
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda m, X, *a, **k: evaluated.append(len(X)) or real_eval(m, X, *a, **k))
    run(fjob(synth_root, pre_run if pretrained else None, select="best", epochs=3, val_every=1, patience=10),
        out=tmp_path / "ft", log=quiet, progress=False)
    assert len(evaluated) == 3 and sum(scored) == sum(evaluated)


def test_lp_ft_starts_from_the_probed_model_and_trains_the_encoder(synth_root, pre_run, tmp_path, monkeypatch):
    """LP-FT (init_run): the run starts from a finished run's weights (the frozen encoder's head) and trains the encoder
    on; a run of another architecture is refused, naming the run and what differs, before anything trains."""
    from dataclasses import replace

    probed = run(fjob(synth_root, pre_run), out=tmp_path / "lp", log=quiet, progress=False)
    lp, _ = clf.load(probed)
    job = replace(fjob(synth_root, pre_run, freeze=False, lr=1e-4), init_run=str(probed))
    model, _ = fr.build_model(job)
    for k, v in lp.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    ft = run(job, out=tmp_path / "ft", log=quiet, progress=False)
    tuned, _ = clf.load(ft)
    moved = [k for k, v in lp.state_dict().items() if k.startswith("encoder.") and not torch.equal(tuned.state_dict()[k], v)]
    assert moved  # the encoder trained on
    assert json.loads((ft / "run.json").read_text())["init_run"] == str(probed)
    other = run(fjob(synth_root, None), out=tmp_path / "raw", log=quiet, progress=False)
    with pytest.raises(fr.CrossharError, match=r"raw: its encoder None differs from this finetuning's"):
        fr.build_model(replace(job, init_run=str(other)))


def test_a_run_cut_short_is_marked_unfinished_and_not_scored_as_a_run(synth_root, tmp_path, monkeypatch):
    """A finetuning interrupted after a best.pt was written (--select best) left a folder that `cross --run` and
    `export --run` loaded as a finished run; its run.json now says it is unfinished from the start, loading the folder
    is refused, and naming its best.pt still loads that model."""
    from crosshar.models import classifier as clf

    real = fr.train_one_epoch
    calls = iter(range(100))

    def cut(*a, **kw):
        if next(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(fr, "train_one_epoch", cut)
    with pytest.raises(KeyboardInterrupt):
        run(fjob(synth_root, None, select="best", epochs=4, val_every=1), out=tmp_path / "ft", log=quiet, progress=False)
    assert (tmp_path / "ft" / "best.pt").is_file()
    assert json.loads((tmp_path / "ft" / "run.json").read_text())["finished"] is False
    with pytest.raises(fr.CrossharError, match="finetuning has not finished.*name .*best.pt"):
        clf.load(tmp_path / "ft")
    _, meta = clf.load(tmp_path / "ft" / "best.pt")
    assert meta["classes"] == list(fjob(synth_root, None).classes)


def test_select_last_runs_every_epoch_and_keeps_the_last(synth_root, pre_run, tmp_path, monkeypatch):
    scores = iter([0.9, 0.5, 0.4, 0.3])  # the best epoch is the first: "best" would stop and keep it
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda *a, **k: real_eval(*a, **k) | {"macro_f1": next(scores)})
    d = run(fjob(synth_root, None, select="last", epochs=4, patience=1, val_every=1), out=tmp_path / "ft", log=quiet,
            progress=False)
    info = json.loads((d / "run.json").read_text())
    assert [h["epoch"] for h in info["history"]] == [1, 2, 3, 4] and info["best"]["epoch"] == 4
    assert info["best"]["macro_f1"] == 0.3
    with pytest.raises(ConfigError, match="select"):
        TINY_FINETUNE.replace(select="worst")


def test_semi_supervised_finetuning_draws_only_the_unlabelled_training_windows(synth_root, pre_run, tmp_path, monkeypatch):
    job = fjob(synth_root, pre_run, unlabelled=1.0, label_rate=0.3)
    model, meta = fr.build_model(job)
    d = fr.load_data(job, meta, quiet)
    assert d.unlabelled is not None and len(d.unlabelled) == d.n_train - d.n_labelled > 0
    assert not row_hashes(d.unlabelled) & row_hashes(d.Xtr)  # the labelled subset is not drawn again
    assert not row_hashes(d.unlabelled) & row_hashes(val_windows(synth_root, d.split))  # nor validation windows
    assert fr.load_data(fjob(synth_root, pre_run, label_rate=0.3), meta, quiet).unlabelled is None  # off by default
    drawn = []
    real = fr.unlabelled_loss
    monkeypatch.setattr(fr, "unlabelled_loss", lambda m, tr, g: drawn.append(tr.unlabelled) or real(m, tr, g))
    out = run(job.__class__(**{**job.__dict__, "finetune": job.finetune.replace(epochs=2, threshold=0.0)}),
              out=tmp_path / "ft", log=quiet, progress=False)
    hist = json.loads((out / "run.json").read_text())["history"]
    assert drawn and all(torch.equal(t, torch.from_numpy(d.unlabelled)) for t in drawn)
    assert [h["pseudo_labelled"] for h in hist] == [1.0, 1.0]  # threshold 0: every drawn window trains
    with pytest.raises(ConfigError, match="augment"):
        TINY_FINETUNE.replace(unlabelled=1.0, augment=False)
    with pytest.raises(ConfigError, match="threshold"):
        TINY_FINETUNE.replace(threshold=1.0)


def test_the_unlabelled_loss_is_fixmatch_confident_argmax_of_the_plain_view_on_the_augmented_one():
    from crosshar.device import Precision
    from crosshar.models.heads import create_head

    torch.manual_seed(0)
    model = clf.HARClassifier(torch.nn.Identity(), None, create_head("linear", 6, 3))
    U = torch.randn(40, 12, 6)
    cfg = TINY_FINETUNE.replace(batch_size=8, unlabelled=1.0, unlabelled_ratio=2, threshold=0.5)
    strong = lambda x, g: -x  # noqa: E731  a stand-in augmentation: the sign flipped
    tr = SimpleNamespace(cfg=cfg, prec=Precision("cpu"), unlabelled=U, unlabelled_feats=None, aug=strong,
                         pseudo=[0, 0])
    g = torch.Generator().manual_seed(3)
    loss = fr.unlabelled_loss(model, tr, g)
    idx = torch.randint(40, (16,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        p = torch.softmax(model.head(U[idx]), -1)
    conf, y = p.max(-1)
    sure = conf >= 0.5
    want = torch.nn.functional.cross_entropy(model.head(-U[idx][sure]), y[sure], reduction="sum") / 16
    torch.testing.assert_close(loss, want)
    assert tr.pseudo == [int(sure.sum()), 16] and 0 < int(sure.sum()) < 16
    loss.backward()
    assert model.head.fc.weight.grad.abs().sum() > 0  # the strong view trains the head
    tr.cfg, tr.pseudo = cfg.replace(threshold=0.99), [0, 0]
    assert float(fr.unlabelled_loss(model, tr, torch.Generator().manual_seed(3))) == 0.0 and tr.pseudo == [0, 16]


def test_mixup_trains_on_the_mixed_input_against_the_same_mix_of_the_two_labels():
    from crosshar.models.heads import create_head

    torch.manual_seed(0)
    model = clf.HARClassifier(torch.nn.Identity(), None, create_head("linear", 6, 3))
    X, y = torch.randn(8, 12, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    tr = SimpleNamespace(cfg=TINY_FINETUNE.replace(mixup=0.4, label_smoothing=0.0), allowed=None, weight=None)
    loss = fr._mixup_loss(model, X, y, tr, torch.Generator().manual_seed(5))
    # the same draws, in the same order, from the same seed
    g = torch.Generator().manual_seed(5)
    lam = float(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g))).beta(0.4, 0.4))
    perm = torch.randperm(8, generator=g)
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(8))
    logits = model.head(lam * X + (1 - lam) * X[perm])
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm]))
    assert not torch.allclose(loss, ce(model.head(X), y))  # not the plain loss


def test_mixup_is_checked_in_the_config():
    from crosshar.config import FinetuneConfig

    with pytest.raises(ValueError, match="mixup"):
        FinetuneConfig(mixup=-0.1)
    with pytest.raises(ValueError, match="mixup"):
        FinetuneConfig(mixup=0.4, center_loss=0.1)


def test_balanced_class_weights_make_every_class_weigh_as_if_equally_frequent():
    w = fr.class_weights(np.array([0, 0, 0, 1, 2, 2, 4]), 3)  # code 4 >= K: a coarse label, not counted
    np.testing.assert_allclose(w, [6 / 9, 6 / 3, 6 / 6])
    np.testing.assert_allclose(w * np.bincount([0, 0, 0, 1, 2, 2]), [2, 2, 2])  # each class's total weight equal
    assert fr.class_weights(np.array([0, 0, 1]), 3)[2] == 0  # a class without a window weighs nothing


def test_the_balanced_loss_is_cross_entropy_weighted_by_class_and_reaches_the_run(synth_root, tmp_path, monkeypatch):
    from crosshar.config import FinetuneConfig

    logits, y = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    w = torch.tensor([0.5, 2.0, 2.0])
    tr = SimpleNamespace(cfg=TINY_FINETUNE.replace(label_smoothing=0.0), allowed=None, weight=w)
    ce = fr._criterion(tr)(logits, y)
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(logits, y, weight=w))
    assert not torch.allclose(ce, torch.nn.functional.cross_entropy(logits, y))
    seen, data = [], []
    real, real_data = fr._trainer, fr.load_data
    monkeypatch.setattr(fr, "_trainer", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    monkeypatch.setattr(fr, "load_data", lambda *a, **k: data.append(real_data(*a, **k)) or data[-1])
    d = run(fjob(synth_root, None, class_weight="balanced", epochs=1, label_rate=0.3), out=tmp_path / "ft", log=quiet,
            progress=False)
    ytr = np.bincount(data[0].ytr, minlength=4)
    assert len(set(ytr.tolist())) > 1  # the classes are not equally frequent: the weights differ
    expect = np.where(ytr > 0, ytr.sum() / (4 * np.maximum(ytr, 1)), 0)
    np.testing.assert_allclose(seen[0].weight.numpy(), expect, rtol=1e-6)
    assert json.loads((d / "run.json").read_text())["configs"]["finetune"]["class_weight"] == "balanced"
    with pytest.raises(ValueError, match="class_weight"):
        FinetuneConfig(class_weight="inverse")
    with pytest.raises(ValueError, match="coarse_labels"):
        FinetuneConfig(class_weight="balanced", coarse_labels=True)


@pytest.mark.parametrize("pretrained", [True, False], ids=["encoder", "no-pretrain"])
def test_validating_every_kth_epoch_keeps_the_same_model_and_scores_the_last(synth_root, pre_run, tmp_path, pretrained):
    """select = "last" selects nothing, so scoring the source's validation windows less often changes no weight; the
    history keeps every epoch's loss and the validated epochs' scores (every val_every-th and the last)."""
    enc = pre_run if pretrained else None
    runs = {k: run(fjob(synth_root, enc, select="last", epochs=7, val_every=k), out=tmp_path / f"v{k}", log=quiet,
                   progress=False) for k in (1, 3)}
    (a, _), (b, _) = (clf.load(d / "best.pt") for d in runs.values())
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    h1, h3 = (json.loads((d / "run.json").read_text())["history"] for d in runs.values())
    assert [h["train_loss"] for h in h1] == [h["train_loss"] for h in h3] and len(h3) == 7
    assert [h["epoch"] for h in h3 if "val_macro_f1" in h] == [3, 6, 7]
    assert [h1[e - 1]["val_macro_f1"] for e in (3, 6, 7)] == [h3[e - 1]["val_macro_f1"] for e in (3, 6, 7)]
    best = run(fjob(synth_root, enc, select="best", epochs=3, val_every=3, patience=5), out=tmp_path / "b", log=quiet,
               progress=False)
    assert all("val_macro_f1" in h for h in json.loads((best / "run.json").read_text())["history"])  # selection needs each
    with pytest.raises(ConfigError, match="val_every"):
        TINY_FINETUNE.replace(val_every=0)


def _weights(run_dir) -> dict:
    return checkpoint.load(run_dir / "best.pt")["state_dict"]


@pytest.mark.parametrize("pretrained,ft", [(True, {}), (False, {"head": "din", "select": "best", "val_every": 1,
                                                                "average_epochs": 1.0})],
                         ids=["frozen-encoder", "din-best-average"])
def test_an_interrupted_finetuning_resumes_to_the_weights_of_an_uninterrupted_run(synth_root, pre_run, tmp_path,
                                                                                 monkeypatch, pretrained, ft):
    """A finetuning cut short (Ctrl-C, a kill) had to start over. It now writes last.pt (at most every
    CHECKPOINT_EVERY_S seconds, here every epoch) and `resume` continues from it: the weights (dropout, augmentation,
    the weight average, the schedule) and the history are those of a run never interrupted; last.pt goes at the end."""
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    job = fjob(synth_root, pre_run if pretrained else None, epochs=4, **ft)
    whole = run(job, out=tmp_path / "whole", log=quiet, progress=False)
    assert not (whole / "last.pt").exists()
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(job, out=tmp_path / "cut", log=quiet, progress=False)
    assert checkpoint.load(tmp_path / "cut" / "last.pt", fr.STATE_FORMAT)["epoch"] == 1  # epochs 1-2 saved
    monkeypatch.setattr(fr, "train_one_epoch", real)
    logs: list[str] = []
    d = run(job, out=tmp_path / "cut", log=logs.append, progress=False, resume=True)
    assert any("resuming" in m and "epoch 3/4" in m for m in logs)
    a, b = _weights(whole), _weights(d)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    info_a, info_b = (json.loads((r / "run.json").read_text()) for r in (whole, d))
    assert info_b["finished"] is True and info_a["history"] == info_b["history"]
    assert info_a["best"] == info_b["best"] and not (d / "last.pt").exists()


def test_resume_refuses_another_job_other_data_and_a_finished_run(synth_root, tmp_path, monkeypatch):
    """last.pt belongs to one job: resuming it with another option (named) or other labelled windows is refused in
    one line; a finished run has nothing to resume; no last.pt starts the run from scratch, saying so."""
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    job = fjob(synth_root, None, epochs=4)
    cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(job, out=tmp_path / "cut", log=quiet, progress=False)
    with pytest.raises(fr.CrossharError, match=r"last\.pt: cannot resume: the configuration differs in finetune\.lr$"):
        run(fjob(synth_root, None, epochs=4, lr=3e-2), out=tmp_path / "cut", log=quiet, progress=False, resume=True)
    with pytest.raises(fr.CrossharError, match=r"differs in finetune\.label_rate, data \(n_labelled\)"):
        run(fjob(synth_root, None, epochs=4, label_rate=0.3), out=tmp_path / "cut", log=quiet, progress=False,
            resume=True)
    with pytest.raises(fr.CrossharError, match=r"differs in head"):
        run(dataclasses.replace(job, head_cfg={"dropout": 0.5}), out=tmp_path / "cut", log=quiet, progress=False,
            resume=True)
    monkeypatch.undo()
    done = run(job, out=tmp_path / "done", log=quiet, progress=False)
    with pytest.raises(fr.CrossharError, match=r"holds a finished run: nothing to resume"):
        run(job, out=done, log=quiet, progress=False, resume=True)
    logs: list[str] = []
    (tmp_path / "cut" / "last.pt").unlink()
    d = run(job, out=tmp_path / "cut", log=logs.append, progress=False, resume=True)
    assert any("last.pt not found; starting from scratch" in m for m in logs)
    assert json.loads((d / "run.json").read_text())["finished"] is True


def test_a_refused_resume_leaves_the_folder_as_it_was(synth_root, pre_run, tmp_path, monkeypatch):
    """finetune --resume --out <a pretraining run> wrote an unfinished finetuning run.json over the pretraining
    run's before its last.pt was refused (the encoder run was lost to every later lookup); a resume of another job
    rewrote the cut run's run.json likewise. Both are refused with the folder untouched, the first naming what it
    holds."""
    pre = tmp_path / "pre"
    shutil.copytree(pre_run, pre)
    before = (pre / "run.json").read_text()
    with pytest.raises(ConfigError, match=r"holds a pretraining run, not a finetuning run"):
        run(fjob(synth_root, None, epochs=4), out=pre, log=quiet, progress=False, resume=True)
    assert (pre / "run.json").read_text() == before
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(fjob(synth_root, None, epochs=4), out=tmp_path / "cut", log=quiet, progress=False)
    monkeypatch.setattr(fr, "train_one_epoch", real)
    before = (tmp_path / "cut" / "run.json").read_text()
    with pytest.raises(fr.CrossharError, match=r"differs in finetune\.head"):
        run(fjob(synth_root, None, epochs=4, head="din"), out=tmp_path / "cut", log=quiet, progress=False, resume=True)
    assert (tmp_path / "cut" / "run.json").read_text() == before


@pytest.mark.parametrize("entry, value", [("epoch", 0), ("history", []), ("best", {"epoch": 1}),
                                          ("best", {"macro_f1": 0.5, "epoch": 9})])
def test_resume_of_a_last_checkpoint_whose_history_disagrees_is_refused(synth_root, tmp_path, monkeypatch, entry,
                                                                        value):
    """A last.pt whose epoch was edited resumed silently into a run.json history with epochs twice (1, 2, 2, 3, 4)
    or missing; a best without its score failed with a KeyError mid-run. One line naming last.pt instead."""
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    job = fjob(synth_root, None, epochs=4, select="best", val_every=1)
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(job, out=tmp_path / "cut", log=quiet, progress=False)
    monkeypatch.setattr(fr, "train_one_epoch", real)
    last = tmp_path / "cut" / "last.pt"
    ck = checkpoint.load(last)
    checkpoint.save(last, ck | {entry: value})
    with pytest.raises(fr.CrossharError) as e:
        run(job, out=tmp_path / "cut", log=quiet, progress=False, resume=True)
    assert str(e.value).startswith(f"{last}: damaged or incompatible checkpoint") and "\n" not in str(e.value)


def test_with_select_best_last_pt_follows_every_best_pt(synth_root, tmp_path, monkeypatch):
    """last.pt came only every CHECKPOINT_EVERY_S: a best.pt written after it outlived a resume whose replay of the
    epochs since (exact on a CPU, not always on a GPU) found no better epoch, and run.json then named another epoch
    than the model best.pt held. Now every best.pt of --select best is followed by last.pt at once."""
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 1e9)  # never by time
    scores = iter([0.5, 0.6, 0.4, 0.3])
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda *a, **k: real_eval(*a, **k) | {"macro_f1": next(scores)})
    cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(fjob(synth_root, None, select="best", epochs=4, val_every=1), out=tmp_path / "ft", log=quiet,
            progress=False)
    state = checkpoint.load(tmp_path / "ft" / "last.pt", fr.STATE_FORMAT)
    best = checkpoint.load(tmp_path / "ft" / "best.pt")["meta"]
    assert state["epoch"] + 1 == state["best"]["epoch"] == len(best["history"]) == 2


def test_resume_without_out_takes_the_newest_unfinished_run_of_this_job(synth_root, tmp_path, monkeypatch):
    """--resume without --out took the newest unfinished run of the source whatever its job, and refused it when
    another finetuning had been cut after the one to continue; it now takes the newest of this very job."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    mine, other = fjob(synth_root, None, epochs=4), fjob(synth_root, None, epochs=4, lr=3e-2)
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(mine, log=quiet, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run(other, log=quiet, progress=False)  # cut later: the newest unfinished run of the source
    monkeypatch.setattr(fr, "train_one_epoch", real)
    logs: list[str] = []
    d = run(mine, log=logs.append, progress=False, resume=True)
    assert any("resuming" in m and "epoch 3/4" in m for m in logs)
    assert json.loads((d / "run.json").read_text())["finished"] is True


def test_a_resumed_run_shows_each_epoch_once_in_tensorboard(synth_root, tmp_path, monkeypatch):
    """TensorBoard held the epochs an interrupted run logged after its last checkpoint twice (once from the cut run,
    once replayed); the resumed writer now purges them, so each epoch shows once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 1e9)  # last.pt only after the best epochs below
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1, 0.0])  # the best is epoch 1: last.pt after it, epochs 2-3 then replayed
    real_eval = fr.evaluate
    monkeypatch.setattr(fr, "evaluate", lambda *a, **k: real_eval(*a, **k) | {"macro_f1": next(scores)})
    job = fjob(synth_root, None, select="best", epochs=4, val_every=1, patience=50)
    real = cut_finetuning_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(job, out=tmp_path / "ft", log=quiet, progress=False)
    monkeypatch.setattr(fr, "train_one_epoch", real)
    run(job, out=tmp_path / "ft", log=quiet, progress=False, resume=True)
    acc = EventAccumulator(str(tmp_path / "ft" / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("finetune/train_loss")] == [1, 2, 3, 4]


def test_sam_steps_with_the_gradient_at_the_worst_weights_applied_to_the_weights_as_they_were():
    from crosshar.device import Precision

    torch.manual_seed(0)
    X, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    model = torch.nn.Linear(5, 3)
    params = list(model.parameters())
    w0 = [p.detach().clone() for p in params]
    loss_at = lambda ws: torch.nn.functional.cross_entropy(torch.nn.functional.linear(X, *ws), y)  # noqa: E731
    # by hand: g0 at w0, the move e = rho g0 / ||g0||, the gradient g1 at w0 + e, one SGD step from w0 with g1
    ws = [t.clone().requires_grad_() for t in w0]
    g0 = torch.autograd.grad(loss_at(ws), ws)
    norm = torch.sqrt(sum((g ** 2).sum() for g in g0))
    moved = [(w + 0.05 * g / norm).requires_grad_() for w, g in zip(w0, g0)]
    g1 = torch.autograd.grad(loss_at(moved), moved)
    want = [w - 0.1 * g for w, g in zip(w0, g1)]

    opt = torch.optim.SGD(params, lr=0.1)
    moves = fr.sam_ascent(torch.nn.functional.cross_entropy(model(X), y), params, 0.05)
    assert moves is not None and all(p.grad is None for p in params)  # the first gradient is not accumulated
    torch.testing.assert_close(torch.sqrt(sum((e ** 2).sum() for _, e in moves)), torch.tensor(0.05))
    torch.testing.assert_close(params[0].detach(), moved[0].detach())  # at the worst weights now
    worst = torch.nn.functional.cross_entropy(model(X), y)
    Precision(torch.device("cpu")).step(worst, opt, params, 0.0, lambda: fr.sam_restore(moves))
    for p, w in zip(params, want):
        torch.testing.assert_close(p.detach(), w)
    plain = [w - 0.1 * g for w, g in zip(w0, g0)]  # an ordinary step lands elsewhere
    assert not torch.allclose(params[0].detach(), plain[0])


def test_sam_moves_nothing_on_a_zero_gradient_and_batch_norm_counts_each_batch_once():
    w = torch.nn.Parameter(torch.ones(3))
    assert fr.sam_ascent((w * 0).sum(), [w], 0.05) is None and torch.equal(w.detach(), torch.ones(3))
    bn = torch.nn.Sequential(torch.nn.BatchNorm1d(4)).train()
    x = torch.randn(8, 4) + 3
    with fr.running_stats_frozen(bn):
        out = bn(x)
    assert torch.equal(bn[0].running_mean, torch.zeros(4)) and bn[0].momentum == 0.1  # kept, and put back
    torch.testing.assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)  # the batch still normalises itself
    bn(x)
    assert not torch.equal(bn[0].running_mean, torch.zeros(4))


def test_sam_finetunes_a_different_model_and_is_checked_in_the_config(synth_root, pre_run, tmp_path):
    from crosshar.config import FinetuneConfig

    a = run(fjob(synth_root, pre_run, epochs=2), out=tmp_path / "plain", log=quiet, progress=False)
    b = run(fjob(synth_root, pre_run, epochs=2, sam=0.05), out=tmp_path / "sam", log=quiet, progress=False)
    wa, wb = (checkpoint.load(d / "best.pt")["state_dict"] for d in (a, b))
    head = [k for k in wa if k.startswith("head.") and wa[k].is_floating_point()]
    assert head and all(torch.isfinite(wb[k]).all() for k in head)
    assert any(not torch.equal(wa[k], wb[k]) for k in head)
    assert json.loads((b / "run.json").read_text())["configs"]["finetune"]["sam"] == 0.05
    with pytest.raises(ValueError, match="sam"):
        FinetuneConfig(sam=-0.1)
    with pytest.raises(ValueError, match="sam"):
        FinetuneConfig(sam=0.05, mixup=0.4)
    with pytest.raises(ValueError, match="sam"):
        FinetuneConfig(sam=0.05, unlabelled=1.0)


def test_class_style_mix_mixes_each_windows_statistics_with_another_of_its_class_only():
    torch.manual_seed(0)
    x = torch.randn(10, 30, 4) * torch.rand(10, 1, 4) * 3 + torch.randn(10, 1, 4) * 2
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0, 3, 1, 0])
    z = fr.class_style_mix(x, y, 1.0, torch.Generator().manual_seed(4))
    mu, sig = x.mean(1), x.std(1)
    zmu, zsig = z.mean(1), z.std(1)
    for i in range(10):
        same = (y == y[i]).nonzero().flatten()
        if len(same) == 1:  # alone in its class: its own statistics
            torch.testing.assert_close(z[i], x[i], atol=1e-5, rtol=1e-5)
            continue
        # the new mean is on the segment from its own to one same-class window's (the same weight for every channel)
        fits = []
        for j in same:
            d = mu[j] - mu[i]
            lam = float(((zmu[i] - mu[i]) * d).sum() / (d * d).sum()) if j != i else 0.0
            fits.append(float((zmu[i] - (mu[i] + lam * d)).abs().max()) if j != i else float((zmu[i] - mu[i]).abs().max()))
        assert min(fits) < 1e-4
        torch.testing.assert_close((z[i] - zmu[i]) / zsig[i], (x[i] - mu[i]) / sig[i], atol=1e-4, rtol=1e-4)  # content kept
    assert not torch.allclose(z, x)  # some windows took on another's statistics
    off = fr.class_style_mix(x, y, 0.0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(off, x, atol=1e-5, rtol=1e-5)  # p = 0: every window its own


def test_style_mix_rows_and_config():
    from crosshar.config import FinetuneConfig

    with pytest.raises(ValueError, match="style_mix"):
        FinetuneConfig(style_mix=1.5)
    with pytest.raises(ValueError, match="style_mix"):
        FinetuneConfig(style_mix=0.5, mixup=0.4)
    with pytest.raises(ValueError, match="style_mix"):
        FinetuneConfig(style_mix=0.5, sam=0.05)


def test_a_run_interrupted_before_its_head_gained_an_option_still_resumes(synth_root, tmp_path, monkeypatch):
    """DIN gained `mixstyle` after runs were written: a last.pt whose job lists every head option but that one resumed
    as "the configuration differs in head". The option reads as the head ran before it existed (its default); a
    last.pt that set it otherwise is still refused, naming the head."""
    from crosshar.models.heads import resolved_options

    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    job = dataclasses.replace(fjob(synth_root, None, epochs=3, head="din"), head_cfg=resolved_options("din", {}))
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(job, out=tmp_path / "cut", log=quiet, progress=False)
    monkeypatch.setattr(fr, "train_one_epoch", real)
    last = tmp_path / "cut" / "last.pt"
    ck = checkpoint.load(last, fr.STATE_FORMAT)
    assert ck["job"]["head"]["mixstyle"] == 0.0
    set_before = {**ck, "job": {**ck["job"], "head": {**ck["job"]["head"], "mixstyle": 0.5}}}
    checkpoint.save(last, set_before)
    with pytest.raises(fr.CrossharError, match=r"cannot resume: the configuration differs in head$"):
        run(job, out=tmp_path / "cut", log=quiet, progress=False, resume=True)
    older = {k: v for k, v in ck["job"]["head"].items() if k != "mixstyle"}  # written before the option existed
    checkpoint.save(last, {**ck, "job": {**ck["job"], "head": older}})
    d = run(job, out=tmp_path / "cut", log=quiet, progress=False, resume=True)
    assert json.loads((d / "run.json").read_text())["finished"] is True
