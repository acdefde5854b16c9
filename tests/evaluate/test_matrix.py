"""`crosshar matrix`: every directed pair x method on two synthetic datasets, one input pipeline for
every row, a report that checks the targets and flags defects, and a rerun that trains nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import crosshar.evaluate.matrix as M
import crosshar.evaluate.methods as Me
import crosshar.evaluate.report as R
import crosshar.train.finetune as fr
import crosshar.train.pretrain as pr
from crosshar import checkpoint
from crosshar import config as C
from crosshar.errors import ConfigError
from crosshar.evaluate.matrix import MatrixConfig, run_matrix
from crosshar.evaluate.methods import METHODS, Method
from synthdata import cut_finetuning_at, home, synth, synth_root, tiny_configs  # noqa: F401

CROSS = ("scratch", "mask", "contrast", "crosshar", "crosshar_nomirror", "crosshar_device", "crosshar_full",
         "crosshar_paper")


def _meta(root, name: str) -> dict:
    return checkpoint.load(root / "runs" / name / "best.pt")["meta"]


def _ft_configs(root, name: str) -> dict:
    return json.loads((root / "runs" / name / "run.json").read_text())["configs"]


@pytest.mark.slow
def test_matrix_all_methods_one_input_pipeline_and_resume(synth, home, tiny_configs, monkeypatch):
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, pretrain_epochs=2, finetune_epochs=2,
                      methods=CROSS + ("crosshar_skip", "scratch_encoder", "scratch_frozen", "oracle", "oracle_full", "oracle_scratch"))
    root = home / "results" / "m"
    report = run_matrix(mc, root, log=lambda *_: None)
    rows = [json.loads(l) for l in (root / "rows.jsonl").read_text().splitlines()]
    cells = {(r["source"], r["target"], r["method"]) for r in rows}
    assert cells == ({(s, t, m) for s, t in [("uci", "motion"), ("motion", "uci")] for m in CROSS + ("crosshar_skip", "scratch_encoder", "scratch_frozen")}
                     | {(t, t, o) for t in ("uci", "motion") for o in ("oracle", "oracle_full", "oracle_scratch")})
    assert len(rows) == len(cells)
    assert all(0 <= r["macro_f1"] <= 1 and r["n"] > 0 and r["cpu_seconds"] >= 0 for r in rows)
    assert {r["window"] for r in rows} == {""}  # each row names its cell's window (the default one here)
    # the oracle is tested on the target's held-out subjects only, not on all of its windows
    oracle_uci = next(r for r in rows if r["method"] == "oracle" and r["target"] == "uci")
    cross_uci = next(r for r in rows if r["method"] == "crosshar" and r["target"] == "uci")
    assert oracle_uci["n"] < cross_uci["n"] == 120

    # one input pipeline: scratch differs from crosshar in the pretraining only
    scratch, hier = _meta(root, "finetune-uci-scratch-linear-s0"), _meta(root, "finetune-uci-crosshar-linear-s0")
    assert (scratch["frame"], scratch["scaling"]) == (hier["frame"], hier["scaling"]) == ("gravity", "physical")
    assert scratch["encoder"] is None and hier["encoder"] is not None
    sc, hc = _ft_configs(root, "finetune-uci-scratch-linear-s0"), _ft_configs(root, "finetune-uci-crosshar-linear-s0")
    assert sc["augment"] == hc["augment"] and sc["augment"]["mirror_p"] > 0
    assert sc["finetune"] == hc["finetune"] and sc["head"] == hc["head"]
    # the ablations change their factor only
    assert _ft_configs(root, "finetune-uci-crosshar_nomirror-linear-s0")["augment"]["mirror_p"] == 0
    nm = json.loads((root / "runs" / "pretrain-uci-crosshar_nomirror-s0" / "run.json").read_text())
    assert nm["configs"]["augment"]["mirror_p"] == 0
    assert _meta(root, "finetune-uci-crosshar_device-linear-s0")["frame"] == "device"
    assert _ft_configs(root, "finetune-uci-crosshar_full-linear-s0")["finetune"]["freeze"] is False
    assert not (root / "runs" / "pretrain-uci-crosshar_full-s0").exists()  # shares crosshar's pretraining
    # the paper recipe: instance norm, one shared post-norm layer, TS-TCC views, its own transformer head
    paper = json.loads((root / "runs" / "pretrain-uci-crosshar_paper-s0" / "run.json").read_text())["configs"]
    assert paper["encoder"]["input_scaling"] == "instance" and paper["encoder"]["norm"] == "post"
    assert paper["encoder"]["n_layers"] == 1 and paper["pretrain"]["views"] == "tstcc"
    assert paper["pretrain"]["mask_per_window"] and paper["augment"]["mirror_p"] == 0
    pm = _meta(root, "finetune-uci-crosshar_paper-transformer-s0")
    assert pm["head"] == "transformer" and pm["head_cfg"]["d_ff"] == 2048
    # crosshar_skip: the head reads the embedding and the window; oracle_scratch: no encoder, same test subjects
    assert _meta(root, "finetune-uci-crosshar_skip-linear-s0")["head_input"] == "embedding+window"
    assert _meta(root, "finetune-uci-oracle_scratch-linear-s0")["encoder"] is None
    # scratch_encoder: crosshar_full's architecture and finetuning, without the pretraining
    se, cf = _meta(root, "finetune-uci-scratch_encoder-linear-s0"), _meta(root, "finetune-uci-crosshar_full-linear-s0")
    assert se["encoder"] == cf["encoder"] and se["pretrain_run"] is None and cf["pretrain_run"] is not None
    assert _ft_configs(root, "finetune-uci-scratch_encoder-linear-s0")["finetune"]["freeze"] is False
    # scratch_frozen: crosshar's architecture and frozen encoder, without the pretraining
    sf, hc = _meta(root, "finetune-uci-scratch_frozen-linear-s0"), _meta(root, "finetune-uci-crosshar-linear-s0")
    assert sf["encoder"] == hc["encoder"] and sf["pretrain_run"] is None and hc["pretrain_run"] is not None
    assert _ft_configs(root, "finetune-uci-scratch_frozen-linear-s0")["finetune"] == \
        _ft_configs(root, "finetune-uci-crosshar-linear-s0")["finetune"]
    orc = {r["method"]: r for r in rows if r["target"] == "uci" and r["method"].startswith("oracle")}
    assert orc["oracle"]["n"] == orc["oracle_scratch"]["n"] and "confusion" in orc["oracle"]
    # oracle_full uses every training label of the target
    assert _ft_configs(root, "finetune-uci-oracle_full-linear-s0")["finetune"]["label_rate"] == 1.0
    # oracles train to convergence (every epoch, the last of equal validation scores); transfer rows stop early
    for name in ("oracle", "oracle_full", "oracle_scratch"):
        ft = _ft_configs(root, f"finetune-uci-{name}-linear-s0")["finetune"]
        assert ft["ties"] == "last" and ft["patience"] == ft["epochs"], name
    ft = _ft_configs(root, "finetune-uci-crosshar-linear-s0")["finetune"]
    assert ft["ties"] == "first" and ft["patience"] == C.load("finetune").patience
    # the "mask" method pretrains stage 1 only, "contrast" stage 2 only with no reconstruction
    mask = json.loads((root / "runs" / "pretrain-uci-mask-s0" / "run.json").read_text())
    contrast = json.loads((root / "runs" / "pretrain-uci-contrast-s0" / "run.json").read_text())
    assert [h["stage"] for h in mask["history"]] == [1, 1]
    assert [h["stage"] for h in contrast["history"]] == [2, 2] and contrast["configs"]["pretrain"]["w_mse"] == 0

    text = report.read_text()
    for pair in ("| uci → motion |", "| motion → uci |"):
        assert sum(line.startswith(pair) and "(1)" in line for line in text.splitlines()) == 1  # one row per pair
    assert "crosshar − scratch" in text and "crosshar / oracle" in text and "crosshar − crosshar_paper" in text
    assert "Upstairs / downstairs F1" in text and "## Time" in text

    # resumable: a second call adds no rows and trains nothing
    monkeypatch.setattr(pr, "run", lambda *a, **k: pytest.fail("pretrained again"))
    monkeypatch.setattr(fr, "run", lambda *a, **k: pytest.fail("finetuned again"))
    before = (root / "rows.jsonl").read_text()
    run_matrix(mc, root, log=lambda *_: None)
    assert (root / "rows.jsonl").read_text() == before


def test_plan_leave_one_dataset_out_and_shards(monkeypatch):
    monkeypatch.setattr(M, "target_profile", lambda t: C.WindowConfig(channels="acc") if t == "hhar" else C.WindowConfig())
    mc = MatrixConfig(("uci", "motion", "wisdm"), ("din",), seeds=2, methods=("crosshar", "multi", "oracle", "crosshar_wide"),
                      targets_only=("hhar",))
    cells = M.plan(mc)
    # crosshar_wide: one model per pair, pretrained on every matrix dataset but the target
    wide = {(c.sources, c.targets) for c in cells if c.method == "crosshar_wide" and c.seed == 0}
    assert len(wide) == 9 and (("uci",), ("motion",)) in wide and (("uci",), ("hhar",)) in wide
    assert M.wide_sources(mc, "motion") == ("uci", "wisdm") and M.wide_sources(mc, "hhar") == mc.datasets
    multi = {(c.sources, c.targets) for c in cells if c.method == "multi" and c.seed == 0}
    assert multi == {(("motion", "wisdm"), ("uci",)), (("uci", "wisdm"), ("motion",)),
                     (("uci", "motion"), ("wisdm",)), (("uci", "motion", "wisdm"), ("hhar",))}
    # a source is scored on targets of its own window profile in one cell, on acc-only hhar in another
    uci = [c for c in cells if c.method == "crosshar" and c.sources == ("uci",) and c.seed == 0]
    assert sorted(c.targets for c in uci) == [("hhar",), ("motion", "wisdm")]
    # every target has an oracle, trained on its own training subjects in its own window profile
    oracles = {(c.targets, c.window.channels) for c in cells if c.method == "oracle" and c.seed == 1}
    assert oracles == {(("uci",), "acc+gyro"), (("motion",), "acc+gyro"), (("wisdm",), "acc+gyro"), (("hhar",), "acc")}
    # shards partition the cells, keeping each pretraining run's cells together
    parts = [M.plan(MatrixConfig(**{**mc.__dict__, "shard": (k, 3)})) for k in range(3)]
    assert sorted(map(repr, sum(parts, []))) == sorted(map(repr, cells))
    for p in parts:
        assert not any({M.group_key(mc, c) for c in p} & {M.group_key(mc, c) for c in q} for q in parts if q is not p)


def test_groups_keep_a_pretraining_run_in_one_process(monkeypatch):
    monkeypatch.setattr(M, "target_profile", lambda t: C.WindowConfig())
    mc = MatrixConfig(("uci", "motion", "wisdm"), ("din",), seeds=2,
                      methods=("scratch", "crosshar", "crosshar_full", "mask", "oracle", "oracle_scratch", "multi", "crosshar_wide"))
    cells = M.plan(mc)
    gs = M.groups(mc, cells)
    assert sorted(map(repr, sum(gs, []))) == sorted(map(repr, cells))
    assert [len(g) for g in gs] == sorted((len(g) for g in gs), reverse=True)  # the largest first
    key = {(c.method, c.sources, c.targets, c.seed): M.group_key(mc, c) for c in cells}
    # crosshar, crosshar_full and both oracles of uci use uci's crosshar run (the oracles for its split)
    same = {key[(m, ("uci",), t, 0)] for m, t in [("crosshar", ("motion", "wisdm")), ("crosshar_full", ("motion", "wisdm")),
                                                     ("oracle", ("uci",)), ("oracle_scratch", ("uci",))]}
    assert len(same) == 1
    # multi's run on motion + wisdm is crosshar_wide's run for the target uci
    assert key[("multi", ("motion", "wisdm"), ("uci",), 0)] == key[("crosshar_wide", ("motion",), ("uci",), 0)]
    # mask pretrains its own run; scratch pretrains nothing: each its own group; seeds apart
    assert key[("mask", ("uci",), ("motion", "wisdm"), 0)] not in same
    assert key[("scratch", ("uci",), ("motion", "wisdm"), 0)] != key[("scratch", ("motion",), ("uci", "wisdm"), 0)]
    assert key[("crosshar", ("uci",), ("motion", "wisdm"), 1)] not in same


def test_a_claim_excludes_other_processes_until_released_or_dead(tmp_path, monkeypatch):
    held = M.claim(tmp_path, "s0|uci|crosshar")
    assert held is not None and json.loads(held.read_text())["pid"] == os.getpid()
    assert M.claim(tmp_path, "s0|uci|crosshar") is None  # held by a living process (this one)
    assert M.claim(tmp_path, "s0|motion|crosshar") is not None  # another group is free
    held.unlink()
    assert M.claim(tmp_path, "s0|uci|crosshar") is not None
    # a claim whose process has died on this host is taken over; one from another host is respected
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = M.claim(tmp_path, "s1|uci|crosshar")
    path.write_text(json.dumps({"key": "s1|uci|crosshar", "pid": int(dead.stdout), "host": M.socket.gethostname()}))
    assert M.claim(tmp_path, "s1|uci|crosshar") == path and json.loads(path.read_text())["pid"] == os.getpid()
    path.write_text(json.dumps({"key": "s1|uci|crosshar", "pid": int(dead.stdout), "host": "elsewhere"}))
    assert M.claim(tmp_path, "s1|uci|crosshar") is None


def test_unknown_method_and_bad_shard_are_config_errors():
    from crosshar.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown method"):
        MatrixConfig(("uci", "motion"), ("din",), methods=("crosshar", "magic"))
    with pytest.raises(ConfigError, match="shard"):
        MatrixConfig(("uci", "motion"), ("din",), shard=(2, 2))


def test_pretrain_keys_share_runs_only_where_pretraining_is_identical():
    keys = {name: M._pretrain_key(m) for name, m in METHODS.items() if m.pretrain}
    assert keys["crosshar_full"] == keys["oracle"] == keys["oracle_full"] == keys["multi"] == "crosshar"
    assert len({keys[k] for k in ("mask", "contrast", "crosshar", "crosshar_nomirror", "crosshar_device",
                                   "crosshar_upright", "crosshar_paper")}) == 7
    assert M._pretrain_key(Method("x", mirror=False, frame="device")) == "crosshar_nomirror_device"


def test_upright_changes_the_pretraining_orientation_only():
    w = C.load("window")
    base, up = M.method_configs(METHODS["crosshar"], w), M.method_configs(METHODS["crosshar_upright"], w)
    assert base["augment"].rotation_p == 1.0 and up["augment"].rotation_p == 0.0
    assert up["augment"].tilt_deg == up["augment_finetune"].tilt_deg > 0
    # the only change is the orientation draw: the finetuning augmentation and every other config are the same
    assert up["augment"].replace(rotation_p=1.0, tilt_deg=base["augment"].tilt_deg) == base["augment"]
    assert {k: v for k, v in up.items() if k != "augment"} == {k: v for k, v in base.items() if k != "augment"}
    # what the README tells users: `crosshar pretrain --augment-config configs/augment_finetune.toml` is this row
    assert up["augment"] == up["augment_finetune"] == C.load("augment", path=C.config_dir() / "augment_finetune.toml")


def test_cadence_rows_change_the_time_warp_only():
    """crosshar_cadence widens the time warp in both stages (its own pretraining run); crosshar_cadenceft in
    finetuning only (crosshar's pretraining run); scratch_cadence is scratch with the wider warp."""
    w = C.load("window")
    base = M.method_configs(METHODS["crosshar"], w)
    both, ft = M.method_configs(METHODS["crosshar_cadence"], w), M.method_configs(METHODS["crosshar_cadenceft"], w)
    assert both["augment"].cadence == both["augment_finetune"].cadence == ft["augment_finetune"].cadence == 0.25
    assert ft["augment"] == base["augment"] and both["augment"] == base["augment"].replace(cadence=0.25)
    assert ft["augment_finetune"] == base["augment_finetune"].replace(cadence=0.25)
    assert M._pretrain_key(METHODS["crosshar_cadenceft"]) == "crosshar"
    assert M._pretrain_key(METHODS["crosshar_cadence"]) == "crosshar_cadence0.25"
    sc = M.method_configs(METHODS["scratch_cadence"], w)
    assert sc["augment_finetune"] == M.method_configs(METHODS["scratch"], w)["augment_finetune"].replace(cadence=0.25)


def test_vertical_rows_change_the_input_frame_only():
    """scratch_vertical, crosshar_vertical and scratch_vertical_long_last are scratch, crosshar and scratch_long_last
    with the vertical frame; crosshar_vertical pretrains its own encoder (a frame changes what the encoder sees)."""
    w = C.load("window")
    for name, base in (("scratch_vertical", "scratch"), ("crosshar_vertical", "crosshar"),
                       ("scratch_vertical_long_last", "scratch_long_last")):
        a, b = M.method_configs(METHODS[name], w), M.method_configs(METHODS[base], w)
        assert a["encoder"] == b["encoder"].replace(input_frame="vertical") and b["encoder"].input_frame == "gravity"
        assert {k: v for k, v in a.items() if k != "encoder"} == {k: v for k, v in b.items() if k != "encoder"}
    assert M._pretrain_key(METHODS["crosshar_vertical"]) not in ("crosshar", None)
    a, b = M.method_configs(METHODS["scratch_coupled"], w), M.method_configs(METHODS["scratch"], w)
    assert a["encoder"] == b["encoder"].replace(input_frame="coupled")
    assert {k: v for k, v in a.items() if k != "encoder"} == {k: v for k, v in b.items() if k != "encoder"}


def test_arrow_row_changes_the_pretraining_loss_only():
    w = C.load("window")
    base, arrow = M.method_configs(METHODS["crosshar"], w), M.method_configs(METHODS["crosshar_arrow"], w)
    assert base["pretrain"].arrow == 0.0 and arrow["pretrain"] == base["pretrain"].replace(arrow=1.0)
    assert {k: v for k, v in arrow.items() if k != "pretrain"} == {k: v for k, v in base.items() if k != "pretrain"}
    assert M._pretrain_key(METHODS["crosshar_arrow"]) == "crosshar_arrow1"  # its own pretraining runs
    mc = MatrixConfig(("uci", "motion"), ("din",))
    assert M.pretrain_cfg(METHODS["crosshar_arrow"], arrow["pretrain"], mc, 0).arrow == 1.0


def test_inspace_row_changes_the_pretraining_windows_only_at_the_same_optimiser_steps():
    w = C.load("window")
    base, ins = M.method_configs(METHODS["crosshar"], w), M.method_configs(METHODS["crosshar_inspace"], w)
    assert base["pretrain"].activities == "" and ins["pretrain"] == base["pretrain"].replace(activities="crosshar4")
    assert {k: v for k, v in ins.items() if k != "pretrain"} == {k: v for k, v in base.items() if k != "pretrain"}
    assert M._pretrain_key(METHODS["crosshar_inspace"]) == "crosshar_actcrosshar4"  # its own pretraining runs
    mc = MatrixConfig(("uci", "wisdm"), ("din",))
    # WISDM: 10,904 windows, 2,436 of them in crosshar4; its epochs (and warm-up) stretch to the whole source's steps
    whole = M.pretrain_cfg(METHODS["crosshar"], base["pretrain"], mc, 0, 10904)
    kept = M.pretrain_cfg(METHODS["crosshar_inspace"], ins["pretrain"], mc, 0, 10904, 2436)
    assert kept.epochs > whole.epochs
    assert kept.epochs * 2436 == pytest.approx(whole.epochs * 10904, rel=0.05)
    assert kept.warmup_epochs / kept.epochs == pytest.approx(whole.warmup_epochs / whole.epochs, rel=0.15)
    nothing_out = M.pretrain_cfg(METHODS["crosshar_inspace"], ins["pretrain"], mc, 0, 2114, 2114)
    assert nothing_out == M.pretrain_cfg(METHODS["crosshar_inspace"], ins["pretrain"], mc, 0, 2114)


def test_pretrain_scale_rows_change_the_pretraining_epochs_only():
    w = C.load("window")
    base = M.method_configs(METHODS["crosshar"], w)
    for k in (3, 10):
        m = METHODS[f"crosshar_pre{k}x"]
        assert M.method_configs(m, w) == base  # the configs are crosshar's; only the epochs pretrain_cfg sets differ
        assert M._pretrain_key(m) == f"crosshar_pre{k}x"  # its own pretraining runs
    mc = MatrixConfig(("uci", "wisdm"), ("din",))
    one, three, ten = (M.pretrain_cfg(METHODS[n], base["pretrain"], mc, 0, 1700)
                       for n in ("crosshar", "crosshar_pre3x", "crosshar_pre10x"))
    assert (one.stage1_epochs, one.stage2_epochs) == (1, 1)  # configs/pretrain.toml's, at the reference size
    assert (three.stage1_epochs, three.stage2_epochs) == (3, 3) and (ten.stage1_epochs, ten.stage2_epochs) == (10, 10)
    assert ten.replace(stage1_epochs=1, stage2_epochs=1) == one  # the warm-up and everything else unchanged
    # a larger source gets fewer epochs (about the reference's optimiser steps), never under 1 + 1
    assert M.pretrain_cfg(METHODS["crosshar_pre10x"], base["pretrain"], mc, 0, 10904).epochs == 3
    assert M.pretrain_cfg(METHODS["crosshar_pre3x"], base["pretrain"], mc, 0, 10904).epochs == 2


def test_matrix_preset_reaches_every_finetune(tmp_path, monkeypatch):
    """`--preset paper`: each finetune of a recipe-less method gets the paper's head options and
    recipe, in a run folder that names the preset (no clash with default runs)."""
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("danhar",), seeds=1, preset="paper", finetune_epochs=1)
    window = C.load("window")
    out = finetune_run(tmp_path, ("uci",), METHODS["scratch"], "danhar", 0, mc, window, None)
    assert "danhar@paper" in out.name
    job = jobs[0]
    assert job.head_cfg["channels"] == [128, 256, 384] and job.head_cfg["pool"] == "flatten"
    assert (job.finetune.optimizer, job.finetune.lr_schedule, job.finetune.epochs) == ("adam", "step", 1)
    finetune_run(tmp_path, ("uci",), METHODS["crosshar_paper"], "danhar", 0, mc, window, None)
    assert jobs[1].finetune.head == "transformer" and "channels" not in jobs[1].head_cfg  # a recipe keeps its head


def finetune_jobs(tmp_path, monkeypatch, names, encoder, head: str = "din", **mc) -> list:
    """The finetune jobs `finetune_run` builds for matrix rows `names` (source uci, `head`, seed 0), none run."""
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    cfg = MatrixConfig(("uci", "motion"), (head,), seeds=1, **mc)
    for name in names:
        finetune_run(tmp_path, ("uci",), METHODS[name], head, 0, cfg, C.load("window"), encoder)
    return jobs


def test_a_matrix_recipe_reaches_every_row_without_its_own_and_crosshar_paper_keeps_the_paper(tmp_path, monkeypatch):
    """`--recipe R`: every row without a recipe of its own reads R's tables (here a recipe file written for the test);
    crosshar_paper's rows stay the paper's, whatever the matrix's recipe."""
    recipes = tmp_path / "configs" / "recipes"
    recipes.mkdir(parents=True)
    real = C.config_dir()
    for f in real.rglob("*.toml"):
        (tmp_path / "configs" / f.relative_to(real)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "configs" / f.relative_to(real)).write_text(f.read_text())
    (recipes / "next.toml").write_text("[pretrain]\nmse_channels = \"raw\"\n[finetune]\nlabel_smoothing = 0.3\n"
                                       "[heads.din]\nattn_dropout = 0.2\n")
    monkeypatch.setattr(C, "config_dir", lambda: tmp_path / "configs")
    rows = ("scratch", "crosshar", "crosshar_paper")
    base = finetune_jobs(tmp_path / "a", monkeypatch, rows, tmp_path / "enc")
    nxt = finetune_jobs(tmp_path / "b", monkeypatch, rows, tmp_path / "enc", recipe="next")
    for b, n in zip(base[:2], nxt[:2]):
        assert n.finetune == b.finetune.replace(label_smoothing=0.3) and n.head_cfg == b.head_cfg | {"attn_dropout": 0.2}
    assert nxt[2] == base[2]  # crosshar_paper: the paper's recipe either way
    from crosshar.evaluate.methods import METHODS

    w = C.load("window")
    assert M.method_configs(METHODS["crosshar"], w, "next")["pretrain"].mse_channels == "raw"
    paper, mc = METHODS["crosshar_paper"], MatrixConfig(("uci", "motion"), ("din",), recipe="next")
    assert M.method_configs(paper, w, mc.recipe_of(paper)) == M.method_configs(paper, w)
    with pytest.raises(ConfigError, match="--recipe 'nonsense' is not a shipped recipe"):
        MatrixConfig(("uci", "motion"), ("din",), recipe="nonsense")


def test_a_folder_of_one_recipe_refuses_rows_of_another(tmp_path):
    """schedule.json names the recipe; a folder written before --recipe existed holds the shipped configs' rows."""
    root = tmp_path / "m"
    root.mkdir()
    mc = MatrixConfig(datasets=("uci", "motion"), heads=("din",), methods=("scratch",))
    old = M.schedule(mc)
    del old["recipe"]
    (root / M.SCHEDULE).write_text(json.dumps(old))
    M.check_schedule(mc, root, report_only=True)
    with pytest.raises(ConfigError, match=r"recipe 'default' \(asked: 'next'\)"):
        M.check_schedule(dataclasses.replace(mc, recipe="next"), root, report_only=False)


def test_skip_long_differs_from_crosshar_long_in_the_head_input_only(tmp_path, monkeypatch):
    """crosshar_skip_long_last: crosshar_long_last's pretraining run and finetune job (120 epochs, last kept),
    with the head reading the scaled window beside the embedding."""
    from crosshar.evaluate.methods import METHODS

    long, skip = finetune_jobs(tmp_path, monkeypatch, ("crosshar_long_last", "crosshar_skip_long_last"), tmp_path / "enc")
    assert (skip.finetune.head_input, long.finetune.head_input) == ("embedding+window", "embedding")
    assert skip.finetune.epochs == long.finetune.epochs == 3 * C.load("finetune").epochs
    assert skip.finetune.replace(head_input="embedding") == long.finetune and skip.encoder_run == long.encoder_run
    assert M._pretrain_key(METHODS["crosshar_skip_long_last"]) == "crosshar"


def test_vertical_long_differs_from_crosshar_vertical_in_the_schedule_only(tmp_path, monkeypatch):
    """crosshar_vertical_long_last: crosshar_vertical's pretraining run, finetuned crosshar_long_last's way
    (120 epochs, the last kept); it differs from crosshar_long_last in the frame only."""
    from crosshar.evaluate.methods import METHODS

    vert, vlong, long = finetune_jobs(tmp_path, monkeypatch, ("crosshar_vertical", "crosshar_vertical_long_last",
                                                              "crosshar_long_last"), tmp_path / "enc")
    assert vlong.finetune.epochs == 3 * vert.finetune.epochs and vlong.finetune.select == "last"
    assert vlong.finetune.replace(epochs=vert.finetune.epochs, select=vert.finetune.select) == vert.finetune
    assert (vlong.pipeline.frame, long.pipeline.frame) == ("vertical", "gravity")
    assert dataclasses.replace(vlong, pipeline=long.pipeline) == long
    assert M._pretrain_key(METHODS["crosshar_vertical_long_last"]) == M._pretrain_key(METHODS["crosshar_vertical"]) \
        == "crosshar_vertical" != M._pretrain_key(METHODS["crosshar_long_last"])


def test_mirrordev_and_yaw45_differ_from_their_row_in_the_finetuning_mirror_plane_or_heading_only(tmp_path, monkeypatch):
    """scratch_mirrordev and crosshar_mirrordev: the finetuning mirror through a device-fixed plane; *_yaw45: a random
    heading up to 45 degrees in finetuning; nothing else changed, the crosshar rows on crosshar's own pretraining run."""
    from crosshar.evaluate.methods import METHODS

    for base, enc in (("scratch", None), ("crosshar", tmp_path / "enc")):
        ref, dev, yaw = finetune_jobs(tmp_path, monkeypatch, (base, f"{base}_mirrordev", f"{base}_yaw45"), enc)
        assert (dev.augment.mirror_plane, ref.augment.mirror_plane) == ("device", "random")
        assert dataclasses.replace(dev, augment=ref.augment) == ref
        assert (yaw.augment.yaw_deg, ref.augment.yaw_deg) == (45.0, 0.0)
        assert dataclasses.replace(yaw, augment=ref.augment) == ref
    for m in ("crosshar_mirrordev", "crosshar_yaw45"):
        assert M._pretrain_key(METHODS[m]) == M._pretrain_key(METHODS["crosshar"])


def test_worldvert_differs_from_scratch_vertical_in_the_frame_only(tmp_path, monkeypatch):
    vert, wv = finetune_jobs(tmp_path, monkeypatch, ("scratch_vertical", "scratch_worldvert"), None)
    assert (wv.pipeline.frame, vert.pipeline.frame) == ("world_vertical", "vertical")
    assert dataclasses.replace(wv, pipeline=vert.pipeline) == vert


def test_mount_rows_differ_from_their_row_in_the_finetuning_mount_only(tmp_path, monkeypatch):
    """scratch_mount, scratch_vertical_mount, scratch_worldvert_mount: half of the finetuning windows through a spring-damper mount,
    nothing else changed (the frame included)."""
    for base in ("scratch", "scratch_vertical", "scratch_worldvert"):
        ref, mnt = finetune_jobs(tmp_path, monkeypatch, (base, f"{base}_mount"), None)
        assert (mnt.augment.mount, ref.augment.mount) == (0.5, 0.0)
        assert dataclasses.replace(mnt, augment=ref.augment) == ref


def test_skip_vertical_differs_from_crosshar_skip_in_the_window_frame_only(tmp_path, monkeypatch):
    """crosshar_skip_vertical: crosshar_skip's pretraining run and finetune job, the window beside the
    embedding in the vertical frame."""
    from crosshar.evaluate.methods import METHODS

    skip, vert = finetune_jobs(tmp_path, monkeypatch, ("crosshar_skip", "crosshar_skip_vertical"), tmp_path / "enc")
    assert (skip.finetune.skip_frame, vert.finetune.skip_frame) == ("encoder", "vertical")
    assert vert.finetune.replace(skip_frame="encoder") == skip.finetune and vert.encoder_run == skip.encoder_run
    assert M._pretrain_key(METHODS["crosshar_skip_vertical"]) == "crosshar"


def test_dual_differs_from_scratch_vertical_in_the_head_input_only(tmp_path, monkeypatch):
    """scratch_dual: scratch_vertical's configs and finetune job, with the gravity-frame window beside the
    vertical-frame one (head_input and skip_frame alone changed; no encoder either way)."""
    from crosshar.evaluate.methods import METHODS

    vert, dual = finetune_jobs(tmp_path, monkeypatch, ("scratch_vertical", "scratch_dual"), None)
    w = C.load("window")
    assert (dual.finetune.head_input, dual.finetune.skip_frame) == ("embedding+window", "gravity")
    assert dual.finetune.replace(head_input=vert.finetune.head_input, skip_frame=vert.finetune.skip_frame) == vert.finetune
    assert dual.pipeline == vert.pipeline and dual.encoder_run is vert.encoder_run is None
    assert M.method_configs(METHODS["scratch_dual"], w) == M.method_configs(METHODS["scratch_vertical"], w)


def test_b16_rows_differ_from_their_bases_in_the_batch_size_only(tmp_path, monkeypatch):
    """scratch_b16, crosshar_b16: their bases' configs, pretraining run and finetune job, in batches of 16."""
    from crosshar.evaluate.methods import METHODS

    for base, enc in (("scratch", None), ("crosshar", tmp_path / "enc")):
        job, b16 = finetune_jobs(tmp_path, monkeypatch, (base, f"{base}_b16"), enc, finetune_epochs=1)
        assert (job.finetune.batch_size, b16.finetune.batch_size) == (C.load("finetune").batch_size, 16)
        assert b16.finetune.replace(batch_size=job.finetune.batch_size) == job.finetune
        assert (b16.augment, b16.encoder_run, b16.head_cfg, b16.pipeline) == (job.augment, job.encoder_run, job.head_cfg,
                                                                              job.pipeline)
    assert M._pretrain_key(METHODS["crosshar_b16"]) == M._pretrain_key(METHODS["crosshar"])


def test_tok_rows_differ_from_their_bases_in_the_transformer_tokens_only(tmp_path, monkeypatch):
    """scratch_tok1 / crosshar_tok1: the transformer head's tokens from one time step (CrossHAR's, the default before);
    *_tok5 from five, today's default, so they equal their bases."""
    from crosshar.evaluate.methods import METHODS

    base, tok1, tok5 = finetune_jobs(tmp_path, monkeypatch, ("scratch", "scratch_tok1", "scratch_tok5"), None,
                                     head="transformer")
    assert base.head_cfg["token_kernel"] == 5 and tok5.head_cfg == base.head_cfg
    assert tok1.head_cfg == {**base.head_cfg, "token_kernel": 1} and tok1.finetune == base.finetune
    assert M._pretrain_key(METHODS["crosshar_tok1"]) == M._pretrain_key(METHODS["crosshar"])


def test_din_size_rows_differ_from_their_bases_in_the_din_size_only(tmp_path, monkeypatch):
    """*_d1 / *_d3: DIN with one / three interactive blocks; *_w32 / *_w96: DIN 32 / 96 wide (its default: two blocks,
    64 wide); everything else, pretraining run included, is their base's."""
    from crosshar.evaluate.methods import METHODS

    sizes = (("d1", "depth", 1), ("w32", "dim", 32), ("d3", "depth", 3), ("w96", "dim", 96))
    for base, enc in (("scratch", None), ("crosshar", tmp_path / "enc")):
        job, *rows = finetune_jobs(tmp_path, monkeypatch, (base, *(f"{base}_{t}" for t, _, _ in sizes)), enc)
        assert (job.head_cfg["depth"], job.head_cfg["dim"]) == (2, 64)
        for j, (_, opt, v) in zip(rows, sizes, strict=True):
            assert j.head_cfg == {**job.head_cfg, opt: v}
            assert (j.finetune, j.augment, j.encoder_run, j.pipeline) == (job.finetune, job.augment, job.encoder_run,
                                                                          job.pipeline)
    assert {M._pretrain_key(METHODS[f"crosshar_{t}"]) for t, _, _ in sizes} == {M._pretrain_key(METHODS["crosshar"])}
    assert METHODS["scratch_w96"].pretrain is None
    assert dataclasses.replace(METHODS["scratch_worldvert_mount_w96"], name="scratch_worldvert_mount", head_options=()) == \
        METHODS["scratch_worldvert_mount"]


def test_chunk20_rows_differ_from_their_bases_in_the_gru_sub_windows_only(tmp_path, monkeypatch):
    """scratch_chunk20 / crosshar_chunk20: LIMU-BERT's GRU head over 20-step sub-windows (the default: one recurrence
    over the whole window, chunk = 0), with the GRU's own schedule like their bases."""
    from crosshar.evaluate.methods import METHODS

    base, sub = finetune_jobs(tmp_path, monkeypatch, ("scratch", "scratch_chunk20"), None, head="gru")
    assert base.head_cfg["chunk"] == 0 and sub.head_cfg == {**base.head_cfg, "chunk": 20}
    assert sub.finetune == base.finetune and sub.finetune.lr == C.head_preset("gru")[1].lr
    assert M._pretrain_key(METHODS["crosshar_chunk20"]) == M._pretrain_key(METHODS["crosshar"])


def test_a_heads_own_schedule_reaches_its_matrix_rows_as_it_reaches_finetune(tmp_path, monkeypatch):
    """configs/heads/gru.toml's [finetune] table reaches the matrix's GRU rows (as `crosshar finetune --head gru`
    reads it); DIN rows keep the packaged schedule; --finetune-epochs is the word on epochs, as under a preset."""
    ft, base = C.head_preset("gru")[1], C.load("finetune")
    assert (ft.lr, ft.epochs) != (base.lr, base.epochs)
    (gru,) = finetune_jobs(tmp_path / "g", monkeypatch, ("scratch",), None, head="gru")
    (din,) = finetune_jobs(tmp_path / "d", monkeypatch, ("scratch",), None)
    assert (gru.finetune.lr, gru.finetune.epochs) == (ft.lr, ft.epochs) and gru.head_cfg["chunk"] == 0
    assert (din.finetune.lr, din.finetune.epochs) == (base.lr, base.epochs)
    assert gru.finetune.replace(lr=base.lr, epochs=base.epochs) == din.finetune.replace(head="gru")
    (short,) = finetune_jobs(tmp_path / "q", monkeypatch, ("scratch",), None, head="gru", finetune_epochs=20)
    assert short.finetune.epochs == 20 and short.finetune.lr == ft.lr
    (tf,) = finetune_jobs(tmp_path / "t", monkeypatch, ("scratch",), None, head="transformer")  # its table: epochs
    assert tf.finetune.epochs == C.head_preset("transformer")[1].epochs != base.epochs and tf.finetune.lr == base.lr


@pytest.mark.parametrize("head", ["transformer", "gru", "din"])
def test_shared_rows_differ_in_the_schedule_only(head, tmp_path, monkeypatch):
    """scratch_shared / crosshar_shared: the rows at the shared finetuning schedule instead of the head's own table
    (the transformer's 120 epochs, the GRU's lr and epochs); for DIN, which has none, the very same jobs."""
    base = C.load("finetune")
    own, shared = finetune_jobs(tmp_path, monkeypatch, ("crosshar", "crosshar_shared"), tmp_path / "enc", head=head)
    assert (shared.finetune.lr, shared.finetune.epochs) == (base.lr, base.epochs)
    assert shared.finetune == own.finetune.replace(lr=base.lr, epochs=base.epochs)
    assert (shared.augment, shared.encoder_run, shared.head_cfg) == (own.augment, own.encoder_run, own.head_cfg)
    assert (own.finetune == shared.finetune) == (head == "din")
    assert M._pretrain_key(Me.METHODS["crosshar_shared"]) == M._pretrain_key(Me.METHODS["crosshar"])


def test_full_slow_differs_from_full_in_the_encoder_rate_only(tmp_path, monkeypatch):
    """crosshar_full_slow: crosshar_full's pretraining run and finetune job, with the encoder at 0.1 x lr."""
    from crosshar.evaluate.methods import METHODS

    full, slow = finetune_jobs(tmp_path, monkeypatch, ("crosshar_full", "crosshar_full_slow"), tmp_path / "enc",
                               finetune_epochs=1)
    assert full.finetune.encoder_lr_scale == 1.0 and slow.finetune.encoder_lr_scale == 0.1
    assert slow.finetune.replace(encoder_lr_scale=1.0) == full.finetune and not slow.finetune.freeze
    assert (slow.augment, slow.encoder_run, slow.head_cfg) == (full.augment, full.encoder_run, full.head_cfg)
    assert M._pretrain_key(METHODS["crosshar_full_slow"]) == M._pretrain_key(METHODS["crosshar"])


@pytest.mark.parametrize("base", ["scratch", "crosshar", "scratch_encoder"])
def test_avg_rows_differ_from_their_base_in_the_weight_average_only(base, tmp_path, monkeypatch):
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, finetune_epochs=1)
    enc = None if base.startswith("scratch") else tmp_path / "enc"
    for name in (base, base + "_avg"):
        finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, C.load("window"), enc)
    plain, avg = jobs
    assert plain.finetune.average_epochs == 0.0 and avg.finetune.average_epochs == 5.0
    assert avg.finetune.replace(average_epochs=0.0) == plain.finetune
    assert (avg.augment, avg.encoder_run, avg.random_encoder) == (plain.augment, plain.encoder_run, plain.random_encoder)
    assert M._pretrain_key(METHODS[base + "_avg"]) == M._pretrain_key(METHODS[base])


def test_lpft_starts_from_crosshars_own_run_and_differs_in_the_encoders_training_only(tmp_path, monkeypatch):
    """crosshar_lpft: crosshar's pretraining run, its finetuning run as the start (LP-FT), then the encoder trained on
    at a tenth of the rate for half the epochs; in one group of work with crosshar (its run is never trained twice)."""
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append((job, out)) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1)
    finetune_run(tmp_path, ("uci",), METHODS["crosshar_lpft"], "din", 0, mc, C.load("window"), tmp_path / "enc")
    (probe, probe_out), (lpft, _) = jobs
    assert probe_out.name == "finetune-uci-crosshar-din-s0" and lpft.init_run == str(probe_out)
    assert probe.init_run is None and probe.finetune.freeze and not lpft.finetune.freeze
    assert (lpft.finetune.epochs, lpft.finetune.lr) == (probe.finetune.epochs // 2, probe.finetune.lr / 10)
    assert lpft.finetune.replace(freeze=True, epochs=probe.finetune.epochs, lr=probe.finetune.lr) == probe.finetune
    assert (lpft.augment, lpft.encoder_run, lpft.head_cfg) == (probe.augment, probe.encoder_run, probe.head_cfg)
    a, b = (M.group_key(mc, M.Cell(("uci",), name, "din", 0, C.WindowConfig(), ("motion",)))
            for name in ("crosshar", "crosshar_lpft"))
    assert a == b


def test_v1_differs_from_crosshar_in_the_three_changed_defaults_only_and_combo_is_crosshar(tmp_path, monkeypatch):
    """crosshar_combo's three changes (the equal-weight masked MSE, label smoothing 0.1, DIN's attention weights
    undropped) are the defaults: its job is crosshar's; crosshar_v1 (the defaults before) differs in those three only."""
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1)
    for name in ("crosshar", "crosshar_combo", "crosshar_v1", "scratch", "scratch_v1"):
        finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, C.load("window"), tmp_path / "enc")
    plain, combo, v1, scratch, scratch_v1 = jobs
    assert dataclasses.replace(combo, init_run=None) == plain
    assert v1.finetune == plain.finetune.replace(label_smoothing=0.0) and v1.augment == plain.augment
    assert v1.head_cfg == {**plain.head_cfg, "attn_dropout": 0.1} and plain.head_cfg["attn_dropout"] == 0.0
    assert scratch_v1.finetune == scratch.finetune.replace(label_smoothing=0.0)
    assert scratch_v1.head_cfg == {**scratch.head_cfg, "attn_dropout": 0.1}
    w = C.load("window")
    pre_plain, pre_v1 = (M.method_configs(METHODS[n], w)["pretrain"] for n in ("crosshar", "crosshar_v1"))
    assert pre_v1 == pre_plain.replace(mse_channels="raw") and pre_plain.mse_channels == "equal"


def test_on_the_transformer_attn0_rows_are_the_defaults_and_attndrop_the_rows_before(tmp_path, monkeypatch):
    """The transformer's attention weights are undropped by default (results/matrix-tfattn0/): its scratch_attn0 and
    crosshar_attn0 jobs are scratch's and crosshar's; the *_attndrop rows (CrossHAR's 0.1, the default before)
    differ from them in that one head option."""
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("transformer",), seeds=1)
    names = ("scratch", "scratch_attn0", "scratch_attndrop", "crosshar", "crosshar_attn0", "crosshar_attndrop")
    for name in names:
        enc = tmp_path / "enc" if METHODS[name].pretrain else None
        finetune_run(tmp_path, ("uci",), METHODS[name], "transformer", 0, mc, C.load("window"), enc)
    got = dict(zip(names, jobs))
    for base in ("scratch", "crosshar"):
        plain, zero, drop = got[base], got[f"{base}_attn0"], got[f"{base}_attndrop"]
        assert plain.head_cfg["attn_dropout"] == 0.0 and zero == plain
        assert drop == dataclasses.replace(plain, head_cfg={**plain.head_cfg, "attn_dropout": 0.1})


def test_narrow_oracles_change_only_the_finetuning_amplitude_and_count_in_the_ceiling():
    w = M.C.load("window")
    base, narrow = M.method_configs(Me.METHODS["oracle"], w), M.method_configs(Me.METHODS["oracle_narrow"], w)
    assert narrow["augment_finetune"] == base["augment_finetune"].replace(body_amplitude=0.5)
    assert narrow["augment"] == base["augment"] and narrow["encoder"] == base["encoder"]
    assert base["augment_finetune"].body_amplitude != 0.5  # the default spans body positions
    mc = M.MatrixConfig(("uci", "motion"), ("din",))  # the narrow oracle shares the target's crosshar pretraining
    _assert_shares_pretraining_and_counts_in_ceiling(mc, "oracle_narrow")


def _assert_shares_pretraining_and_counts_in_ceiling(mc, oracle: str) -> None:
    """`oracle` on uci shares uci's crosshar pretraining (group), and a better score of it is the ceiling."""
    w = M.C.load("window")
    assert M.group_key(mc, M.Cell(("uci",), oracle, "din", 0, w, ("uci",))) \
        == M.group_key(mc, M.Cell(("uci",), "crosshar", "din", 0, w, ("motion",)))
    classes = ["walking", "upstairs", "downstairs", "sitting&standing"]
    row = {"source": "uci", "target": "uci", "head": "din", "seed": 0, "classes": classes, "cpu_seconds": 1.0}
    rows = [{**row, "method": "oracle", "macro_f1": 0.8}, {**row, "method": oracle, "macro_f1": 0.9},
            {**row, "source": "motion", "method": "crosshar", "macro_f1": 0.85}]
    assert R.ceiling(rows, "din", "motion", "uci", "crosshar4") == pytest.approx(0.9)  # the best oracle run


def test_a_group_held_elsewhere_is_left_to_its_holder(synth, home, monkeypatch):
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, finetune_epochs=1, methods=("scratch",))
    root = home / "results" / "m"
    cells = M.plan(mc)
    other = M.claim(root, M.group_key(mc, cells[0]))  # this process stands in for another worker
    lines: list[str] = []
    M.work(mc, root, log=lines.append)
    done = {(r["source"], r["target"]) for r in R.read_rows(root / "rows.jsonl")}
    assert done == {(cells[1].sources[0], t) for t in cells[1].targets}
    assert "macro-F1" in lines[-1] and "(row 1 of 2, " in lines[-1]  # each row's line says how far the folder is
    other.unlink()
    M.work(mc, root, log=lines.append)  # released: the next invocation does it, and nothing twice
    assert "(row 2 of 2, " in lines[-1]
    rows = R.read_rows(root / "rows.jsonl")
    assert sorted((r["source"], r["target"]) for r in rows) == [("motion", "uci"), ("uci", "motion")]
    assert not list((root / "claims").iterdir())


def test_an_interrupted_invocation_still_counts_its_time_once(synth, home, monkeypatch):
    """The time of an invocation stopped midway (Ctrl-C, a kill after its first group) was missing from the report's
    Time section: it wrote its line only at its end. Now its line is appended after every group and when it stops;
    the report reads each invocation's last line."""
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, finetune_epochs=1, methods=("scratch",))
    root = home / "results" / "m"
    real, n = M._run_cell, []

    def second_group_interrupted(*a, **k):
        n.append(1)
        if len(n) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(M, "_run_cell", second_group_interrupted)
    with pytest.raises(KeyboardInterrupt):
        M.work(mc, root, log=lambda *_: None)
    lines = R.read_jsonl(root / "timing.jsonl")
    assert [t["done"] for t in lines] == [False, False] and len({t["invocation"] for t in lines}) == 1
    monkeypatch.setattr(M, "_run_cell", real)
    M.work(mc, root, log=lambda *_: None)  # the rerun does the rest
    timing = R.read_timing(root / "timing.jsonl")
    assert [t["done"] for t in timing] == [False, True] and timing[0]["wall_s"] >= lines[0]["wall_s"]
    assert len(R.read_rows(root / "rows.jsonl")) == 2
    R.write_report(mc, R.read_rows(root / "rows.jsonl"), root)
    assert "(stopped before its end)" in (root / "report.md").read_text()


def test_a_finished_invocation_writes_its_final_time_once(synth, home, monkeypatch):
    """A finished invocation appended a line after its last group and another at its end: its final time twice.
    The time after a group is now written when the next group starts: every line a new state, the last one final."""
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, finetune_epochs=1, methods=("scratch",))
    root = home / "results" / "m"
    real, seen = M._run_cell, []

    def run_cell(*a, **k):  # what a process killed at the start of each group would leave
        seen.append(R.read_jsonl(root / "timing.jsonl"))
        return real(*a, **k)

    monkeypatch.setattr(M, "_run_cell", run_cell)
    M.work(mc, root, log=lambda *_: None)
    assert len(seen) == 2 and seen[0] == [] and [t["done"] for t in seen[1]] == [False]  # group 1's time, in group 2
    lines = R.read_jsonl(root / "timing.jsonl")
    assert [t["done"] for t in lines] == [False, True] and len({t["invocation"] for t in lines}) == 1
    assert lines[1]["wall_s"] >= lines[0]["wall_s"]  # before the fix: [False, False, True], group 2's end twice


@pytest.mark.slow
def test_jobs_share_the_work_and_do_every_cell_once(synth, home):
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=2, label_rate=0.5, finetune_epochs=1, methods=("scratch",))
    root = home / "results" / "m"
    run_matrix(mc, root, log=lambda *_: None, jobs=2, threads=1)
    rows = R.read_rows(root / "rows.jsonl")
    assert sorted((r["source"], r["target"], r["seed"]) for r in rows) == sorted(
        (s, t, k) for s, t in [("uci", "motion"), ("motion", "uci")] for k in (0, 1))
    timing = R.read_timing(root / "timing.jsonl")  # each worker's last line (one is appended after every group)
    assert sorted(t["shard"] for t in timing) == [[0, 2], [1, 2]] and all(t["done"] for t in timing)
    assert (root / "report.md").is_file() and not list((root / "claims").iterdir())
    with pytest.raises(M.ConfigError, match="jobs"):
        run_matrix(mc, root, jobs=0)


@pytest.mark.parametrize("row, base", [("scratch_ens5", "scratch"), ("crosshar_ens5", "crosshar"),
                                       ("scratch_last", "scratch"), ("crosshar_last", "crosshar"),
                                       ("scratch_best", "scratch"), ("crosshar_best", "crosshar"),
                                       ("scratch_frozen_last", "scratch_frozen"),
                                       ("scratch_encoder_last", "scratch_encoder"),
                                       ("scratch_lever", "scratch"), ("crosshar_lever", "crosshar"),
                                       ("crosshar_leverft", "crosshar"),
                                       ("scratch_semi_last", "scratch_last"), ("crosshar_semi_last", "crosshar_last"),
                                       ("scratch_long_last", "scratch_last"), ("crosshar_long_last", "crosshar_last"),
                                       ("scratch_long6_last", "scratch_last"),
                                       ("scratch_encoder_long_last", "scratch_encoder_last")])
def test_option_rows_differ_from_their_base_in_their_factor_only(row, base, tmp_path, monkeypatch):
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, finetune_epochs=1)
    enc = None if base.startswith("scratch") else tmp_path / "enc"
    for name in (base, row):
        finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, C.load("window"), enc)
    plain, changed = jobs
    w = C.load("window")
    cfg_plain, cfg_row = M.method_configs(METHODS[base], w), M.method_configs(METHODS[row], w)
    if "_long" in row:  # 3x (6x) the epochs the matrix gives its base (--finetune-epochs 1 here)
        scale = 6 if "_long6" in row else 3
        assert changed.finetune == plain.finetune.replace(epochs=scale) and changed.augment == plain.augment
        assert M._pretrain_key(METHODS[row]) == M._pretrain_key(METHODS[base])
    elif row.endswith("_semi_last"):
        assert plain.finetune.unlabelled == 0.0 and changed.finetune == plain.finetune.replace(unlabelled=1.0)
        assert changed.augment == plain.augment and M._pretrain_key(METHODS[row]) == M._pretrain_key(METHODS[base])
    elif row.endswith(("_ens5", "_last", "_best")):
        field, value = ("ensemble", 5) if row.endswith("_ens5") else ("select", row.rsplit("_", 1)[1])
        assert getattr(changed.finetune, field) == value and plain.finetune.select == C.load("finetune").select
        assert changed.finetune == plain.finetune.replace(**{field: value}) and changed.augment == plain.augment
        assert M._pretrain_key(METHODS[row]) == M._pretrain_key(METHODS[base])
    else:
        assert plain.augment.lever_arm == 0.0 and changed.augment.lever_arm == 0.3
        assert changed.augment.replace(lever_arm=0.0) == plain.augment and changed.finetune == plain.finetune
        both = not row.endswith("ft")
        assert (cfg_row["augment"].lever_arm == 0.3) == both  # pretraining too, unless "ft"
        assert cfg_row["augment"].replace(lever_arm=0.0) == cfg_plain["augment"]
        if METHODS[row].pretrain:  # its own pretraining run only where pretraining changes
            assert (M._pretrain_key(METHODS[row]) == M._pretrain_key(METHODS[base])) == (not both)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child may wait for a reaper that a container lacks)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_worker_exits_when_its_matrix_process_is_killed(tmp_path):
    """`--jobs N` workers watch their parent: killing `crosshar matrix` (even with SIGKILL) stops them,
    where they used to go on training, orphaned. While the parent lives, the worker keeps running."""
    import signal

    pid_file, ready = tmp_path / "child.pid", tmp_path / "watching"
    # the worker is told its parent's pid, as _spawn_workers does (a parent gone before the watch starts counts)
    child = ("import time; from pathlib import Path; from crosshar.evaluate.matrix import exit_with_parent; "
             f"exit_with_parent(PARENT, 0.05); Path({str(ready)!r}).touch(); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c",
                               "import os, subprocess, sys, time; "
                               f"p = subprocess.Popen([sys.executable, '-c', {child!r}.replace('PARENT', str(os.getpid()))]); "
                               f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)"])
    try:
        for _ in range(1200):
            if ready.is_file() and pid_file.is_file() and pid_file.read_text():
                break
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        time.sleep(0.5)  # ten periods of the watch
        assert _running(worker)  # the watch does not fire while the parent lives
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        for _ in range(600):
            if not _running(worker):
                break
            time.sleep(0.05)
        assert not _running(worker)
    finally:
        parent.kill()
        if pid_file.is_file() and pid_file.read_text() and _running(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize("row, base", [("scratch_multi_worldvert_mount_balanced", "scratch_multi_worldvert_mount"),
                                       ("scratch_worldvert_mount_balanced", "scratch_worldvert_mount")])
def test_balanced_rows_differ_from_their_base_in_the_class_weights_only(tmp_path, monkeypatch, row, base):
    import crosshar.train.finetune as fs

    assert dataclasses.replace(METHODS[row], name=base, class_weight=None) == METHODS[base]
    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1)
    for name in (base, row):
        M.finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, C.load("window"), None)
    a, b = jobs
    assert (a.finetune.class_weight, b.finetune.class_weight) == ("none", "balanced")
    assert b.finetune.replace(class_weight="none") == a.finetune and b.pipeline == a.pipeline and b.augment == a.augment


def test_the_wide_and_pooled_world_vertical_rows_share_one_pretraining_per_target(monkeypatch):
    """crosshar_wide_worldvert_mount (source labels) and multi_worldvert_mount (pooled labels) pretrain on the same
    datasets (every one but the target) in the same frame: one run, one group of work."""
    monkeypatch.setattr(M, "target_profile", lambda t: C.WindowConfig())
    mc = MatrixConfig(("uci", "motion", "wisdm"), ("din",), seeds=1,
                      methods=("crosshar_wide_worldvert_mount", "multi_worldvert_mount"))
    cells = M.plan(mc)
    keys = {(c.method, c.sources, c.targets): M.group_key(mc, c) for c in cells}
    assert keys[("multi_worldvert_mount", ("motion", "wisdm"), ("uci",))] == \
        keys[("crosshar_wide_worldvert_mount", ("motion",), ("uci",))] == \
        keys[("crosshar_wide_worldvert_mount", ("wisdm",), ("uci",))]
    assert "world_vertical" in keys[("multi_worldvert_mount", ("motion", "wisdm"), ("uci",))]
    assert dataclasses.replace(METHODS["crosshar_wide_worldvert_mount"], name="crosshar_worldvert_mount",
                               wide=False) == METHODS["crosshar_worldvert_mount"]
    assert R.single_source("multi_worldvert_mount") == "crosshar_worldvert_mount"


def test_crosshar_in_the_world_vertical_frame_differs_from_its_scratch_row_in_pretraining_only():
    """crosshar_worldvert_mount is scratch_worldvert_mount with crosshar's pretraining (its own runs, in the
    world-vertical frame, no mount there: the mount is a finetuning augmentation)."""
    row, base = METHODS["crosshar_worldvert_mount"], METHODS["scratch_worldvert_mount"]
    assert dataclasses.replace(row, name=base.name, pretrain=None) == base
    assert M._pretrain_key(row) == "crosshar_world_vertical" != M._pretrain_key(METHODS["crosshar"])
    cfgs = M.method_configs(row, C.load("window"))
    assert cfgs["encoder"].input_frame == "world_vertical"
    assert (cfgs["augment_finetune"].mount, cfgs["augment"].mount) == (0.5, C.load("augment").mount)
    assert ("crosshar_worldvert_mount", "scratch_worldvert_mount") in R.COMPARISONS


def test_conv_rows_change_the_encoder_stem_only_and_the_random_encoder_gets_it(tmp_path, monkeypatch):
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS
    import torch

    from crosshar.models.encoder import ConvStem

    w = C.load("window")
    for base in ("crosshar", "crosshar_arrow", "scratch_frozen"):
        conv = base.replace("_arrow", "") + "_conv" + ("_arrow" if base.endswith("_arrow") else "")
        a, b = M.method_configs(METHODS[base], w), M.method_configs(METHODS[conv], w)
        assert a["encoder"].stem == "linear" and b["encoder"] == a["encoder"].replace(stem="conv")
        assert {k: v for k, v in a.items() if k != "encoder"} == {k: v for k, v in b.items() if k != "encoder"}
    assert M._pretrain_key(METHODS["crosshar_conv"]) == "crosshar_conv"
    assert M._pretrain_key(METHODS["crosshar_conv_arrow"]) == "crosshar_conv_arrow1"
    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, finetune_epochs=1)
    for name in ("scratch_frozen", "scratch_frozen_conv"):
        finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, w, None)
    plain, conv = jobs
    assert plain.random_encoder and conv.random_encoder and conv.encoder == plain.encoder.replace(stem="conv")
    model, meta = fs.build_model(conv)  # the random encoder under the head has the row's stem, saved in its meta
    assert isinstance(model.encoder.input_proj, ConvStem) and meta["encoder"]["stem"] == "conv"
    assert isinstance(fs.build_model(plain)[0].encoder.input_proj, torch.nn.Linear)


def test_long_oracles_change_only_the_finetuning_length_and_count_in_the_ceiling():
    """oracle_long / oracle_scratch_long: the oracles at the best transfer recipe's 3x schedule, every epoch
    run (patience = epochs), sharing the target's crosshar pretraining; the ceiling is the best oracle run."""
    import dataclasses

    for long, base in (("oracle_long", "oracle"), ("oracle_scratch_long", "oracle_scratch")):
        assert Me.METHODS[long] == dataclasses.replace(Me.METHODS[base], name=long, epochs_scale=3.0)
        assert long in Me.CEILING
    _assert_shares_pretraining_and_counts_in_ceiling(M.MatrixConfig(("uci", "motion"), ("din",)), "oracle_long")


def test_smooth_row_differs_from_scratch_vertical_in_label_smoothing_only(tmp_path, monkeypatch):
    import crosshar.train.finetune as fs
    from crosshar.evaluate.matrix import finetune_run
    from crosshar.evaluate.methods import METHODS

    jobs = []
    monkeypatch.setattr(fs, "source_classes", lambda *a, **k: ("walking", "sitting&standing"))
    monkeypatch.setattr(fr, "run", lambda job, out, **k: jobs.append(job) or out)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1)
    for name in ("scratch_vertical", "scratch_vertical_smooth"):
        finetune_run(tmp_path, ("uci",), METHODS[name], "din", 0, mc, C.load("window"), None)
    base, smooth = jobs
    assert (base.finetune.label_smoothing, smooth.finetune.label_smoothing) == (0.1, 0.1)  # 0.1: the default since results/matrix/
    assert smooth.finetune == base.finetune and smooth.pipeline == base.pipeline
    assert smooth.pipeline.frame == "vertical"
    assert M._pretrain_key(METHODS["crosshar_smooth"]) == "crosshar" and METHODS["crosshar_smooth"].smoothing == 0.1


@pytest.mark.parametrize("base", Me.TTA_BASES)
@pytest.mark.parametrize("suffix, kind", [("_tta", "all"), ("_tta_motion", "motion")])
def test_tta_rows_differ_from_their_base_in_the_scoring_only(base, suffix, kind):
    """`<base>_tta` (`_tta_motion`) is its base row with test-time views (of the motion only): same configs, same
    runs, same group of work."""
    row = METHODS[base + suffix]
    assert (row.tta, row.tta_views, row.runs_of) == (8, kind, base)
    assert dataclasses.replace(row, name=base, tta=0, tta_views="all", runs_of=None) == METHODS[base]
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, methods=(base, base + suffix))
    a, b = (M.group_key(mc, M.Cell(("uci",), name, "din", 0, C.WindowConfig(), ("motion",))) for name in mc.methods)
    assert a == b  # one process holds both rows' cells: the base's model is never trained twice at once


def test_a_tta_row_scores_its_base_rows_own_runs_with_views_of_their_augmentation(synth, home, monkeypatch):
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, finetune_epochs=1,
                      methods=("scratch", "scratch_tta", "scratch_tta_motion"))
    calls, real = [], M.predict_tta
    monkeypatch.setattr(M, "predict_tta", lambda model, X, aug, views, **k: calls.append((aug, views, k)) or
                        real(model, X, aug, views, **k))
    root = home / "results" / "m"
    M.work(mc, root, log=lambda *_: None)
    rows = R.read_rows(root / "rows.jsonl")
    assert sorted((r["source"], r["method"]) for r in rows) == [(s, m) for s in ("motion", "uci")
                                                                 for m in ("scratch", "scratch_tta", "scratch_tta_motion")]
    assert sorted(p.name for p in (root / "runs").iterdir()) == ["finetune-motion-scratch-linear-s0",
                                                                 "finetune-uci-scratch-linear-s0"]  # no run of its own
    assert [v for _, v, _ in calls] == [8] * 4 and all(k["seed"] == 0 for _, _, k in calls)
    assert sorted(k["kind"] for _, _, k in calls) == ["all", "all", "motion", "motion"]
    augs = {json.dumps(C.AugmentConfig.from_dict(_ft_configs(root, f"finetune-{s}-scratch-linear-s0")["augment"]).to_dict(),
                       sort_keys=True) for s in ("uci", "motion")}
    assert {json.dumps(a.to_dict(), sort_keys=True) for a, _, _ in calls} == augs
    by = {(r["source"], r["method"]): r for r in rows}
    assert by["uci", "scratch"]["n"] == by["uci", "scratch_tta"]["n"]


@pytest.mark.parametrize("kw, message", [
    ({"seeds": 0}, "--n-seeds must be >= 1"),
    ({"seeds": -1}, "--n-seeds must be >= 1"),
    ({"label_rate": 0.0}, r"--label-rate must be in \(0, 1\]"),
    ({"pretrain_epochs": 0}, "--pretrain-epochs must be >= 1"),  # 0 silently meant the default
    ({"finetune_epochs": -2}, "--finetune-epochs must be >= 1"),
    ({"heads": ()}, "--head names nothing"),
    ({"methods": ()}, "--methods names nothing"),
    ({"datasets": ("uci",)}, r"--dataset uci forms no \(source, target\) pair for scratch"),
    ({"datasets": ("uci", "uci")}, "forms no"),
])
def test_matrix_options_that_would_run_nothing_are_config_errors(kw, message):
    from crosshar.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        MatrixConfig(**({"datasets": ("uci", "motion"), "heads": ("din",), "methods": ("scratch",)} | kw))


def test_a_single_dataset_is_enough_for_oracles_or_a_target():
    MatrixConfig(("uci",), ("din",), methods=("oracle",))  # the in-domain ceiling needs no pair
    MatrixConfig(("uci",), ("din",), methods=("scratch",), targets_only=("hhar",))


def test_report_only_without_rows_and_a_matrix_without_cells_are_refused(synth, home, monkeypatch):
    from crosshar.errors import ConfigError

    monkeypatch.setattr(M, "work", lambda *a, **k: pytest.fail("work started"))
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, methods=("scratch",))
    with pytest.raises(ConfigError, match="--report-only: no rows in .*neverran/rows.jsonl"):
        run_matrix(mc, home / "results" / "neverran", report_only=True)
    assert not (home / "results" / "neverran").exists()
    with pytest.raises(ConfigError, match="nothing to run: methods multi make no cell of datasets uci, motion"):
        run_matrix(dataclasses.replace(mc, methods=("multi",)), home / "results" / "m")  # multi pools two sources
    assert not (home / "results" / "m").exists()


def test_own_data_in_a_matrix_is_named_not_pathed_and_positions_of_one_dataset_are_refused(tmp_path, monkeypatch):
    """Run folders were named after the path typed ("finetune-./lab/mylog@wrist-..."); two positions of one dataset
    were refused only after the first cell had trained."""
    from crosshar.errors import ConfigError

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "crosshar.toml").write_text('name = "mylog"\nrate_hz = 50\nsubject_column = 0\nheader = false\n'
                                       '[positions.wrist]\nacc_columns = [1, 2, 3]\n[positions.ankle]\n'
                                       'acc_columns = [4, 5, 6]\n')
    assert M.sources_tag(("uci", f"{lab}@wrist")) == "uci+mylog@wrist"
    assert M.sources_tag((str(lab),)) == "mylog"
    mc = MatrixConfig(datasets=("uci", f"{lab}@wrist", f"{lab}@ankle"), heads=("din",), methods=("scratch",))
    with pytest.raises(ConfigError, match=r"@wrist and .*@ankle are two body positions of one dataset"):
        run_matrix(mc, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="dataset uci is named twice"):
        run_matrix(MatrixConfig(datasets=("uci", "motion", "uci"), heads=("din",), methods=("scratch",)), tmp_path / "m")


def test_the_stairs_table_skips_a_target_with_one_of_the_two():
    """A target with upstairs but no downstairs (your own data) crashed the report with KeyError 'downstairs'."""
    rows = [{"source": "uci", "target": "mylog", "method": "scratch", "per_class_f1": {"walking": 0.9, "upstairs": 0.5}},
            {"source": "mylog", "target": "uci", "method": "scratch",
             "per_class_f1": {"upstairs": 0.4, "downstairs": 0.6}}]
    assert R._stairs(rows, "din")[-2] == "| mylog → uci | scratch | 0.40 | 0.60 |"


def test_a_folders_rows_share_one_schedule_and_the_report_says_it(tmp_path):
    """`--report-only` without the `--quick --finetune-epochs 1` that trained the rows rewrote the report's command
    as the full recipe: 1-epoch rows read as the real thing."""
    from crosshar.errors import ConfigError

    root = tmp_path / "m"
    root.mkdir()
    quick = MatrixConfig(datasets=("uci", "motion"), heads=("din",), methods=("scratch",), quick=True,
                         finetune_epochs=1)
    (root / M.SCHEDULE).write_text(json.dumps(M.schedule(quick)))
    M.check_schedule(quick, root, report_only=True)  # the same options: fine
    full = dataclasses.replace(quick, quick=False, finetune_epochs=None)
    with pytest.raises(ConfigError, match=r"trained with quick True \(asked: False\), finetune_epochs 1 \(asked: None\)"
                                          r"; report them with the same options"):
        M.check_schedule(full, root, report_only=True)
    with pytest.raises(ConfigError, match="rows of another schedule go in a folder of their own"):
        M.check_schedule(full, root, report_only=False)
    M.check_schedule(full, tmp_path / "new", report_only=False)  # a folder without one: any


@pytest.mark.parametrize("text", ['{"quick": tr', "[1, 2]"], ids=["truncated", "a-list"])
def test_a_damaged_schedule_or_run_json_is_one_error_naming_it(tmp_path, text):
    """schedule.json and the runs' run.json were read unguarded: a damaged one ended `crosshar matrix` (every rerun
    of it) in a JSONDecodeError or AttributeError traceback. Each is a CrossharError naming the file and what to do."""
    from crosshar.errors import CrossharError

    root = tmp_path / "m"
    run = root / "runs" / "finetune-uci-scratch-din-s0"
    run.mkdir(parents=True)
    mc = MatrixConfig(datasets=("uci", "motion"), heads=("din",), methods=("scratch",))
    (root / M.SCHEDULE).write_text(text)
    with pytest.raises(CrossharError, match=f"^{root / M.SCHEDULE}: not .*; remove it if the folder's rows were "
                                            "trained with the options given now"):
        M.check_schedule(mc, root, report_only=False)
    (run / "run.json").write_text(text)
    with pytest.raises(CrossharError, match=f"^{run / 'run.json'}: not .*; remove the folder {run} to train that "
                                            "run again"):
        M._done(run)
    (run / "run.json").write_text(json.dumps({"finished": True, "best": None}))
    assert M._done(run)
    with pytest.raises(CrossharError, match=f"^{run / 'run.json'}: damaged \\(TypeError"):
        with M._reading(run):
            M._run_info(run)["best"]["macro_f1"]


def test_a_finetuning_cut_midway_resumes_to_the_same_model(synth, home, tiny_configs, monkeypatch):
    """A matrix cell's finetuning killed midway used to start over; with a last.pt it now continues, to the weights
    of a run never cut (only a run cut before its first checkpoint starts again)."""
    import crosshar.train.finetune as fr

    monkeypatch.setattr(fr, "CHECKPOINT_EVERY_S", 0.0)
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, finetune_epochs=4, methods=("scratch",))
    m, window = METHODS["scratch"], C.load("window")
    whole = M.finetune_run(home / "a", ("uci",), m, "linear", 0, mc, window, None)
    real = cut_finetuning_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        M.finetune_run(home / "b", ("uci",), m, "linear", 0, mc, window, None)
    epochs = []

    def record(model, X, y, tr, epoch, *a, **kw):
        epochs.append(epoch)
        return real(model, X, y, tr, epoch, *a, **kw)

    monkeypatch.setattr(fr, "train_one_epoch", record)
    resumed = M.finetune_run(home / "b", ("uci",), m, "linear", 0, mc, window, None)
    assert epochs == [2, 3]  # continued, not started over
    assert not (resumed / "last.pt").exists()
    a, b = (checkpoint.load(d / "best.pt")["state_dict"] for d in (whole, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = json.loads((resumed / "run.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]


def test_a_method_or_head_named_twice_is_refused():
    """`--methods scratch,scratch` planned each cell twice: both ran in one group and appended the same cell twice,
    whose mean then counted it as two seeds (and the report had two equal columns)."""
    from crosshar.errors import ConfigError

    with pytest.raises(ConfigError, match="--methods names scratch twice"):
        MatrixConfig(("uci", "motion"), ("din",), methods=("scratch", "oracle", "scratch"))
    with pytest.raises(ConfigError, match="--head names din twice"):
        MatrixConfig(("uci", "motion"), ("din", "din"), methods=("scratch",))


def test_report_only_with_no_row_of_the_matrix_asked_and_a_damaged_timing_line_are_refused_first(tmp_path, monkeypatch):
    """`--report-only --heads transformer` on a folder of din rows wrote an empty table, exit code 0; a damaged
    timing.jsonl was read only by the report, after every cell had trained."""
    from crosshar.errors import ConfigError, CrossharError

    monkeypatch.setattr(M, "work", lambda *a, **k: pytest.fail("work started"))
    root = tmp_path / "m"
    root.mkdir()
    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5}
    (root / "rows.jsonl").write_text(json.dumps(row) + "\n")
    mc = MatrixConfig(("uci", "motion"), ("transformer",), seeds=1, methods=("scratch",))
    with pytest.raises(ConfigError, match="--report-only: none of the 1 rows in .* is of methods scratch, heads "
                                          "transformer, seeds 0 to 0"):
        run_matrix(mc, root, report_only=True)
    (root / "timing.jsonl").write_text('{"shard": [0, 1], "wall_s"\n')
    with pytest.raises(CrossharError, match=f"^{root / 'timing.jsonl'}:1: not a JSON row"):
        run_matrix(dataclasses.replace(mc, heads=("din",)), root)


def test_a_line_appended_after_a_last_line_without_newline_stays_a_line_of_its_own(tmp_path):
    """rows.jsonl ending without a newline (cut by hand, an editor): the next row was glued onto its last line, both
    rows unreadable and every rerun of the matrix refused."""
    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5}
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps(row))
    M.append_line(p, json.dumps(row | {"seed": 1}))
    M.append_line(p, json.dumps(row | {"seed": 2}))
    assert [r["seed"] for r in R.read_rows(p)] == [0, 1, 2]
    assert p.read_text().endswith("}\n") and "\n\n" not in p.read_text()
    M.append_timing(tmp_path, (0, 1), {"wall_s": 1.0, "cpu_s": 1.0})
    assert len(R.read_timing(tmp_path / "timing.jsonl")) == 1


def test_ctrl_c_ends_a_jobs_worker_and_stops_the_rest(monkeypatch):
    """Ctrl-C on `crosshar matrix --jobs 2` hung for good: the pool caught each worker's KeyboardInterrupt, returned
    it as a result and kept the worker waiting for more, while the main process's shutdown waited for the workers.
    A worker now exits (its time written by `work`); the main process stops any still running after a grace."""
    import multiprocessing
    import signal

    import crosshar.device

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def exit_(code):
        raise SystemExit(code)

    monkeypatch.setattr(crosshar.device, "set_threads", lambda n: None)
    monkeypatch.setattr(M, "work", interrupted)
    monkeypatch.setattr(M.os, "_exit", exit_)
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, methods=("scratch",))
    with pytest.raises(SystemExit) as e:
        M._worker(mc, Path("unused"), 0, 2, 1)
    assert e.value.code == 130
    p = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    p.start()
    M.stop_workers([p], grace_s=0.5)
    assert not p.is_alive() and p.exitcode == -signal.SIGTERM  # terminated after its grace, not waited for


def test_sam_rows_differ_from_their_bases_in_sharpness_aware_minimisation_only(tmp_path, monkeypatch):
    """scratch_sam, crosshar_sam: their bases' configs, pretraining run and finetune job, finetuned with SAM (0.05)."""
    from crosshar.evaluate.methods import METHODS

    for base, enc in (("scratch", None), ("crosshar", tmp_path / "enc")):
        job, sam = finetune_jobs(tmp_path, monkeypatch, (base, f"{base}_sam"), enc, finetune_epochs=1)
        assert (job.finetune.sam, sam.finetune.sam) == (C.load("finetune").sam, 0.05) and job.finetune.sam == 0
        assert sam.finetune.replace(sam=job.finetune.sam) == job.finetune
        assert (sam.augment, sam.encoder_run, sam.head_cfg, sam.pipeline) == (job.augment, job.encoder_run, job.head_cfg,
                                                                              job.pipeline)
    assert M._pretrain_key(METHODS["crosshar_sam"]) == M._pretrain_key(METHODS["crosshar"])


def test_stylemix_rows_differ_from_their_bases_in_the_class_style_mix_only(tmp_path, monkeypatch):
    """scratch_stylemix, crosshar_stylemix: their bases' configs, pretraining run and finetune job, style_mix 0.5."""
    from crosshar.evaluate.methods import METHODS

    for base, enc in (("scratch", None), ("crosshar", tmp_path / "enc")):
        job, mix = finetune_jobs(tmp_path, monkeypatch, (base, f"{base}_stylemix"), enc, finetune_epochs=1)
        assert (job.finetune.style_mix, mix.finetune.style_mix) == (0.0, 0.5) == (C.load("finetune").style_mix, 0.5)
        assert mix.finetune.replace(style_mix=0.0) == job.finetune
        assert (mix.augment, mix.encoder_run, mix.head_cfg, mix.pipeline) == (job.augment, job.encoder_run, job.head_cfg,
                                                                              job.pipeline)
    assert M._pretrain_key(METHODS["crosshar_stylemix"]) == M._pretrain_key(METHODS["crosshar"])
