"""The root `crosshar` command through typer's CliRunner: help of every command, the version, data
commands on a synthetic folder, clean refusals (exit 2, one message, no traceback) and a tiny
pretrain -> finetune -> cross -> embed chain."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from crosshar import __version__
from crosshar.cli import app
from synthdata import home, synth, synth_root  # noqa: F401

runner = CliRunner()

COMMANDS = {
    "pretrain": ["--dataset", "--config", "--encoder-config", "--epochs", "--out", "--seed", "--resume", "--force", "--data-dir", "--on-bad", "--activities"],
    "embed": ["--dataset", "--encoder", "--out", "--data-dir"],
    "finetune": ["--dataset", "--label-rate", "--head", "--encoder", "--no-pretrain", "--random-encoder", "--freeze", "--smote", "--optimizer",
                 "--center-loss", "--preset", "--out", "--force", "--data-dir"],
    "cross": ["--dataset", "--target", "--head", "--run", "--out", "--name", "--force", "--tta", "--tta-views", "--data-dir"],
    "matrix": ["--dataset", "--datasets", "--head", "--heads", "--n-seeds", "--seeds", "--label-rate", "--methods",
               "--quick", "--preset", "--data-dir"],
    "export": ["--run", "--out", "--int8", "--opset"],
    "bench": ["--head", "--run", "--repeats", "--out"],
    "data list": ["--data-dir"],
    "data download": ["--dataset", "--from", "--data-dir"],
    "data prepare": ["--dataset", "--data-dir", "--on-bad", "--rate", "--window", "--channels", "--rebuild"],
    "data info": ["--dataset"],
}


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_refused(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and "Traceback" not in res.output
    for w in words:
        assert w in res.output, (w, res.output)


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_help_of_every_command(cmd):
    res = invoke(*cmd.split(), "--help")
    assert res.exit_code == 0, res.output
    assert f"crosshar {cmd}" in " ".join(res.output.split())  # usage line
    for opt in COMMANDS[cmd]:
        assert opt in res.output, (cmd, opt)


def test_one_vocabulary_in_the_help():
    """Flags show no value type, every option has help, -d/-td list the datasets."""
    import re

    wide = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    for cmd in COMMANDS:
        out = runner.invoke(app, [*cmd.split(), "--help"], env=wide).output
        assert "<bool>" not in out, cmd
        for line in out.splitlines():
            cells = [c for c in re.split(r"\s{2,}", line.strip("│ ")) if c and c != "*"]
            if cells and cells[0].startswith("--"):  # an option's row: it needs more than names and a type
                assert not all(c.startswith(("-", "<", "[")) for c in cells), (cmd, line)
    out = " ".join(runner.invoke(app, ["cross", "--help"], env=wide).output.split())
    assert "pamap2, realworld, shoaib, uci, uschad, wisdm" in out and "folder holding crosshar.toml" in out and "NAME@POSITION" in out


def test_root_help_lists_every_command_and_version():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in {c.split()[0] for c in COMMANDS}:
        assert cmd in res.output
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.strip() == f"crosshar {__version__}"


def test_data_list(synth, home):
    res = invoke("data", "list")
    assert res.exit_code == 0, res.output
    for name in ("uci", "motion", "wisdm", "hhar"):
        assert name in res.output
    assert "files" in res.output and "not found" in res.output  # uci/motion found, the others not


def test_data_prepare_prints_counts(synth, home):
    res = invoke("data", "prepare", "-d", "uci")
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "uci: 120 windows of 120 samples at 20 Hz" in out
    for act in ("walking", "upstairs", "downstairs", "sitting", "standing"):
        assert act in out
    assert "(6 subjects)" in out and "01:20" in out
    assert list((home / "cache").glob("uci-*.npz"))
    res = invoke("data", "info", "-d", "uci")
    assert res.exit_code == 0 and "120 windows" in res.output
    assert "recordings per body position (select one with -d NAME@POSITION): waist 12" in " ".join(res.output.split())
    res = invoke("data", "info", "-d", "uci@waist")  # a selection shows its dataset's caches
    assert res.exit_code == 0 and "120 windows" in res.output


def test_missing_data_folder_is_a_clean_error(tmp_path, home, monkeypatch):
    monkeypatch.setenv("CROSSHAR_DATA", str(tmp_path / "nowhere"))
    assert_refused(invoke("data", "prepare", "-d", "uci"), "CROSSHAR_DATA", "--data-dir")
    assert_refused(invoke("pretrain", "-d", "uci", "--quiet"), "CROSSHAR_DATA", "--data-dir")
    # a data folder without the dataset names the layout it expected
    (tmp_path / "empty").mkdir()
    assert_refused(invoke("data", "prepare", "-d", "uci", "--data-dir", str(tmp_path / "empty")), "RawData", "uci")


def test_unknown_dataset_is_a_clean_error(synth, home):
    assert_refused(invoke("data", "prepare", "-d", "nosuch"), "unknown dataset 'nosuch'", "uci")
    res = invoke("cross", "-d", "uci", "-td", "ucii")
    assert_refused(res, "unknown dataset 'ucii'", "motion", "uci", "crosshar.toml")
    assert "training" not in res.output  # refused before anything is announced


def test_unset_data_folder_says_how_to_set_it(home, monkeypatch, tmp_path):
    monkeypatch.delenv("CROSSHAR_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data here
    assert_refused(invoke("data", "prepare", "-d", "uci"), "set CROSSHAR_DATA", "--data-dir")


def test_home_defaults_to_a_per_user_folder(monkeypatch, tmp_path):
    from crosshar import paths

    monkeypatch.delenv("CROSSHAR_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path / "xdg" / "crosshar"
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "h"))
    assert paths.home() == tmp_path / "h"


def test_finetune_encoder_and_no_pretrain_exclude_each_other(synth, home):
    assert_refused(invoke("finetune", "-d", "uci", "--encoder", "X", "--no-pretrain"), "exclude each other")


def test_finetune_full_without_an_encoder_is_refused(synth, home, tmp_path):
    """--full finetunes the encoder; with --no-pretrain there is none, and the flag did nothing without a word."""
    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--full", "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert_refused(res, "--full", "--no-pretrain")
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "ft").exists()


def test_finetune_random_encoder_trains_the_encoder_end_to_end(synth, home, tmp_path):
    """--random-encoder: no pretraining run needed, the encoder under the head, trained with it."""
    from crosshar.models import classifier

    assert_refused(invoke("finetune", "-d", "uci", "--random-encoder", "--no-pretrain"), "excludes")
    res = invoke("finetune", "-d", "uci", "--random-encoder", "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert info["configs"]["finetune"]["freeze"] is False
    model, meta = classifier.load(tmp_path / "ft")
    assert model.encoder is not None and meta["encoder"] is not None
    res = invoke("finetune", "-d", "uci", "--random-encoder", "--freeze", "--epochs", "1", "--out", str(tmp_path / "fz"))
    assert res.exit_code == 0 and json.loads((tmp_path / "fz" / "run.json").read_text())["configs"]["finetune"]["freeze"] is True


def test_finetune_cadence_views_reach_the_saved_model(synth, home, tmp_path):
    from crosshar.models import classifier

    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--cadence-views", "3", "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    model, meta = classifier.load(tmp_path / "ft")
    assert meta["cadence_views"] == 3 and model.cadence.k == 3
    bad = invoke("finetune", "-d", "uci", "--no-pretrain", "--cadence-views", "0")
    assert bad.exit_code == 2 and "--cadence-views" in bad.output and "Traceback" not in bad.output


def test_finetune_unlabelled_reaches_the_run_and_trains_on_pseudo_labels(synth, home, tmp_path):
    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--unlabelled", "0.5", "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert info["configs"]["finetune"]["unlabelled"] == 0.5 and "pseudo_labelled" in info["history"][0]
    bad = invoke("finetune", "-d", "uci", "--no-pretrain", "--unlabelled", "-1")  # typer's own range check
    assert bad.exit_code == 2 and "--unlabelled" in bad.output and "Traceback" not in bad.output


def test_finetune_input_scaling_sets_a_scratch_models_pipeline_and_is_refused_with_an_encoder(synth, home, tmp_path):
    from crosshar.models import classifier

    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--input-scaling", "amplitude_sqrt", "--epochs", "1",
                 "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    model, meta = classifier.load(tmp_path / "ft")
    assert meta["scaling"] == "amplitude_sqrt" and model.scaler.mode == "amplitude_sqrt"
    assert_refused(invoke("finetune", "-d", "uci", "--no-pretrain", "--input-scaling", "loud"), "input_scaling", "loud")
    assert_refused(invoke("finetune", "-d", "uci", "--encoder", str(tmp_path / "ft"), "--input-scaling", "physical"),
                   "--no-pretrain")


def test_finetune_input_frame_sets_a_scratch_models_frame_and_is_refused_with_an_encoder(synth, home, tmp_path):
    from crosshar.models import classifier

    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--input-frame", "vertical", "--epochs", "1",
                 "--label-smoothing", "0.1", "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    model, meta = classifier.load(tmp_path / "ft")
    assert meta["frame"] == "vertical" and meta["scaling"] == "physical" and model.scaler.frame == "vertical"
    configs = json.loads((tmp_path / "ft" / "run.json").read_text())["configs"]
    assert configs["finetune"]["label_smoothing"] == 0.1 and configs["augment"]["mount"] == 0.0
    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--input-frame", "world_vertical", "--mount", "0.5",
                 "--epochs", "1", "--class-weight", "balanced", "--out", str(tmp_path / "wv"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "wv" / "run.json").read_text())["configs"]["finetune"]["class_weight"] == "balanced"
    bad = invoke("finetune", "-d", "uci", "--no-pretrain", "--class-weight", "inverse", "--epochs", "1")
    assert bad.exit_code == 2 and "class_weight must be none or balanced" in bad.output
    model, meta = classifier.load(tmp_path / "wv")
    assert meta["frame"] == "world_vertical" and model.scaler.frame == "world_vertical"
    assert json.loads((tmp_path / "wv" / "run.json").read_text())["configs"]["augment"]["mount"] == 0.5
    assert invoke("finetune", "-d", "uci", "--no-pretrain", "--mount", "1.5").exit_code == 2
    assert_refused(invoke("finetune", "-d", "uci", "--no-pretrain", "--input-frame", "sideways"), "input_frame", "sideways")
    assert_refused(invoke("finetune", "-d", "uci", "--no-pretrain", "--skip-frame", "sideways"), "skip_frame", "sideways")
    assert_refused(invoke("finetune", "-d", "uci", "--encoder", str(tmp_path / "ft"), "--input-frame", "gravity"),
                   "--input-frame", "--no-pretrain")


def test_finetune_without_a_pretraining_run_says_what_to_do(synth, home):
    assert_refused(invoke("finetune", "-d", "uci"), "crosshar pretrain -d uci", "--no-pretrain")


def test_cross_target_equal_to_source_is_refused(synth, home):
    assert_refused(invoke("cross", "-d", "uci", "-td", "uci"), "also a source")


def test_matrix_unknown_method_is_refused(home):
    assert_refused(invoke("matrix", "--methods", "scratch,magic"), "magic")


def test_unknown_preset_is_refused_before_any_work(synth, home):
    assert_refused(invoke("finetune", "-d", "uci", "--head", "danhar", "--preset", "nope", "--no-pretrain"),
                   "no preset 'nope' for head 'danhar'", "paper")
    assert_refused(invoke("matrix", "--heads", "gru", "--preset", "nope"), "no preset 'nope' for head 'gru'")


def test_finetune_preset_paper_trains_the_papers_model_and_recipe(synth, home, tmp_path):
    res = invoke("finetune", "-d", "uci", "--no-pretrain", "--head", "cnn_lstm_attn", "--preset", "paper",
                 "--epochs", "1", "--out", str(tmp_path / "ft"))
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "ft" / "run.json").read_text())
    ft, head = info["configs"]["finetune"], info["configs"]["head"]
    assert (ft["optimizer"], ft["lr_schedule"], ft["augment"], ft["epochs"]) == ("adam", "constant", False, 1)  # --epochs wins
    assert head["filters"] == 16 and head["final_lstm"] == 64 and head["attention_scale"] is False


def test_a_heads_own_schedule_applies_unless_the_user_set_it(synth, home, tmp_path):
    """configs/heads/gru.toml's [finetune] table (LIMU-BERT's GRU does not learn at the default schedule) applies to
    `finetune --head gru`; what the user sets (a --config file's keys, a flag) wins over it and over a preset."""
    import crosshar.config as C

    gru = C.head_preset("gru")[1]
    assert gru.lr != C.load("finetune").lr

    def trained(*args: str) -> dict:
        out = tmp_path / f"ft{len(list(tmp_path.iterdir()))}"
        res = invoke("finetune", "-d", "uci", "--no-pretrain", "--epochs", "1", "--out", str(out), *args)
        assert res.exit_code == 0, res.output
        said.append(res.output)
        return json.loads((out / "run.json").read_text())["configs"]

    said: list[str] = []
    cfgs = trained("--head", "gru")
    assert f"head gru: its own schedule (gru.toml [finetune]): lr {gru.lr}\n" in said[0]  # --epochs 1 is the user's
    assert cfgs["finetune"]["lr"] == gru.lr and cfgs["head"]["chunk"] == 0
    mine = tmp_path.parent / "mine.toml"
    mine.write_text((C.config_dir() / "finetune.toml").read_text().replace("lr = 1e-3", "lr = 5e-4"))
    assert trained("--head", "gru", "--config", str(mine))["finetune"]["lr"] == 5e-4
    assert "its own schedule" not in said[1]  # the user's file sets every field
    assert trained("--head", "din")["finetune"]["lr"] == C.load("finetune").lr
    paper = trained("--head", "gru", "--preset", "paper", "--label-smoothing", "0.2")["finetune"]
    assert paper["label_smoothing"] == 0.2 and paper["optimizer"] == "adam"  # the flag wins, the preset fills the rest


def test_interrupt_exits_130_with_a_hint(synth, home, monkeypatch):
    import crosshar.pretrain.run as pr

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pr, "run", interrupted)
    res = invoke("pretrain", "-d", "uci", "--quiet")
    assert res.exit_code == 130 and "--resume" in res.output


def test_an_interrupted_cross_hints_at_resuming_only_what_it_trains(synth, home, monkeypatch, tmp_path):
    """Ctrl-C in `cross --run RUN` (a model given: nothing trained) spoke of resuming a pretraining."""
    import crosshar.evaluate.run as er

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(er, "cross", interrupted)
    res = invoke("cross", "-d", "uci", "-td", "motion", "--run", str(tmp_path))
    assert res.exit_code == 130 and "no result was filed" in " ".join(res.output.split()) and "pretraining" not in res.output
    res = invoke("cross", "-d", "uci", "-td", "motion")
    assert res.exit_code == 130 and "the pretraining continues from its last finished epoch, the finetuning from its last checkpoint" in " ".join(res.output.split())


# ---- options refused before any work: one line, exit 2, and nothing trained, scored or written


@pytest.fixture
def no_work(monkeypatch):
    """Every stage's work replaced by a recorder: a refused option never gets here; an accepted one is recorded."""
    import crosshar.evaluate.matrix as M
    import crosshar.evaluate.run as er
    import crosshar.finetune.run as fr
    import crosshar.pretrain.run as pr

    calls = []

    def record(name):
        def f(*a, **k):
            calls.append((name, a, k))
            return name
        return f

    for mod, attr in ((pr, "run"), (fr, "make_job"), (fr, "run"), (er, "cross"), (M, "work")):
        monkeypatch.setattr(mod, attr, record(f"{mod.__name__}.{attr}"))
    return calls


def assert_one_line_refusal(res, *words: str) -> None:
    assert_refused(res, *words)
    assert len(res.output.strip().splitlines()) == 1, res.output


@pytest.mark.parametrize("args", [
    ["pretrain", "-d", "uci", "--epochs", "0", "-q"],
    ["pretrain", "-d", "uci", "--epochs", "-1", "-q"],
    ["finetune", "-d", "uci", "--no-pretrain", "--epochs", "0"],
    ["finetune", "-d", "uci", "--no-pretrain", "--epochs", "-1"],
])
def test_epochs_below_one_are_refused_before_training(home, no_work, args):
    assert_one_line_refusal(invoke(*args), f"--epochs must be >= 1, got {args[args.index('--epochs') + 1]}")
    assert not no_work


@pytest.mark.parametrize("option", ["--pretrain-epochs", "--finetune-epochs"])
def test_cross_epochs_below_one_are_refused_before_training(home, no_work, option):
    assert_one_line_refusal(invoke("cross", "-d", "uci", "-td", "motion", option, "0"), f"{option} must be >= 1, got 0")
    assert not no_work


def test_pretrain_activities_is_checked_before_any_work(home, no_work):
    assert_one_line_refusal(invoke("pretrain", "-d", "uci", "-q", "--activities", "eating"),
                            "--activities must be one of crosshar4, locomotion6, hhar6, basic4, got 'eating'")
    assert not no_work


@pytest.mark.parametrize("args", [
    ["pretrain", "-d", "uci", "-q"], ["finetune", "-d", "uci", "--no-pretrain"], ["cross", "-d", "uci", "-td", "motion"],
])
def test_on_bad_is_checked_before_any_work(home, no_work, args):
    assert_one_line_refusal(invoke(*args, "--on-bad", "maybe"), "--on-bad must be one of error, skip, got 'maybe'")
    assert not no_work
    invoke(*args, "--on-bad", "skip")  # the real words pass: the work is reached
    assert len(no_work) >= 1


@pytest.mark.parametrize("cmd, option, text, message", [
    ("finetune", "--config", "lr = nan", "lr must be a finite number, got nan"),
    ("finetune", "--config", "lr = -1", "lr must be > 0, got -1"),
    ("finetune", "--config", 'lr = "fast"', "lr must be a number, got 'fast'"),
    ("finetune", "--config", "weight_decay = nan", "weight_decay must be a finite number, got nan"),
    ("finetune", "--config", "batch_size = 0", "batch_size must be >= 1, got 0"),
    ("finetune", "--config", "epochs = 0", "epochs must be >= 1, got 0"),
    ("pretrain", "--config", "lr = nan", "lr must be a finite number, got nan"),
    ("pretrain", "--config", 'lr = "x"', "lr must be a number, got 'x'"),
    ("pretrain", "--config", "batch_size = 0", "batch_size must be >= 1, got 0"),
    ("pretrain", "--encoder-config", "d_model = 0", "d_model must be >= 1, got 0"),
])
def test_bad_config_values_are_one_line_errors_naming_file_and_key(home, no_work, tmp_path, cmd, option, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text + "\n")
    extra = ["--no-pretrain"] if cmd == "finetune" else ["-q"]
    assert_one_line_refusal(invoke(cmd, "-d", "uci", *extra, option, str(f)), f"{f}: {message}")
    assert not no_work


@pytest.mark.parametrize("cmd", [["pretrain", "-q"], ["finetune", "--no-pretrain"], ["cross", "-td", "motion"]])
@pytest.mark.parametrize("sources, message", [
    (",", "--dataset names no dataset"), ("", "--dataset names no dataset"),
    ("uci,motion,uci", "--dataset names uci twice"),
    ("uci,uci@waist", "--dataset names uci and uci@waist: the whole dataset holds the windows of uci@waist already"),
    ("motion@pocket,motion", "--dataset names motion and motion@pocket: the whole dataset"),
])
def test_sources_naming_none_or_one_twice_are_refused_before_any_work(home, no_work, cmd, sources, message):
    """`-d ,` was a traceback (pretrain: IndexError) or a misleading "no class in common"; `-d uci,uci` pooled uci's
    windows twice, silently, each counted double in training and validation; `-d uci,uci@waist` too."""
    assert_one_line_refusal(invoke(cmd[0], "-d", sources, *cmd[1:]), message)
    assert not no_work


@pytest.mark.parametrize("args, message", [
    (["finetune", "-d", "uci", "--no-pretrain", "--head", "nosuch"], "unknown head 'nosuch'; known: "),
    (["cross", "-d", "uci", "-td", "motion", "--head", "nosuch"], "unknown head 'nosuch'; known: "),
    (["finetune", "-d", "uci", "--no-pretrain", "--head", "din", "--head-config", "GRU"],
     "gru.toml: unknown option(s) chunk, dense, hidden, num_layers for head 'din'"),
    (["finetune", "-d", "uci", "--no-pretrain", "--head-config", "ABSENT"], "head config file not found: "),
    (["finetune", "-d", "uci", "--no-pretrain", "--freeze"], "--freeze freezes the encoder, but --no-pretrain has no encoder"),
    (["finetune", "-d", "uci", "--no-pretrain", "--device", ""], "--device must be auto, cpu, cuda or cuda:N, got ''"),
])
def test_heads_and_contradictions_are_refused_before_any_work(home, no_work, tmp_path, args, message):
    """An unknown head (or options for another head) was found only when the model was built: after the sources were
    prepared (finetune) or after a whole encoder was pretrained and filed (cross, when no run matched)."""
    from crosshar.config import config_dir

    subst = {"GRU": str(config_dir() / "heads" / "gru.toml"), "ABSENT": str(tmp_path / "absent.toml")}
    assert_one_line_refusal(invoke(*[subst.get(a, a) for a in args]), message)
    assert not no_work and not (home / "runs").exists() and not (home / "cache").exists()


def _fake_run(d, finished: bool):
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"finished": finished}))
    (d / ("best.pt" if finished else "last.pt")).write_bytes(b"weights")
    return d


def test_out_holding_a_run_is_refused_without_resume_or_force(home, no_work, tmp_path):
    done, cut = _fake_run(tmp_path / "done", True), _fake_run(tmp_path / "cut", False)
    assert_one_line_refusal(invoke("pretrain", "-d", "uci", "-q", "--out", str(done)),
                            f"--out {done} already holds a finished run (run.json, best.pt); pass --force to replace it")
    assert_one_line_refusal(invoke("pretrain", "-d", "uci", "-q", "--out", str(cut)),
                            "already holds an unfinished run (run.json, last.pt); pass --resume to continue it, --force")
    assert_one_line_refusal(invoke("finetune", "-d", "uci", "--no-pretrain", "--out", str(done)),
                            f"--out {done} already holds a finished run", "--force")
    assert not no_work and (done / "best.pt").read_bytes() == b"weights"
    # --resume (pretrain) and --force go on; a new folder is no run
    assert invoke("pretrain", "-d", "uci", "-q", "--out", str(cut), "--resume").exit_code == 0
    (done / "tb").mkdir()
    (done / "tb" / "events.out").write_bytes(b"old curves")
    (done / "notes.txt").write_text("mine\n")
    assert invoke("pretrain", "-d", "uci", "-q", "--out", str(done), "--force").exit_code == 0
    # --force starts over: the old run's files and TensorBoard events are gone (they mixed with the new run's)
    assert sorted(p.name for p in done.iterdir()) == ["notes.txt"]
    (done / "best.pt").write_bytes(b"weights")
    assert invoke("finetune", "-d", "uci", "--no-pretrain", "--out", str(done), "--force").exit_code == 0
    assert invoke("finetune", "-d", "uci", "--no-pretrain", "--out", str(tmp_path / "new")).exit_code == 0
    assert [c[0].rsplit(".", 1)[-1] for c in no_work] == ["run", "run", "make_job", "run", "make_job", "run"]


def test_out_holding_a_run_cut_before_its_first_checkpoint(home, no_work, tmp_path):
    """Ctrl-C in epoch 1 leaves run.json + tb/ (pretrain) or tb/ alone (finetune writes run.json last), no
    checkpoint. Such an --out is refused naming that; --resume / --force start over in it without the cut run's
    TensorBoard events (finetune used to write into it silently, mixing the two runs' curves)."""
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    for d in (pre, ft):
        (d / "tb").mkdir(parents=True)
        (d / "tb" / "events.out").write_bytes(b"epoch 1, cut")
    (pre / "run.json").write_text(json.dumps({"finished": False}))
    assert_one_line_refusal(invoke("pretrain", "-d", "uci", "-q", "--out", str(pre)),
                            f"--out {pre} holds a run interrupted before its first checkpoint (run.json, tb/), "
                            "nothing to resume; pass --force")
    assert_one_line_refusal(invoke("finetune", "-d", "uci", "--no-pretrain", "--out", str(ft)),
                            f"--out {ft} holds a run interrupted before its first checkpoint (tb/)")
    assert not no_work and (ft / "tb" / "events.out").exists()
    assert invoke("pretrain", "-d", "uci", "-q", "--out", str(pre), "--resume").exit_code == 0
    assert invoke("finetune", "-d", "uci", "--no-pretrain", "--out", str(ft), "--force").exit_code == 0
    assert not any(pre.iterdir()) and not any(ft.iterdir())


@pytest.mark.parametrize("name", ["../../escape", "/tmp/x", "a/b", "", " ", ".", ".."])
def test_a_result_name_is_a_plain_name(home, no_work, name):
    for cmd in (["cross", "-d", "uci", "-td", "motion"], ["matrix", "-d", "uci,motion"]):
        res = invoke(*cmd, "--name", name)
        assert_one_line_refusal(res, "--name must")
    assert not no_work and not (home / "results").exists()
    invoke("cross", "-d", "uci", "-td", "motion", "--name", "keep-this_1")  # a plain name reaches the work
    assert no_work[-1][2]["name"] == "keep-this_1"


@pytest.mark.parametrize("args, message", [
    (["--n-seeds", "0"], "--n-seeds must be >= 1 (how many seeds per cell), got 0"),
    (["--n-seeds", "-1"], "--n-seeds must be >= 1 (how many seeds per cell), got -1"),
    (["--pretrain-epochs", "0"], "--pretrain-epochs must be >= 1, got 0"),
    (["-lr", "0"], "--label-rate must be in (0, 1], got 0.0"),
    (["-d", "uci"], "--dataset uci forms no (source, target) pair for scratch"),
    (["--heads", ","], "--head names nothing"),
])
def test_matrix_refuses_options_that_give_an_empty_report(home, no_work, args, message):
    assert_one_line_refusal(invoke("matrix", "--methods", "scratch", *args), message)
    assert not no_work and not (home / "results").exists()


def test_matrix_report_only_needs_rows(home, no_work):
    assert_one_line_refusal(invoke("matrix", "-d", "uci,motion", "--report-only", "--name", "neverran"),
                            "--report-only: no rows in", "neverran")
    assert not (home / "results" / "neverran").exists()


TINY_TOMLS = {
    "pretrain.toml": "stage1_epochs = 1\nstage2_epochs = 1\nbatch_size = 32\nwarmup_epochs = 1\nproj_dim = 16\n",
    "encoder.toml": "d_model = 24\nd_ff = 48\nn_heads = 2\nn_layers = 1\n",
    "finetune.toml": 'head = "linear"\nepochs = 2\nbatch_size = 32\nlabel_rate = 0.5\n',
}


@pytest.mark.slow
def test_pretrain_finetune_cross_embed_chain(synth, home, tmp_path):
    for name, text in TINY_TOMLS.items():
        (tmp_path / name).write_text(text)
    pre = home / "runs" / "pretrain" / "uci-tiny"
    res = invoke("pretrain", "-d", "uci", "--config", str(tmp_path / "pretrain.toml"), "--encoder-config",
                 str(tmp_path / "encoder.toml"), "--epochs", "4", "--out", str(pre), "--quiet")
    assert res.exit_code == 0, res.output
    info = json.loads((pre / "run.json").read_text())
    assert [h["stage"] for h in info["history"]] == [1, 1, 2, 2]  # --epochs split in the config's proportion
    assert info["configs"]["encoder"]["d_model"] == 24

    # without --encoder, finetune takes the latest pretraining run of the dataset (and says so)
    ft = tmp_path / "ft"
    res = invoke("finetune", "-d", "uci", "--config", str(tmp_path / "finetune.toml"), "-lr", "0.4", "--out", str(ft))
    assert res.exit_code == 0, res.output
    assert "using the latest pretraining run for uci" in " ".join(res.output.split())
    ft_info = json.loads((ft / "run.json").read_text())
    assert ft_info["encoder_run"] == str(pre) and ft_info["configs"]["finetune"]["label_rate"] == 0.4

    res = invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--out", str(tmp_path / "x"))
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "macro-F1" in res.output and (tmp_path / "x" / "results.json").is_file()
    # --run repeated: the models' probabilities averaged (the same run twice scores as the run alone)
    res = invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--run", str(ft), "--out", str(tmp_path / "y"))
    assert res.exit_code == 0, res.output
    both, alone = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("y", "x"))
    assert both["ensemble_runs"] == [str(ft)] * 2 and both["metrics"] == alone["metrics"]
    res = invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--tta", "2", "--out", str(tmp_path / "t"))
    assert res.exit_code == 0 and "2 test-time views" in " ".join(res.output.split()), res.output
    assert json.loads((tmp_path / "t" / "results.json").read_text())["tta"] == 2
    assert invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--tta", "-1").exit_code == 2
    res = invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--tta", "2", "--tta-views", "motion",
                 "--out", str(tmp_path / "tm"))
    assert res.exit_code == 0 and "without the device orientation" in " ".join(res.output.split()), res.output
    assert json.loads((tmp_path / "tm" / "results.json").read_text())["tta_views"] == "motion"
    assert_refused(invoke("cross", "-d", "uci", "-td", "motion", "--run", str(ft), "--tta-views", "sideways"),
                   "--tta-views", "sideways")

    res = invoke("embed", "-d", "motion", "--encoder", str(pre), "--out", str(tmp_path / "e.npz"))
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "e.npz") as z:
        assert z["embeddings"].shape == (40, 120, 24) and len(z["labels"]) == 40
