"""finetune/run.py: which encoder and which windows a finetuning job gets when the command line does not say."""

from __future__ import annotations

import json
import os

import pytest

from crosshar import config as C
from crosshar.errors import CrossharError
from crosshar.finetune.run import resolve_encoder
from crosshar.pretrain.run import make_job as pretrain_job


def fake_run(root, name: str, window: dict, mtime: float, source: str = "uci"):
    d = root / "runs" / "pretrain" / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"finished": True, "source": source, "configs": {"window": window}}))
    (d / "best.pt").write_bytes(b"weights")
    os.utime(d / "run.json", (mtime, mtime))
    return d


def test_the_latest_encoder_is_never_a_folder_without_a_checkpoint(tmp_path, monkeypatch):
    """A newer run folder with no best.pt / last.pt (interrupted before its first checkpoint, or emptied) has
    nothing to load: the lookup passes over it to the newest run that has one."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path))
    default = C.load("window").to_dict()
    usual = fake_run(tmp_path, "uci-1", default, 1000.0)
    (fake_run(tmp_path, "uci-2", default, 2000.0) / "best.pt").unlink()
    assert resolve_encoder("uci", None, False, lambda _: None) == str(usual)
    (usual / "best.pt").unlink()
    with pytest.raises(CrossharError, match="no finished pretraining run for uci"):
        resolve_encoder("uci", None, False, lambda _: None)


def test_the_default_encoder_has_the_default_windows(tmp_path, monkeypatch):
    """`cross -d uci -td hhar` pretrains uci on hhar's windows (acc, z-normalised, 128 at 50 Hz); the next
    `finetune -d uci` took that run as "the latest pretraining run" without a word."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path))
    default = C.load("window").to_dict()
    hhar = C.WindowConfig(rate_hz=50.0, window=128, stride=128, channels="acc", normalize="zscore_subject").to_dict()
    usual = fake_run(tmp_path, "uci-1", default, 1000.0)
    fake_run(tmp_path, "uci-2", hhar, 2000.0)
    said: list[str] = []
    assert resolve_encoder("uci", None, False, said.append) == str(usual)
    assert "with the default windows" in said[0]
    (usual / "run.json").unlink()  # only the other kind left: used, and said so
    said.clear()
    assert resolve_encoder("uci", None, False, said.append).endswith("uci-2")
    assert "its windows are not the default ones" in said[0] and "--encoder PATH" in said[0]


def test_accelerometer_only_sources_get_accelerometer_only_windows(tmp_path, monkeypatch):
    """A folder of acc-only data could not be pretrained or finetuned without a window config of its own
    ("dataset 'custom' has no gyroscope here"); it now gets channels = "acc", as data prepare chooses."""
    from crosshar.data.sources import for_sources
    from crosshar.data.store import prepare
    from crosshar.errors import ConfigError

    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "crosshar.toml").write_text('name = "acclab"\nrate_hz = 50\nacc_columns = ["ax", "ay", "az"]\n'
                                       'subject_column = "who"\n')
    (lab / "a.csv").write_text("who,ax,ay,az\n" + "".join(f"s1,0.1,9.8,{0.01 * (i % 7)}\n" for i in range(700)))
    assert for_sources(C.load("window"), [str(lab)], None).channels == "acc"
    assert pretrain_job((str(lab),)).window.channels == "acc"
    assert pretrain_job((str(lab),), channels="acc+gyro").window.channels == "acc+gyro"  # asked for: kept
    with pytest.raises(ConfigError, match=r"dataset 'acclab' has no gyroscope here; use channels = \"acc\""):
        prepare(str(lab), cfg=C.load("window"))


def test_options_a_recipe_would_ignore_are_refused():
    """--mount under --preset paper (augment = false) trained the same model and recorded mount = 0.5;
    --head-input embedding+window with no encoder put the window beside itself (nothing changed)."""
    from crosshar.errors import ConfigError
    from crosshar.finetune.run import make_job

    paper = C.load("finetune").replace(augment=False)
    with pytest.raises(ConfigError, match="--mount needs the finetuning augmentation"):
        make_job(("uci",), paper, {}, None, "crosshar4", None, mount=0.5)
    skip = C.load("finetune").replace(head_input="embedding+window")
    with pytest.raises(ConfigError, match="--skip-frame FRAME"):
        make_job(("uci",), skip, {}, None, "crosshar4", None)
    with pytest.raises(ConfigError, match="cadence_views > 1 needs augment = true"):
        paper.replace(cadence_views=3)


def test_test_time_views_need_the_augmentation_the_model_saw(tmp_path):
    """A model finetuned without augmentation drew --tta views from the unused default one (macro-F1 moved from
    0.394 to 0.509 on views it never saw); its meta now records no augmentation, and the views are refused."""
    from crosshar.errors import CrossharError
    from crosshar.inference import run_augment

    with pytest.raises(CrossharError, match="finetuned without augmentation"):
        run_augment({"augment": None}, tmp_path)
    assert run_augment({"augment": C.load("augment_finetune").to_dict()}).mirror_p > 0
