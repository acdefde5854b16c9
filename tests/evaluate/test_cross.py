"""Cross-dataset evaluation: label-space intersection and the stairs merge on hand-made cases,
results that regenerate from their stored predictions, and `cross` end to end on two synthetic
datasets (training a default model when none exists, then re-using it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import crosshar.evaluate.run as er
from crosshar.data.windows import WindowSet
from crosshar.errors import CrossharError, LeakageError
from crosshar.evaluate.run import cross, regenerate
from crosshar.inference import score
from crosshar.models.classifier import ModelEnsemble
from synthdata import WINDOW, custom_files, cut_finetuning_at, home, synth, synth_root, tiny_configs, write_tree  # noqa: F401

CROSSHAR4 = ["walking", "upstairs", "downstairs", "sitting&standing"]


class TableModel(nn.Module):
    """Returns the logits row given by each window's first value (a fake classifier)."""

    def __init__(self, logits: list[list[float]]):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits[x[:, 0, 0].long()]


def target(labels: list[str]) -> WindowSet:
    n = len(labels)
    X = np.zeros((n, 4, 6), np.float32)
    X[:, 0, 0] = np.arange(n)  # window i asks TableModel for row i
    return WindowSet(X, np.array(labels), np.array(["t:1"] * n), np.array(["s"] * n), "target", WINDOW)


def onehot(k: int, n: int = 4) -> list[float]:
    return [5.0 if i == k else 0.0 for i in range(n)]


def test_stairs_merge_and_label_intersection():
    """A model trained on upstairs/downstairs, scored on a dataset that only has "stairs" (WISDM)."""
    labels = ["walking", "stairs", "stairs", "sitting", "standing", "jogging"]
    preds = [0, 1, 2, 3, 0, 0]  # walking, upstairs, downstairs, sitting&standing, walking, (dropped)
    model = TableModel([onehot(k) for k in preds])
    rep, y, pred, space = score(model, {"classes": CROSSHAR4, "label_space": "crosshar4"}, target(labels))
    assert space.classes == ("walking", "stairs", "sitting&standing")
    assert y.tolist() == [0, 1, 1, 2, 2]  # jogging lies outside every class: not scored
    assert pred.tolist() == [0, 1, 1, 2, 0]  # upstairs and downstairs both count as stairs
    assert rep["n"] == 5 and rep["accuracy"] == pytest.approx(0.8)
    assert rep["confusion"] == [[1, 0, 0], [0, 2, 0], [1, 0, 1]]


def test_classes_the_target_lacks_are_masked_out_of_the_argmax():
    # the target has no downstairs and no sitting/standing: those model outputs cannot be predicted
    model = TableModel([[0.0, 1.0, 9.0, 8.0], [2.0, 0.0, 9.0, 9.0]])
    rep, y, pred, space = score(model, {"classes": CROSSHAR4}, target(["upstairs", "walking"]))
    assert space.classes == ("walking", "upstairs")
    assert pred.tolist() == [1, 0] and rep["accuracy"] == 1.0


def test_score_with_an_external_scorer_matches_the_model():
    """`logits_fn` (used to score exported ONNX models) goes through the same label mapping."""
    labels = ["walking", "stairs", "stairs", "sitting", "standing"]
    model = TableModel([onehot(k) for k in (0, 1, 2, 3, 1)])
    meta = {"classes": CROSSHAR4, "label_space": "crosshar4"}
    ref, *_ = score(model, meta, target(labels))
    probs = torch.softmax(model(torch.from_numpy(target(labels).X)), 1).numpy()
    seen = []

    def fn(X):
        seen.append(len(X))
        return probs[X[:, 0, 0].astype(int)]

    rep, *_ = score(None, meta, target(labels), logits_fn=fn)
    assert seen == [5] and rep == ref


def test_an_ensemble_scores_the_mean_of_the_models_probabilities():
    """Two models, each sure of a different class for window 1; the average decides by how sure each is."""
    a = TableModel([[4.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    b = TableModel([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 6.0, 0.0]])
    x = torch.from_numpy(target(["walking", "upstairs"]).X)
    pa, pb = (torch.softmax(m(x), 1) for m in (a, b))
    got = torch.softmax(ModelEnsemble([a, b])(x), 1)
    assert torch.allclose(got, (pa + pb) / 2, atol=1e-6)
    assert got.argmax(1).tolist() == [0, 2]  # window 1: b's 6.0 outweighs a's 3.0
    rep, *_ = score(ModelEnsemble([a, b]), {"classes": CROSSHAR4}, target(["walking", "downstairs"]))
    assert rep["accuracy"] == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        ModelEnsemble([a])


def test_a_target_without_any_model_class_is_an_error():
    with pytest.raises(CrossharError, match="no class in common"):
        score(TableModel([onehot(0)]), {"classes": ["walking", "upstairs"]}, target(["lying"]))


@pytest.mark.slow
def test_cross_end_to_end(synth, home, tiny_configs, monkeypatch):
    logs = []
    res = cross(["uci"], "motion", log=logs.append)
    assert any("training one with the default configs" in m for m in logs)
    out = home / "results" / "cross" / "uci_to_motion_linear"
    assert res["out"] == str(out)
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((out / "results.json").read_text())
    assert stored["source"] == ["uci"] and stored["target"] == "motion" and stored["head"] == "linear"
    assert stored["eval_classes"] == CROSSHAR4  # synthetic MotionSense has all four; jogging absent
    assert stored["metrics"]["n"] == 40 == len(stored["y_pred"])  # every target window is scored
    assert regenerate(out / "results.json") == stored["metrics"]
    # a default pretraining and finetuning run were made, and the finetuned run used the former
    pre = list((home / "runs" / "pretrain").glob("*/run.json"))
    ft = list((home / "runs" / "finetune").glob("*/run.json"))
    assert len(pre) == len(ft) == 1
    assert json.loads(ft[0].read_text())["encoder_run"] == str(pre[0].parent)

    # a second evaluation re-uses the finetuned run instead of training
    monkeypatch.setattr(er, "train_default", lambda *a, **k: pytest.fail("retrained"))
    logs.clear()
    with pytest.raises(CrossharError, match="earlier result"):  # never overwritten unless asked
        cross(["uci"], "motion", log=logs.append)
    res2 = cross(["uci"], "motion", log=logs.append, force=True)
    assert any("using the latest matching finetuned run" in m for m in logs)
    assert res2["metrics"] == stored["metrics"]

    # several runs are averaged: the same model twice scores as the model alone, in a folder of its own
    res3 = cross(["uci"], "motion", run=[ft[0].parent, ft[0].parent], log=logs.append)
    assert res3["out"] == str(home / "results" / "cross" / "uci_to_motion_linear+linear")

    # one body position of the target (synthetic MotionSense has one: all of it), in a folder of its own; a position
    # it lacks is refused before anything is trained
    res6 = cross(["uci"], "motion@Front trouser pocket", log=logs.append)
    assert res6["metrics"] == stored["metrics"] and res6["out"].endswith("uci_to_motion@front_trouser_pocket_linear")
    with pytest.raises(CrossharError, match="no recording at body position 'wrist'; its positions: front_trouser_pocket"):
        cross(["uci"], "motion@wrist", log=logs.append)
    assert res3["metrics"] == stored["metrics"] and res3["ensemble_runs"] == [str(ft[0].parent)] * 2

    # test-time views drawn from the run's own finetuning augmentation, which its checkpoint records
    logs.clear()
    res4 = cross(["uci"], "motion", log=logs.append, force=True, tta=3)
    assert res4["tta"] == 3 and stored["tta"] == 0 and res4["metrics"]["n"] == 40
    assert any("3 draws of the finetuning augmentation" in m for m in logs)
    assert res4["model_meta"]["augment"] == json.loads(ft[0].read_text())["configs"]["augment"]

    # fixed cadence views given to the stored model (what `crosshar export --cadence-views` puts in the graph)
    logs.clear()
    res5 = cross(["uci"], "motion", log=logs.append, force=True, cadence_views=3)
    assert res5["cadence_views"] == 3 and stored["cadence_views"] == 1 and res5["metrics"]["n"] == 40
    span = res5["model_meta"]["augment"]["cadence"]
    assert any(f"replayed at 3 speeds over {1 - span:.2f}-{1 + span:.2f}x" in m for m in logs)

    # a model whose encoder saw the target is refused
    info = json.loads(pre[0].read_text())
    pre[0].write_text(json.dumps(info | {"datasets": ["uci", "motion"]}))
    with pytest.raises(LeakageError, match="pretrained on 'motion'"):
        cross(["uci"], "motion", run=ft[0].parent, log=logs.append, force=True)


def _tree(root) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.slow
def test_cross_on_your_own_folder(synth, home, tiny_configs, tmp_path):
    """`cross -d uci -td ./mylab`: the source comes from the data folder, the target from its own
    folder (no symlinks, nothing written into either), and everything is named after the
    descriptor's `name`. A second run keeps the first result unless --force or a new name."""
    lab = tmp_path / "elsewhere" / "mylab_export"
    # another device: a gain error of +20 % (the synthetic signals are otherwise so close to the synthetic
    # UCI source that the leakage guard rightly calls them near-copies)
    write_tree(lab, custom_files(name="mylab", scale=1.2))
    before_src, before_lab = _tree(synth), _tree(lab)
    logs = []
    res = cross(["uci"], str(lab), log=logs.append)
    out = home / "results" / "cross" / "uci_to_mylab_linear"
    assert res["out"] == str(out) and res["target"] == "mylab"
    stored = json.loads((out / "results.json").read_text())
    assert stored["target"] == "mylab" and stored["target_folder"] == str(lab)
    assert stored["metrics"]["n"] == 3 * 5 * 2  # 3 subjects x 5 activities x 2 windows: every labelled window
    man = stored["target_manifest"]
    assert man["dataset"] == "mylab" and man["n_unlabelled_windows"] == 3  # the idle stretches, not scored
    assert "by_position" not in stored and "by_device" not in stored  # one position, one device: nothing to split
    assert list((home / "cache").glob("mylab-*.npz")) and not list((home / "cache").glob("custom-*"))
    assert _tree(synth) == before_src and _tree(lab) == before_lab  # neither data folder was touched
    assert any("about" in m and "in all" in m for m in logs)  # the implicit training was announced with a time

    with pytest.raises(CrossharError, match="earlier result.*--force"):
        cross(["uci"], str(lab), log=logs.append)
    again = cross(["uci"], str(lab), log=logs.append, name="second")
    assert again["out"] == str(home / "results" / "cross" / "second")
    assert cross(["uci"], str(lab), log=logs.append, force=True)["metrics"] == stored["metrics"]


@pytest.mark.slow
def test_cross_resumes_its_own_training_after_an_interrupt(synth, home, tiny_configs, monkeypatch):
    import crosshar.train.pretrain as pr

    real, calls = pr.train_one_epoch, []

    def interrupted(*a, **k):
        calls.append(a[5])  # the epoch
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pr, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cross(["uci"], "motion", log=lambda *_: None)
    assert not list((home / "results").glob("**/results.json"))
    logs = []
    cross(["uci"], "motion", log=logs.append)
    assert any("resuming the interrupted one" in m and "at epoch 2/2" in m for m in logs)
    assert calls == [0, 1, 1]  # epoch 0 was not trained again
    assert len(list((home / "runs" / "pretrain").glob("*/run.json"))) == 1


def test_cross_resumes_its_own_finetuning_after_an_interrupt(synth, home, tiny_configs, monkeypatch):
    """Ctrl-C in the finetuning `cross` started itself (after a checkpoint) used to start that finetuning over on the
    rerun; it now continues it (the same job's last.pt), and a last.pt of another job is left alone."""
    import crosshar.train.finetune as fr

    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    real, calls = fr.train_one_epoch, []

    def interrupted(model, X, y, tr, epoch, *a, **k):
        calls.append(epoch)
        if epoch == 2 and calls.count(2) == 1:
            raise KeyboardInterrupt
        return real(model, X, y, tr, epoch, *a, **k)

    monkeypatch.setattr(fr, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cross(["uci"], "motion", log=lambda *_: None, finetune_epochs=4)
    logs = []
    cross(["uci"], "motion", log=logs.append, finetune_epochs=4)
    assert any("resuming the interrupted finetuning" in m for m in logs)
    assert calls == [0, 1, 2, 2, 3]  # epochs 0-1 were not trained again
    runs = [json.loads(p.read_text()) for p in (home / "runs" / "finetune").glob("*/run.json")]
    assert len(runs) == 1 and runs[0]["finished"] and not list((home / "runs" / "finetune").glob("*/last.pt"))


def test_cross_finetunes_a_head_on_its_own_schedule(synth, home, tiny_configs, tmp_path, monkeypatch):
    """`cross --head gru` trains the head it has no run of with the schedule of configs/heads/gru.toml's [finetune]
    table (it did not learn at the shared one), as `crosshar finetune --head gru` and the matrix do; its
    finetune_epochs stays the caller's word. (The table's lr set apart from the tiny test schedule's here.)"""
    import crosshar.config as C

    real = C.config_dir()
    for f in real.rglob("*.toml"):
        (tmp_path / "configs" / f.relative_to(real)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "configs" / f.relative_to(real)).write_text(f.read_text())
    gru = tmp_path / "configs" / "heads" / "gru.toml"
    assert "\nlr = 1e-2\n" in gru.read_text()
    gru.write_text(gru.read_text().replace("\nlr = 1e-2\n", "\nlr = 2e-3\n"))
    monkeypatch.setattr(C, "config_dir", lambda: tmp_path / "configs")
    cross(["uci"], "motion", head="gru", log=lambda *_: None, finetune_epochs=1)
    (run,) = [json.loads(p.read_text()) for p in (home / "runs" / "finetune").glob("*/run.json")]
    ft = run["configs"]["finetune"]
    assert (ft["head"], ft["lr"], ft["epochs"]) == ("gru", 2e-3, 1) and C.load("finetune").lr != 2e-3


def test_cross_finetunes_anew_when_its_interrupted_finetuning_saw_other_data(synth, home, tiny_configs, monkeypatch):
    """A last.pt of this very job but of other data (the dataset changed since) made every rerun of cross stop with
    "cannot resume ... data"; cross now says so and finetunes anew."""
    import crosshar.train.finetune as fr
    from crosshar import checkpoint

    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        cross(["uci"], "motion", log=lambda *_: None, finetune_epochs=4)
    last = next((home / "runs" / "finetune").glob("*/last.pt"))
    ck = checkpoint.load(last)
    ck["data"]["n_labelled"] += 1
    checkpoint.save(last, ck)
    monkeypatch.setattr(fr, "train_one_epoch", real)
    logs = []
    res = cross(["uci"], "motion", log=logs.append, finetune_epochs=4)
    assert any("cannot resume" in m and "data (n_labelled)" in m and "finetuning anew" in m for m in logs)
    assert res["metrics"]["macro_f1"] >= 0


def test_unknown_target_fails_before_anything_is_announced(synth, home, monkeypatch):
    monkeypatch.setattr(er, "train_default", lambda *a, **k: pytest.fail("trained before refusing"))
    logs = []
    with pytest.raises(CrossharError, match="unknown dataset 'ucii'.*motion.*uci.*crosshar.toml"):
        cross(["uci"], "ucii", log=logs.append)
    assert logs == []


def test_cross_refuses_a_source_as_target(synth, home, monkeypatch):
    monkeypatch.setattr(er, "train_default", lambda *a, **k: pytest.fail("trained before refusing"))
    with pytest.raises(LeakageError, match="also a source"):
        cross(["uci", "motion"], "uci", log=lambda *_: None)


def test_regenerate_recomputes_from_predictions(tmp_path):
    from crosshar.metrics import classification_report

    y, p = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0])
    metrics = classification_report(y, p, ["a", "b", "c"])
    f = tmp_path / "results.json"
    f.write_text(json.dumps({"y_true": y.tolist(), "y_pred": p.tolist(), "eval_classes": ["a", "b", "c"], "metrics": metrics}))
    assert regenerate(f) == metrics
    # tampered predictions no longer reproduce the stored numbers
    f.write_text(json.dumps({"y_true": y.tolist(), "y_pred": y.tolist(), "eval_classes": ["a", "b", "c"], "metrics": metrics}))
    assert regenerate(f) != metrics


def test_committed_results_regenerate():
    """Every results.json committed under results/ or docs/results/ reproduces its metrics from its
    stored predictions."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    found = sorted([*(repo / "results").glob("**/results.json"), *(repo / "docs" / "results").glob("**/results.json")])
    if not found:
        pytest.skip("no committed results under results/")
    for f in found:
        stored = json.loads(f.read_text())["metrics"]
        again = regenerate(f)
        assert again["confusion"] == stored["confusion"], f
        for k in ("accuracy", "macro_f1", "weighted_f1", "gmean"):
            assert again[k] == pytest.approx(stored[k]), (f, k)


def test_the_report_prints_the_split_by_body_position(capsys):
    """print_report shows a table per split the results carry (by_position / by_device), one row per group."""
    from crosshar.evaluate.cli import print_report
    from crosshar.metrics import classification_report

    classes = ["walking", "upstairs"]
    rep = lambda y, p: classification_report(np.array(y), np.array(p), classes)  # noqa: E731
    res = {"source": ["uci"], "target": "shoaib", "head": "din", "run": "RUN", "eval_classes": classes,
           "metrics": rep([0, 0, 1, 1], [0, 1, 1, 1]), "out": "OUT",
           "by_position": {"belt": rep([0, 1], [0, 1]), "wrist": rep([0, 1], [1, 1])}}
    print_report(res)
    text = capsys.readouterr().out
    assert "by body position" in text and "by device" not in text
    assert any(line.count("belt") and "1.000" in line for line in text.splitlines())
    assert any(line.count("wrist") and "0.500" in line for line in text.splitlines())


def test_a_head_other_than_the_runs_is_refused(tmp_path, monkeypatch):
    """`cross --run RUN --head gru` scored RUN's DIN model and filed it under din: the gru request vanished."""
    from crosshar.errors import CrossharError
    from crosshar.evaluate.run import cross
    from crosshar.models import classifier
    from test_export import make_meta

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "crosshar.toml").write_text('name = "mylab"\nrate_hz = 50\nsubject_column = 0\nheader = false\n'
                                       "acc_columns = [1, 2, 3]\ngyro_columns = [4, 5, 6]\n")
    (lab / "a.csv").write_text("s1,0,9.8,0,0,0,0\n")
    meta = make_meta("linear", None)
    classifier.save(tmp_path / "run" / "best.pt", classifier.build(meta), meta)
    with pytest.raises(CrossharError, match="--head gru but --run holds a linear model"):
        cross(["uci"], str(lab), head="gru", run=tmp_path / "run", log=lambda *_: None)


def test_results_name_the_scored_runs_and_target_folder_by_absolute_path(synth, home, tmp_path, monkeypatch):
    """`cross --run runs/x` wrote "run": "runs/x" into results.json: read from another folder, it named no run."""
    from crosshar.models import classifier
    from test_export import make_meta

    work = tmp_path / "work"
    meta = make_meta("linear", None)
    classifier.save(work / "runs" / "x" / "best.pt", classifier.build(meta), meta)
    write_tree(work / "mylab", custom_files(name="mylab", scale=1.2))
    monkeypatch.chdir(work)
    res = cross(["uci"], "mylab", run="runs/x", out=Path("res"), log=lambda *_: None)
    stored = json.loads((work / "res" / "results.json").read_text())
    assert stored["run"] == str(work / "runs" / "x") and stored["target_folder"] == str(work / "mylab")
    assert res["metrics"]["n"] > 0
    cross(["uci"], "mylab", run=["runs/x", "runs/../runs/x/best.pt"], out=Path("two"), log=lambda *_: None)
    stored = json.loads((work / "two" / "results.json").read_text())
    assert stored["ensemble_runs"] == [str(work / "runs" / "x"), str(work / "runs" / "x" / "best.pt")]
    assert stored["model_meta"]["ensemble_runs"] == stored["ensemble_runs"]


def test_a_results_folder_another_cross_writes_is_refused_before_scoring(synth, home, tmp_path, monkeypatch):
    """Two `crosshar cross` into one results folder at once both scored and printed their own metrics, and the folder
    held one's confusion.png beside the other's results.json. The folder is named by the command (the default
    <source>_to_<target>_<head>, --name or --out), so the second is refused, not sent elsewhere."""
    import fcntl
    import os

    from crosshar.models import classifier
    from test_export import make_meta

    work = tmp_path / "work"
    meta = make_meta("linear", None)
    classifier.save(work / "runs" / "x" / "best.pt", classifier.build(meta), meta)
    write_tree(work / "mylab", custom_files(name="mylab", scale=1.2))
    monkeypatch.chdir(work)
    real_score = er.score
    monkeypatch.setattr(er, "score", lambda *a, **k: pytest.fail("scored before refusing"))
    for out, option in ((home / "results" / "cross" / "uci_to_mylab_linear", None), (work / "res", Path("res"))):
        out.mkdir(parents=True)
        fd = os.open(out, os.O_RDONLY)  # the lock as another running command's process holds it (train.runs.hold)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            with pytest.raises(CrossharError) as e:
                cross(["uci"], "mylab", run="runs/x", out=option, log=lambda *_: None)
            assert str(e.value) == (f"results folder {option or out} is being written by another running crosshar "
                                    "cross; wait for it to finish, or pass --name NAME (or --out DIR) to write elsewhere")
            assert not any(out.iterdir())
        finally:
            os.close(fd)
    monkeypatch.setattr(er, "score", real_score)
    res = cross(["uci"], "mylab", run="runs/x", out=Path("res"), log=lambda *_: None)  # released: written as before
    assert json.loads((work / "res" / "results.json").read_text())["metrics"] == res["metrics"]
    assert sorted(p.name for p in (work / "res").iterdir()) == ["confusion.png", "results.json"]  # no temporary left


def test_a_failed_cross_leaves_no_empty_results_folder_it_made(synth, home, tmp_path, monkeypatch):
    """`crosshar cross` that failed after taking its results folder (the target cannot be read, no class in common,
    Ctrl-C) left that folder behind, empty, where there was none before. Now it goes (with the parents the command
    made for it); a folder that was there before, or that holds a file, stays."""
    import fcntl
    import os

    from crosshar.errors import DataError
    from crosshar.models import classifier
    from test_export import make_meta

    work = tmp_path / "work"
    meta = make_meta("linear", None)
    classifier.save(work / "runs" / "x" / "best.pt", classifier.build(meta), meta)
    write_tree(work / "mylab", custom_files(name="mylab", scale=1.2))
    monkeypatch.chdir(work)
    real_prepare, real_score = er.prepare, er.score

    def fails(error):
        def f(*a, **k):
            raise error
        return f

    for stage, error in (("prepare", DataError("cannot be read", "mylab/a.csv", 3)),
                         ("score", CrossharError("no class in common")), ("score", KeyboardInterrupt())):
        monkeypatch.setattr(er, stage, fails(error))
        for out in (Path("res"), Path("deep/er/res")):
            with pytest.raises(type(error)):
                cross(["uci"], "mylab", run="runs/x", out=out, log=lambda *_: None)
            assert not (work / out).exists() and not (work / "deep").exists(), (stage, error, out)
        (work / "there").mkdir()  # a folder that was there before stays, empty or not
        with pytest.raises(type(error)):
            cross(["uci"], "mylab", run="runs/x", out=Path("there"), log=lambda *_: None)
        assert (work / "there").is_dir()
        (work / "there" / "notes.txt").write_text("mine")
        with pytest.raises(type(error)):
            cross(["uci"], "mylab", run="runs/x", out=Path("there"), log=lambda *_: None)
        assert (work / "there" / "notes.txt").read_text() == "mine"
        (work / "there" / "notes.txt").unlink()
        (work / "there").rmdir()
        monkeypatch.setattr(er, stage, real_prepare if stage == "prepare" else real_score)

    def score_while_held(*a, **k):  # the folder made anew after a removed one is locked, not passed by a stale hold
        fd = os.open(work / "res", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        return real_score(*a, **k)

    monkeypatch.setattr(er, "score", fails(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # the last folder this process held: removed
        cross(["uci"], "mylab", run="runs/x", out=Path("res"), log=lambda *_: None)
    assert not (work / "res").exists()
    monkeypatch.setattr(er, "score", score_while_held)
    res = cross(["uci"], "mylab", run="runs/x", out=Path("res"), log=lambda *_: None)
    assert json.loads((work / "res" / "results.json").read_text())["metrics"] == res["metrics"]


def test_an_out_that_cannot_be_a_folder_is_one_line(tmp_path):
    """--out naming a file, a path under a file, or a link to nowhere ended in a FileExistsError traceback."""
    from crosshar.errors import CrossharError
    from crosshar.evaluate.run import hold_results_dir

    (tmp_path / "f.csv").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out in (tmp_path / "f.csv", tmp_path / "f.csv" / "res", tmp_path / "dangling", tmp_path / "new" / "f.csv" / "x"):
        if out.parts[-3:-1] == ("new", "f.csv"):
            (tmp_path / "new").mkdir()
            (tmp_path / "new" / "f.csv").write_text("x")
        with pytest.raises(CrossharError, match=r"cannot be made .*pass --out a folder path") as e:
            hold_results_dir(out, force=False)
        assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "f.csv", "new"]  # nothing left behind


def test_a_results_folder_another_cross_writes_is_refused_before_training(synth, home, tmp_path, monkeypatch):
    """`crosshar cross` without --run trained its model (when none matched) and only then locked its results folder:
    a second one into the same folder trained in full before it was refused. Now the folder is locked before the
    training, stays locked through it (a training run's own hold on its run folder does not release it), and is
    released on every exit."""
    import fcntl
    import os

    from crosshar.models import classifier
    from crosshar.train import runs
    from test_export import make_meta

    work = tmp_path / "work"
    meta = make_meta("linear", None)
    classifier.save(work / "runs" / "x" / "best.pt", classifier.build(meta), meta)  # not under $CROSSHAR_HOME: no match
    write_tree(work / "mylab", custom_files(name="mylab", scale=1.2))
    monkeypatch.chdir(work)
    out = home / "results" / "cross" / "uci_to_mylab_linear"

    def locked(folder: Path) -> bool:  # as another process sees it
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    out.mkdir(parents=True)
    fd = os.open(out, os.O_RDONLY)  # the lock as another running command's process holds it
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    monkeypatch.setattr(er, "train_default", lambda *a, **k: pytest.fail("trained before refusing"))
    try:
        with pytest.raises(CrossharError, match=f"^results folder {out} is being written by another running"):
            cross(["uci"], "mylab", head="linear", log=lambda *_: None)
    finally:
        os.close(fd)

    def train_fails(*a, **k):
        assert locked(out)
        raise KeyboardInterrupt

    monkeypatch.setattr(er, "train_default", train_fails)
    with pytest.raises(KeyboardInterrupt):
        cross(["uci"], "mylab", head="linear", log=lambda *_: None)
    assert out.is_dir() and not locked(out)  # there before: kept, and released

    def train(*a, **k):
        runs.hold(work / "runs" / "x")  # what a training run does with its own folder
        assert locked(out), "a training run's hold released the results folder"
        return work / "runs" / "x"

    monkeypatch.setattr(er, "train_default", train)
    try:
        res = cross(["uci"], "mylab", head="linear", log=lambda *_: None)
    finally:
        runs.release(work / "runs" / "x")
    assert json.loads((out / "results.json").read_text())["metrics"] == res["metrics"]
    assert not locked(out)


def test_a_failed_cross_removes_the_folders_it_made_through_dotdot(synth, home, tmp_path, monkeypatch):
    """`cross --out a/../b/res` that failed removed res and b but left `a` (made on the way, then left by `..`)
    behind; folders that were there before stay."""
    from crosshar.errors import DataError
    from crosshar.models import classifier
    from test_export import make_meta

    work = tmp_path / "work"
    meta = make_meta("linear", None)
    classifier.save(work / "runs" / "x" / "best.pt", classifier.build(meta), meta)
    write_tree(work / "mylab", custom_files(name="mylab", scale=1.2))
    (work / "there").mkdir()
    monkeypatch.chdir(work)

    def fails(*a, **k):
        raise DataError("cannot be read", "mylab/a.csv", 3)

    monkeypatch.setattr(er, "prepare", fails)
    outs = ("a/../b/res", "a/../a/res", "a/b/../../c/res", "there/../d/res", "there/e/../../f", str(work / "g/../h"))
    for out in outs:
        with pytest.raises(DataError):
            cross(["uci"], "mylab", run="runs/x", out=Path(out), log=lambda *_: None)
        assert sorted(p.name for p in work.iterdir()) == ["mylab", "runs", "there"], out
        assert not any((work / "there").iterdir()), out
