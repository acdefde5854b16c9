"""Config files: unknown keys and bad values are ConfigErrors naming the file, overrides apply,
and every packaged TOML equals its dataclass's (or head's) defaults, so the two cannot drift."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib

import pytest

import crosshar.models.heads  # noqa: F401  (registers the heads)
from crosshar import config as C
from crosshar.config import (AugmentConfig, CrossConfig, EncoderConfig, FinetuneConfig, PretrainConfig,
                             WindowConfig, config_dir, head_config, load)
from crosshar.errors import ConfigError
from crosshar.registry import HEADS

CLASSES = {"window": WindowConfig, "encoder": EncoderConfig, "augment": AugmentConfig,
           "pretrain": PretrainConfig, "finetune": FinetuneConfig, "cross": CrossConfig}


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "pretrain.toml"
    f.write_text("stage1_epochs = 3\nstage1_epoch = 4\n")  # a typo must not be ignored
    with pytest.raises(ConfigError, match=r"pretrain\.toml: unknown key\(s\) stage1_epoch for \[PretrainConfig\]"):
        PretrainConfig.from_toml(f)
    with pytest.raises(ConfigError, match="stage1_epoch"):
        load("pretrain", f)


@pytest.mark.parametrize("cls, text, words", [
    (PretrainConfig, "mask_ratio = 1.5", "mask_ratio"),
    (PretrainConfig, "val_fraction = 0.0", "val_fraction"),
    (FinetuneConfig, 'optimizer = "sgd"', "optimizer must be adamw, adam or lion"),
    (FinetuneConfig, "label_rate = 0", "label_rate"),
    (WindowConfig, 'channels = "gyro"', "channels"),
    (WindowConfig, 'window = "long"', "window.toml"),  # a wrong type is a ConfigError too, not a TypeError
    (EncoderConfig, "d_model = 70\nn_heads = 4", "divisible"),
    (AugmentConfig, "gain_std = -0.1", "gain_std"),
    (AugmentConfig, 'mirror_plane = "sagittal"', "mirror_plane must be one of random, device"),
])
def test_bad_values_are_config_errors(tmp_path, cls, text, words):
    f = tmp_path / {WindowConfig: "window.toml"}.get(cls, "c.toml")
    f.write_text(text + "\n")
    with pytest.raises(ConfigError, match=words):
        cls.from_toml(f)


def test_invalid_toml_and_missing_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        PretrainConfig.from_toml(f)
    with pytest.raises(ConfigError, match="config file not found"):
        PretrainConfig.from_toml(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="unknown config kind"):
        load("nonsense")


def test_load_with_overrides(tmp_path):
    cfg = load("pretrain", seed=5, lr=None)  # None means "not given": the file's value stays
    assert cfg.seed == 5 and cfg.lr == PretrainConfig().lr
    f = tmp_path / "p.toml"
    f.write_text("stage1_epochs = 3\nbatch_size = 8\n")
    cfg = load("pretrain", f, batch_size=16)
    assert (cfg.stage1_epochs, cfg.batch_size, cfg.stage2_epochs) == (3, 16, PretrainConfig().stage2_epochs)
    with pytest.raises(ConfigError, match="mask_ratio"):  # overrides are validated too
        load("pretrain", mask_ratio=2.0)


def test_configs_round_trip_and_are_frozen():
    cfg = PretrainConfig(stage1_epochs=1, seed=3)
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4  # type: ignore[misc]


@pytest.mark.parametrize("kind", list(CLASSES))
def test_packaged_toml_equals_dataclass_defaults(kind):
    path = config_dir() / f"{kind}.toml"
    assert path.is_file(), f"configs/{kind}.toml is missing"
    raw = tomllib.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(CLASSES[kind])}
    assert set(raw) == fields, f"{path}: keys differ from {CLASSES[kind].__name__}: {set(raw) ^ fields}"
    assert CLASSES[kind].from_toml(path) == CLASSES[kind]()
    assert load(kind) == CLASSES[kind]()


def test_finetune_augmentation_toml_is_complete_and_milder():
    path = config_dir() / "augment_finetune.toml"
    raw = tomllib.loads(path.read_text())
    assert set(raw) == {f.name for f in dataclasses.fields(AugmentConfig)}
    ft = load("augment_finetune")
    assert ft == AugmentConfig.from_toml(path)
    assert ft.rotation_p < load("augment").rotation_p


def test_every_toml_in_configs_is_covered():
    names = {p.stem for p in config_dir().glob("*.toml")}
    assert names == set(CLASSES) | {"augment_finetune"}, names ^ set(CLASSES)


@pytest.mark.parametrize("name", HEADS.names())
def test_head_toml_matches_the_head_constructor(name):
    path = config_dir() / "heads" / f"{name}.toml"
    assert path.is_file(), f"registered head {name!r} has no configs/heads/{name}.toml"
    cfg = head_config(name)
    params = inspect.signature(HEADS.get(name).__init__).parameters
    unknown = set(cfg) - set(params)
    assert not unknown, f"{path}: keys {unknown} are not arguments of the {name} head"
    for k, v in cfg.items():
        default = params[k].default
        norm = tuple(v) if isinstance(v, list) else v
        assert norm == (tuple(default) if isinstance(default, (list, tuple)) else default), (name, k, v, default)


def test_every_head_toml_is_a_registered_head():
    # <head>.toml is the default preset, <head>.<preset>.toml the others (head_preset)
    assert {p.name.split(".")[0] for p in (config_dir() / "heads").glob("*.toml")} == set(HEADS.names())


def test_head_config_invalid_toml(tmp_path):
    f = tmp_path / "h.toml"
    f.write_text("dim = [1,\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        head_config("linear", f)
    with pytest.raises(ConfigError, match="not found"):  # an explicit path that is not there is an error
        C.head_config("linear", tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not found"):
        C.load("pretrain", tmp_path / "absent.toml")


def test_unreadable_config_files_are_one_line_errors_naming_them(tmp_path):
    """A config that is not UTF-8 (a file saved as UTF-16, a binary picked by mistake) raised UnicodeDecodeError, a
    traceback; a folder in a file's place was "not found"; --head-config FILE missing said "no preset 'default'"."""
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b"\xff\xfe lr = 1\n")
    for read in (lambda: PretrainConfig.from_toml(bad), lambda: load("encoder", bad), lambda: head_config("din", bad),
                 lambda: C.head_preset("din", "default", path=bad)):
        with pytest.raises(ConfigError, match=r"latin\.toml: not valid TOML: not UTF-8"):
            read()
    folder = tmp_path / "conf.toml"
    folder.mkdir()
    for read in (lambda: PretrainConfig.from_toml(folder), lambda: load("finetune", folder),
                 lambda: head_config("din", folder), lambda: C.head_preset("din", "default", path=folder)):
        with pytest.raises(ConfigError, match=r"conf\.toml: is a directory"):
            read()
    with pytest.raises(ConfigError, match=r"^head config file not found: .*absent\.toml$"):
        C.head_preset("din", "default", path=tmp_path / "absent.toml")


def test_head_presets_check_the_head_and_its_options_naming_the_file(tmp_path):
    """An unknown head, or a head config written for another head, was caught only when the model was built (after
    the data was prepared; for `cross`, after an encoder was pretrained), and named "overrides", not the file."""
    with pytest.raises(ConfigError, match="unknown head 'nosuch'"):
        C.head_preset("nosuch")
    with pytest.raises(ConfigError, match="unknown head 'nosuch'"):
        C.check_head("nosuch")
    gru = config_dir() / "heads" / "gru.toml"
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(gru))}: unknown option\(s\) .*hidden.* for head 'din'"):
        C.head_preset("din", "default", path=gru)
    f = tmp_path / "h.toml"
    f.write_text("dim = 0\n")
    with pytest.raises(ConfigError, match=r"h\.toml: dim must be a whole number >= 1 \(head 'din'\), got 0"):
        C.head_preset("din", "default", path=f)
    f.write_text("dim = 16\n")
    assert C.head_preset("din", "default", path=f)[0] == {"dim": 16}


def test_paper_recipe_overrides_the_defaults_and_unknown_recipes_are_errors():
    enc = C.load("encoder", recipe_name="paper")
    assert (enc.n_layers, enc.norm, enc.input_scaling, enc.input_frame) == (1, "post", "instance", "device")
    assert C.load("augment", recipe_name="paper").mirror_p == 0 and C.load("augment").mirror_p > 0
    p = C.load("pretrain", recipe_name="paper", seed=3)  # explicit overrides still win
    assert (p.views, p.mask_per_window, p.lr_schedule, p.seed) == ("tstcc", True, "constant", 3)
    assert C.head_config("transformer", recipe_name="paper")["d_ff"] == 2048
    assert C.head_config("din", recipe_name="paper") == C.head_config("din")  # the recipe's head is the transformer
    with pytest.raises(ConfigError, match="unknown recipe"):
        C.load("encoder", recipe_name="nonsense")


def test_the_defaults_are_the_measured_combination_and_next_holds_no_candidate():
    """crosshar_combo's three changes (evaluate/methods.py), measured on the whole matrix under `--recipe next`, are
    the shipped defaults; the next recipe then changes nothing; the paper presets keep the papers' (no smoothing)."""
    from crosshar.evaluate.methods import METHODS

    combo = METHODS["crosshar_combo"]
    assert C.load("pretrain").mse_channels == combo.mse_channels
    assert C.load("finetune").label_smoothing == combo.smoothing
    assert C.head_config("din") == C.head_config("din") | dict(combo.head_options)
    for kind in ("window", "encoder", "augment", "augment_finetune", "pretrain", "finetune"):
        assert C.load(kind, recipe_name="next") == C.load(kind)
    for head in ("din", "transformer"):
        assert C.head_config(head, recipe_name="next") == C.head_config(head)
    assert C.load("pretrain", recipe_name="paper").mse_channels == "raw"
    for head in ("cnn_lstm_attn", "danhar", "din", "gru", "mag_res2net", "transformer"):
        assert C.head_preset(head, "paper")[1].label_smoothing == 0.0, head


def test_a_heads_table_that_is_not_one_table_per_head_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "next.toml").write_text("[heads]\nattn_dropout = 0.0\n")
    monkeypatch.setattr(C, "config_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"recipe 'next': \[heads\] must hold one table per head"):
        C.head_config("din", recipe_name="next")


def test_a_file_the_user_names_wins_over_the_recipe_where_it_sets_a_key(tmp_path):
    """`pretrain --preset paper --encoder-config F`: the recipe overrode what F set, silently; now F's keys win and the
    recipe sets the rest."""
    f = tmp_path / "enc.toml"
    f.write_text("n_layers = 3\ninput_frame = \"gravity\"\n")
    enc = C.load("encoder", f, recipe_name="paper")
    assert (enc.n_layers, enc.input_frame) == (3, "gravity")  # the file's
    assert (enc.norm, enc.input_scaling) == ("post", "instance")  # the recipe's, where the file is silent
    assert C.load("encoder", f).norm == C.load("encoder").norm  # without the recipe: the file over the defaults


NUMERIC_FIELDS = [(cls, f.name) for cls in CLASSES.values() for f in dataclasses.fields(cls) if f.type in ("int", "float")]


@pytest.mark.parametrize("cls, name", NUMERIC_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC_FIELDS])
def test_every_numeric_field_is_checked_for_type_finiteness_and_sign(tmp_path, cls, name):
    """No numeric field of any config takes a word, a bool, nan, inf or a negative number: each is a one-line
    ConfigError naming the file and the key, never a crash (TypeError, ZeroDivisionError) in training."""
    f = tmp_path / "c.toml"
    for value in ('"fast"', "true", "nan", "inf", "-inf", "-1"):
        f.write_text(f"{name} = {value}\n")
        with pytest.raises(ConfigError, match="^" + re.escape(f"{f}: {name} must be ")) as e:
            cls.from_toml(f)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("cls, text, message", [
    (FinetuneConfig, "lr = 0", "lr must be > 0, got 0"),
    (FinetuneConfig, "epochs = 0", "epochs must be >= 1, got 0"),
    (FinetuneConfig, "epochs = 2.5", "epochs must be an integer, got 2.5"),
    (FinetuneConfig, "batch_size = 0", "batch_size must be >= 1, got 0"),
    (FinetuneConfig, "val_fraction = 1.0", "val_fraction must be in (0, 1), got 1.0"),
    (FinetuneConfig, 'freeze = "yes"', "freeze must be true or false, got 'yes'"),
    (FinetuneConfig, "head = 3", "head must be a string, got 3"),
    (PretrainConfig, "stage1_epochs = 0\nstage2_epochs = 0", "epochs (stage1_epochs + stage2_epochs) must be >= 1"),
    (PretrainConfig, "batch_size = 0", "batch_size must be >= 1, got 0"),
    (PretrainConfig, "lr = 0.0", "lr must be > 0, got 0.0"),
    (PretrainConfig, "span_max = 0", "span_max must be >= 1, got 0"),
    (PretrainConfig, "span_p = 0", "span_p must be in (0, 1], got 0"),
    (PretrainConfig, "mask_prob = 1.5", "mask_prob must be in [0, 1], got 1.5"),
    (PretrainConfig, "proj_dim = 0", "proj_dim must be >= 1, got 0"),
    (EncoderConfig, "d_model = 0", "d_model must be >= 1, got 0"),  # was a ZeroDivisionError
    (EncoderConfig, "n_heads = 0", "n_heads must be >= 1, got 0"),
    (EncoderConfig, "n_layers = 0", "n_layers must be >= 1, got 0"),
    (EncoderConfig, "dropout = 1.0", "dropout must be in [0, 1), got 1.0"),
    (WindowConfig, "rate_hz = 0", "rate_hz must be > 0, got 0"),
    (WindowConfig, "window = 1", "window must be >= 2, got 1"),
    (WindowConfig, "stride = 0", "stride must be >= 1, got 0"),
    (AugmentConfig, "cadence = 1.0", "cadence must be in [0, 1), got 1.0"),
    (CrossConfig, "label_rate = 0", "label_rate must be in (0, 1], got 0"),
    (CrossConfig, "label_rate = 1.5", "label_rate must be in (0, 1], got 1.5"),
])
def test_out_of_range_values_name_file_key_and_range(tmp_path, cls, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        cls.from_toml(f)
    assert str(e.value).startswith(f"{f}: {message}"), str(e.value)


def test_integers_are_numbers_and_overrides_are_checked_too(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("lr = 1\nweight_decay = 0\n")  # TOML integers where floats are expected are fine
    assert FinetuneConfig.from_toml(f).lr == 1
    with pytest.raises(ConfigError, match=r"^\[FinetuneConfig\] epochs must be >= 1, got 0$"):
        load("finetune", epochs=0)
    with pytest.raises(ConfigError, match=r"^\[PretrainConfig\] lr must be a finite number, got nan$"):
        load("pretrain", lr=float("nan"))
