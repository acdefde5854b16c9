"""`crosshar data download`: unpack a local archive into the data folder, record its SHA-256,
refuse a changed archive from the same source and archives with unsafe member paths."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from typer.testing import CliRunner

from crosshar.data.download import RECORD, download
from crosshar.data.store import get_dataset, prepare
from crosshar.errors import DataError
from synthdata import uci_files


def make_zip(path, files: dict[str, str]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


@pytest.fixture
def archive(tmp_path):
    return make_zip(tmp_path / "hapt.zip", uci_files(users=(1, 2), exps_per_user=1))


def test_download_unpacks_and_records_the_checksum(archive, tmp_path, monkeypatch):
    data = tmp_path / "data"
    rep = download(get_dataset("uci"), data, src=str(archive))
    target = data / "uci_hapt"
    assert rep["folder"] == str(target) and not rep["verified"]  # no known checksum for a local copy
    assert (target / "RawData" / "labels.txt").is_file() and (target / "RawData" / "acc_exp01_user01.txt").is_file()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert rep["sha256"] == digest and rep["size"] == archive.stat().st_size
    record = json.loads((data / RECORD).read_text())
    assert record["uci"][str(archive)] == {"size": archive.stat().st_size, "sha256": digest}
    assert sorted(p.name for p in data.iterdir()) == sorted([RECORD, "uci_hapt"])  # no temporary left
    # the unpacked folder is a dataset that prepares
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    assert len(prepare("uci", data)) == 20
    # the same archive again is fine
    assert download(get_dataset("uci"), data, src=str(archive))["sha256"] == digest


def test_a_changed_archive_from_the_same_source_is_refused(archive, tmp_path):
    data = tmp_path / "data"
    first = download(get_dataset("uci"), data, src=str(archive))
    make_zip(archive, uci_files(users=(1, 2), exps_per_user=1, seed=7))  # same path, other content
    with pytest.raises(DataError, match="differs from the one recorded"):
        download(get_dataset("uci"), data, src=str(archive))
    assert json.loads((data / RECORD).read_text())["uci"][str(archive)]["sha256"] == first["sha256"]


@pytest.mark.parametrize("member", ["../evil.txt", "RawData/../../evil.txt", "/tmp/evil.txt"])
def test_unsafe_member_paths_are_refused(tmp_path, member):
    arc = make_zip(tmp_path / "bad.zip", {"RawData/labels.txt": "1 1 1 0 9\n", member: "gotcha"})
    data = tmp_path / "sub" / "data"
    with pytest.raises(DataError, match="unsafe path"):
        download(get_dataset("uci"), data, src=str(arc))
    assert not (tmp_path / "sub" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (data / "uci_hapt").exists() and not (data / RECORD).exists()


def test_missing_source_is_a_clean_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        download(get_dataset("uci"), tmp_path / "data", src=str(tmp_path / "absent.zip"))


def test_cli_download_from_a_local_archive(archive, tmp_path):
    from crosshar.cli import app

    data = tmp_path / "data"
    res = CliRunner().invoke(app, ["data", "download", "-d", "uci", "--from", str(archive), "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = " ".join(res.output.split())
    assert digest[:16] in out and "checksum recorded" in out and "uci_hapt" in out
    assert (data / "uci_hapt" / "RawData" / "labels.txt").is_file()
    make_zip(archive, {"RawData/labels.txt": "changed\n"})
    res = CliRunner().invoke(app, ["data", "download", "-d", "uci", "--from", str(archive), "--data-dir", str(data)])
    assert res.exit_code == 2 and "differs from the one recorded" in res.output and "Traceback" not in res.output


def test_tar_archives_unpack_and_unsafe_tar_members_are_refused(tmp_path):
    import io
    import tarfile

    def make_tar(path, files):
        with tarfile.open(path, "w:gz") as t:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return path

    ok = make_tar(tmp_path / "hapt.tar.gz", uci_files(users=(1,), exps_per_user=1))
    rep = download(get_dataset("uci"), tmp_path / "data", src=str(ok))
    assert (tmp_path / "data" / "uci_hapt" / "RawData" / "labels.txt").is_file() and rep["size"] == ok.stat().st_size
    bad = make_tar(tmp_path / "bad.tar.gz", {"RawData/labels.txt": "1 1 1 0 9\n", "../evil.txt": "gotcha"})
    with pytest.raises(DataError, match="unsafe path"):
        download(get_dataset("uci"), tmp_path / "other", src=str(bad))
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "other" / "uci_hapt").exists()


@pytest.mark.parametrize("name", ["fake.zip", "fake.tar.gz"])
def test_a_file_named_as_an_archive_that_is_none_is_refused(tmp_path, name):
    """It was copied in as it came, its checksum recorded, and `prepare` failed later on a folder holding it."""
    (tmp_path / name).write_text("<html>503 Service Unavailable</html>\n")
    with pytest.raises(DataError, match="not a readable zip or tar archive, though named as one"):
        download(get_dataset("uci"), tmp_path / "data", src=str(tmp_path / name))
    assert not (tmp_path / "data" / "uci_hapt").exists() and not (tmp_path / "data" / RECORD).exists()
    (tmp_path / "Shoaib.rar").write_bytes(b"Rar!\x1a\x07\x00")  # a format Python cannot unpack: kept as it came
    rep = download(get_dataset("shoaib"), tmp_path / "data", src=str(tmp_path / "Shoaib.rar"))
    assert (tmp_path / "data" / "shoaib" / "Shoaib.rar").is_file() and not rep["verified"]
