"""Run folders: two commands never write one --out at once, and a run that appears in --out while a command
loads its data is refused, not replaced."""

from __future__ import annotations

import fcntl
import os

import pytest

from crosshar.errors import ConfigError
from crosshar.train import runs


@pytest.fixture
def other_command(tmp_path):
    """The folder locked as another running command's process holds it (its own open file description)."""
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield out
    os.close(fd)


def test_a_folder_another_command_writes_is_refused_at_the_check_and_at_creation(other_command):
    """Two `crosshar finetune --out X` at once both ran, both said "X/best.pt", and X held one's best.pt, the
    other's run.json and both runs' TensorBoard events."""
    for call in (lambda: runs.refuse_overwrite(other_command, False), lambda: runs.new_run_dir("finetune", "uci", other_command)):
        with pytest.raises(ConfigError, match="is being written by another running crosshar command"):
            call()
    assert not any(other_command.iterdir())


def test_one_process_holds_one_run_folder_at_a_time(tmp_path):
    a, b = runs.new_run_dir("pretrain", "uci", tmp_path / "a"), runs.new_run_dir("finetune", "uci", tmp_path / "b")
    fd = os.open(a, os.O_RDONLY)  # a was released when b was taken: another command may now take it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert runs.new_run_dir("finetune", "uci", b) == b  # the folder it holds: taken again without a conflict


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    """Two `crosshar finetune` without --out started in one second wrote into one runs/finetune/<tag>-<time>/."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path))
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20260101-000000")
    a, b = runs.new_run_dir("finetune", "uci"), runs.new_run_dir("finetune", "uci")
    assert a != b and a.name == "uci-20260101-000000" and b.name == "uci-20260101-000000-2"


def test_a_run_written_into_out_after_the_check_is_refused_not_replaced(tmp_path):
    out = tmp_path / "out"
    runs.refuse_overwrite(out, False)  # an empty --out: accepted; then the data loads...
    out.mkdir()
    (out / "best.pt").write_bytes(b"another command's model")  # ...while another command finishes a run there
    with pytest.raises(ConfigError, match=r"another crosshar command wrote a run into it \(best.pt\)"):
        runs.new_run_dir("finetune", "uci", out)
    assert (out / "best.pt").read_bytes() == b"another command's model"


def test_resume_and_force_keep_working(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")
    (out / "run.json").write_text('{"finished": false}')
    runs.refuse_overwrite(out, False, resume=True)
    assert runs.new_run_dir("pretrain", "uci", out) == out and (out / "last.pt").exists()
    runs.refuse_overwrite(out, True, resume=False)
    assert runs.new_run_dir("pretrain", "uci", out) == out and not (out / "last.pt").exists()


def test_resume_with_force_and_resume_of_another_kind_of_run_are_refused(tmp_path):
    """--resume --force resumed an unfinished run (--force ignored) and, for a finished one, advised the --force
    already given; they are refused together. --resume --out naming a run of another kind (a pretraining run given to
    finetune) is refused naming what it holds, before anything is written into it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")
    (out / "run.json").write_text('{"finished": true, "kind": "pretrain"}')
    for where in (out, None):
        with pytest.raises(ConfigError, match=r"^--resume continues the run in --out and --force starts it over"):
            runs.refuse_overwrite(where, True, resume=True)
    assert (out / "last.pt").exists()
    with pytest.raises(ConfigError, match=rf"^--resume: {out} holds a pretraining run, not a finetuning run"):
        runs.run_to_resume("finetune", "uci", out)
    assert runs.run_to_resume("pretrain", "uci", out) == out


def test_a_damaged_run_json_is_not_a_run_and_no_traceback(tmp_path):
    """A run.json holding [] (or a number) made every newest-run lookup fail with an AttributeError."""
    for name, text in (("a", "[]"), ("b", "3"), ("c", '{"finished": true, "source": "uci"}')):
        (tmp_path / "finetune" / name).mkdir(parents=True)
        (tmp_path / "finetune" / name / "run.json").write_text(text)
        (tmp_path / "finetune" / name / "best.pt").write_bytes(b"")
    assert [p.name for p, _ in runs.find_runs("finetune", root=tmp_path)] == ["c"]
