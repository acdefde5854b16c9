"""crosshar.atomic: whole-or-nothing writes, with the mode an ordinary write would give."""

from __future__ import annotations

import os
import stat

import pytest

from crosshar.atomic import atomic_write_bytes, atomic_write_json


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_umask_mode_not_a_private_one(tmp_path, umask, mode):
    """mkstemp's 0600 made every exported model, cache and result unreadable to other users (a service on the
    board that runs the model) whatever the umask."""
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "model.onnx", b"x")
        atomic_write_json(tmp_path / "run.json", {"a": 1})
    finally:
        os.umask(old)
    for name in ("model.onnx", "run.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    (tmp_path / "r.json").write_text("old\n")
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "r.json", "not bytes")  # type: ignore[arg-type]
    assert (tmp_path / "r.json").read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_full_disk_is_one_error_naming_the_file_and_the_old_file_stays(tmp_path, monkeypatch):
    """A write that failed halfway (no space left) raised a bare OSError, a traceback from every command; it is now
    a CrossharError naming the file, the temporary file is gone and the file it would have replaced is untouched."""
    import errno

    from crosshar import atomic
    from crosshar.errors import CrossharError

    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(CrossharError, match=r"model\.onnx: cannot be written \(No space left on device\); nothing"):
        atomic.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CrossharError, match=r"file/sub/x\.json: cannot be written"):
        atomic.atomic_write_json(tmp_path / "file" / "sub" / "x.json", {})
