"""The prepared-window cache: reused while current, rebuilt when the raw files or the config
change or the cache is damaged, written atomically, and `--on-bad skip` recorded in the manifest."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

import crosshar.atomic as atomic
import crosshar.data.store as store
from crosshar.config import WindowConfig
from crosshar.data.store import cached, prepare
from crosshar.data.readers.uci import UCI
from crosshar.errors import CrossharError, DataError
from synthdata import uci_files  # noqa: E402  (also puts rawfmt on the path)
from rawfmt import write_tree  # noqa: E402


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A two-subject UCI RawData folder of this test's own, and a cache of its own."""
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "data" / "uci_hapt", uci_files(users=(1, 2), exps_per_user=1))
    return tmp_path / "data"


@pytest.fixture
def loads(monkeypatch):
    """Counts calls of the UCI loader (a prepare that hits the cache makes none)."""
    n = {"calls": 0}
    real = UCI.load

    def counting(self, folder, bad):
        n["calls"] += 1
        return real(self, folder, bad)

    monkeypatch.setattr(UCI, "load", counting)
    return n


def cache_files(home):
    return sorted(p.name for p in (home / "cache").iterdir())


def test_cache_is_reused(data, loads):
    a = prepare("uci", data)
    assert loads["calls"] == 1 and len(a) == 20
    b = prepare("uci", data)
    assert loads["calls"] == 1  # served from the cache
    np.testing.assert_array_equal(a.X, b.X)
    assert (a.labels == b.labels).all() and (a.subjects == b.subjects).all() and (a.sessions == b.sessions).all()
    assert b.manifest == a.manifest and b.manifest["n_windows"] == 20
    assert b.config == WindowConfig()


def test_rebuilt_when_a_raw_file_changes(data, loads):
    prepare("uci", data)
    acc = data / "uci_hapt" / "RawData" / "acc_exp01_user01.txt"
    st = acc.stat()
    os.utime(acc, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same content, new mtime
    prepare("uci", data)
    assert loads["calls"] == 2
    # an edited labels file: one segment fewer, two windows fewer
    lab = data / "uci_hapt" / "RawData" / "labels.txt"
    lines = lab.read_text().splitlines(keepends=True)
    lab.write_text("".join(lines[:-1]))
    ws = prepare("uci", data)
    assert loads["calls"] == 3 and len(ws) == 18


def test_rebuilt_when_the_window_config_changes(data, loads):
    a = prepare("uci", data)
    b = prepare("uci", data, WindowConfig(stride=60))
    assert loads["calls"] == 2 and len(b) > len(a)
    assert len(cached("uci")) == 2  # both versions are kept side by side
    prepare("uci", data)
    assert loads["calls"] == 2


def test_cache_written_atomically(data, loads, tmp_path, monkeypatch):
    real = os.replace

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(CrossharError, match=r"uci-\w+\.npz: cannot be written \(disk full\); nothing was replaced"):
        prepare("uci", data)  # one line naming the file (it was a bare OSError: a traceback)
    assert not (tmp_path / "home" / "cache").exists() or cache_files(tmp_path / "home") == []  # no half cache
    monkeypatch.setattr(atomic.os, "replace", real)
    prepare("uci", data)
    files = cache_files(tmp_path / "home")
    assert len(files) == 2 and not any(f.endswith(".tmp") for f in files)


@pytest.mark.parametrize("part", ["npz", "json"])
def test_damaged_cache_is_rebuilt(data, loads, tmp_path, part):
    a = prepare("uci", data)
    f = next((tmp_path / "home" / "cache").glob(f"uci-*.{part}"))
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3])  # truncated, as by a crash or a full disk
    b = prepare("uci", data)
    assert loads["calls"] == 2
    np.testing.assert_array_equal(a.X, b.X)
    prepare("uci", data)
    assert loads["calls"] == 2  # and the rebuilt cache is good again


@pytest.mark.parametrize("edit", [
    lambda m: m["kept"].pop("tails_s"),  # a manifest of another version, or edited by hand
    lambda m: m["kept"].update(labelled_windows="many"),
    lambda m: m["skipped"].append({"file": "a.txt"}),
    lambda m: m["checks"].update(gravity={"median_ms2": 9.8}),
])
def test_an_edited_manifest_is_rebuilt_and_shown_as_damaged(data, loads, tmp_path, edit):
    """A manifest whose counts were well typed but whose kept/skipped/checks figures were not what prepare and
    `data info` print was served: both commands then ended in a traceback (KeyError, ValueError)."""
    from crosshar.cli import app
    from crosshar.data.store import read_manifest

    a = prepare("uci", data)
    f = next((tmp_path / "home" / "cache").glob("uci-*.json"))
    m = json.loads(f.read_text())
    edit(m)
    f.write_text(json.dumps(m))
    assert read_manifest(f) is None
    res = CliRunner().invoke(app, ["data", "info", "-d", "uci"])
    assert res.exit_code == 0 and "damaged (not a manifest)" in res.output, res.output
    b = prepare("uci", data)
    assert loads["calls"] == 2 and b.manifest == {**a.manifest, "seconds": b.manifest["seconds"]}
    assert read_manifest(f) is not None


def _spoil(data):
    acc = data / "uci_hapt" / "RawData" / "acc_exp02_user02.txt"
    lines = acc.read_text().splitlines(keepends=True)
    lines[4] = "0.98 oops 0.01\n"
    acc.write_text("".join(lines))
    return acc


def test_bad_row_is_an_error_naming_file_and_line(data):
    _spoil(data)
    with pytest.raises(DataError, match=r"acc_exp02_user02\.txt, line 5:.*oops"):
        prepare("uci", data)


def test_on_bad_skip_records_skipped_rows_in_the_manifest(data, tmp_path):
    acc = _spoil(data)
    ws = prepare("uci", data, on_bad="skip")
    skipped = ws.manifest["skipped"]
    assert len(skipped) == 1 and skipped[0]["line"] == 5 and skipped[0]["file"].endswith(acc.name)
    assert "oops" in skipped[0]["problem"]
    man = json.loads(next((tmp_path / "home" / "cache").glob("uci-*.json")).read_text())
    assert man["skipped"] == skipped  # the record survives in the cache
    assert len(ws) == 20  # one sample fewer does not cost a window here


def test_cli_on_bad_skip_reports(data):
    from crosshar.cli import app

    _spoil(data)
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "uci", "--data-dir", str(data), "--on-bad", "skip"])
    assert res.exit_code == 0, res.output
    assert "skipped 1 bad item" in res.output and "line 5" in res.output
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "uci", "--data-dir", str(data)])
    assert res.exit_code == 2 and "line 5" in res.output and "Traceback" not in res.output
    assert "--on-bad skip skips such rows" in res.output  # the way past a bad row, said with the error
    (data / "uci_hapt" / "RawData").rename(data / "elsewhere")  # no raw file at all: nothing to skip, no hint
    res = CliRunner().invoke(app, ["data", "prepare", "-d", "uci", "--data-dir", str(data)])
    assert res.exit_code == 2 and "no UCI" in res.output and "--on-bad" not in res.output, res.output


def _rewrite_npz(path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("spoil", [
    lambda npz, man: man.write_text("[1, 2, 3]"),  # valid JSON, not an object
    lambda npz, man: man.write_text('"a string"'),
    lambda npz, man: man.write_text(json.dumps({"n_windows": 3})),  # an object without the counts
    # the counts there but of the wrong kind: `data info` and `data prepare` ended in a TypeError traceback
    lambda npz, man: man.write_text(json.dumps(json.loads(man.read_text()) | {"per_class": 5})),
    lambda npz, man: man.write_text(json.dumps(json.loads(man.read_text()) | {"kept": "x"})),
    lambda npz, man: man.write_text(json.dumps(json.loads(man.read_text()) | {"skipped": None})),
    lambda npz, man: _rewrite_npz(npz, X=np.load(npz)["X"][:10]),  # X of 10 rows against all labels
    lambda npz, man: _rewrite_npz(npz, labels=np.load(npz)["labels"][:-1]),
    lambda npz, man: _rewrite_npz(npz, X=np.load(npz)["X"][:, :, :3]),  # another window shape
    lambda npz, man: _rewrite_npz(npz, X=np.full_like(np.load(npz)["X"], np.nan)),
])
def test_an_inconsistent_cache_is_rebuilt_not_trusted(data, loads, tmp_path, spoil):
    from crosshar.cli import app

    a = prepare("uci", data)
    cache = tmp_path / "home" / "cache"
    spoil(next(cache.glob("uci-*.npz")), next(cache.glob("uci-*.json")))
    res = CliRunner().invoke(app, ["data", "info", "-d", "uci"])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    logs = []
    b = prepare("uci", data, log=logs.append)
    assert loads["calls"] == 2 and any("damaged or inconsistent: rebuilding" in m for m in logs)
    np.testing.assert_array_equal(a.X, b.X)
    assert len(b.X) == len(b.labels) == b.manifest["n_windows"]


def test_a_dataset_without_windows_is_an_error_saying_why(data):
    with pytest.raises(DataError, match="gives no window of 100000 samples .* all 2 recordings are shorter than one "
                                        "window .* check the sampling rate"):
        prepare("uci", data, WindowConfig(window=100_000, stride=100_000))
    with pytest.raises(DataError, match="gives no window of 1000 samples .* none of the 2 recordings holds 50 s "
                                        "under one activity label"):
        prepare("uci", data, WindowConfig(window=1000, stride=1000))


def test_kept_dropped_says_fixed_windows_only_for_a_dataset_shipped_as_windows(data):
    """A recording dataset none of whose recordings could be read (every line skipped) was described as "shipped as
    fixed windows"; the manifest now says which kind the dataset is."""
    tally = {"labelled_windows": 0, "unlabelled_windows": 0, "recordings": 0, "short_recordings": 0,
             "short_recording_s": 0, "short_examples": [], "short_runs_s": 0, "unlabelled_s": 0, "tails_s": 0}
    assert "from 0 recordings" in store.kept_dropped({"kept": tally, "prewindowed": False})
    assert "(shipped as fixed windows)" in store.kept_dropped({"kept": tally, "prewindowed": True})
    assert "(shipped as fixed windows)" in store.kept_dropped({"kept": tally})  # a cache from before the flag
    assert prepare("uci", data).manifest["prewindowed"] is False


def test_recordings_shorter_than_a_window_are_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSHAR_HOME", str(tmp_path / "home"))
    files = uci_files(users=(1, 2), exps_per_user=1)
    for s in ("acc", "gyro"):  # a third experiment of 30 samples (0.6 s), labelled
        files[f"RawData/{s}_exp03_user03.txt"] = "".join(files[f"RawData/{s}_exp01_user01.txt"].splitlines(True)[:30])
    files["RawData/labels.txt"] += "3 3 1 1 29\n"
    write_tree(tmp_path / "data" / "uci_hapt", files)
    logs = []
    ws = prepare("uci", tmp_path / "data", log=logs.append)
    assert ws.manifest["n_recordings"] == 3 and ws.manifest["n_short_recordings"] == 1
    assert "1 of 3 recordings are shorter than one window (6 s) and gave no window" in logs


def test_the_manifest_records_each_recordings_position_and_device(data, loads):
    """Each window can be traced to its recording's body position and device, from the cache as well (what
    `crosshar cross` splits its scores by); a set with no such record says so with None."""
    a = prepare("uci", data)
    b = prepare("uci", data)
    assert loads["calls"] == 1 and set(a.manifest["recordings"]) == set(a.sessions.tolist())
    for ws in (a, b):
        assert set(ws.recording_attr("position").tolist()) == {"waist"}
        assert ws.recording_attr("device").shape == (len(ws),)
    a.manifest["recordings"][str(a.sessions[0])] = {"position": "wrist", "device": None}
    pos, dev = a.recording_attr("position"), a.recording_attr("device")
    assert (pos[a.sessions == a.sessions[0]] == "wrist").all() and (pos[a.sessions != a.sessions[0]] == "waist").all()
    assert (dev[a.sessions == a.sessions[0]] == "unknown").all()
    a.manifest.pop("recordings")
    assert a.recording_attr("position") is None


def test_position_selector_syntax(tmp_path):
    """DATASET@POSITION splits at the last "@"; a registered name, a folder or a bare "@" does not."""
    from crosshar.errors import ConfigError

    assert store.split_position("shoaib@upper_arm") == ("shoaib", "upper_arm")
    assert store.split_position("uci") == ("uci", None)
    folder = tmp_path / "lab@home"
    folder.mkdir()
    assert store.split_position(str(folder)) == (str(folder), None)
    assert store.split_position(f"{folder}@wrist") == (str(folder), "wrist")
    assert store.position_key("Front trouser pocket") == store.position_key("front_trouser-pocket")
    for bad in ("@wrist", "uci@", "uci@--", "./mylog@@ankle"):  # the last quoted "./mylog@" as an unknown dataset
        with pytest.raises(ConfigError, match="DATASET@POSITION"):
            store.split_position(bad)


def test_an_unknown_position_fails_before_training_once_the_dataset_is_prepared(data, loads, monkeypatch):
    """check_specs (what cross runs before training) knows a cached dataset's positions without reading its data;
    a dataset shipped as windows has none to select."""
    from crosshar.errors import ConfigError

    store.check_specs(["uci@waist"], data)  # nothing cached yet: prepare says it later
    prepare("uci", data)
    with pytest.raises(ConfigError, match=r"'uci' has no recording at body position 'wrist'; its positions: waist \(2 recordings\)"):
        store.check_specs(["motion", "uci@wrist"], data)
    store.check_specs(["uci@Waist"], data)
    # another data folder's dataset is judged by its own prepared versions, never by this folder's cache
    other = data.parent / "other"
    write_tree(other / "uci_hapt", uci_files(users=(3,), exps_per_user=1))
    store.check_specs(["uci@wrist"], other)
    store.check_specs(["uci@wrist"], data.parent / "nowhere")  # not found: prepare says so later
    # the same folder typed relatively is the same folder (manifests store the root as it was typed)
    monkeypatch.chdir(data.parent)
    with pytest.raises(ConfigError, match="no recording at body position 'wrist'"):
        store.check_specs(["uci@wrist"], "data")
    store.check_specs(["uci@wrist"], "./other/")
    assert store.prepared_from({"root": str(data / "uci_hapt")}, "data/uci_hapt/")
    assert not store.prepared_from({"root": str(other / "uci_hapt")}, "data/uci_hapt") and not store.prepared_from({}, "data")
    assert len(prepare("uci@waist", data)) == 20 and loads["calls"] == 1
    bare = prepare("uci", data)
    bare.manifest = {k: v for k, v in bare.manifest.items() if k != "recordings"}
    with pytest.raises(ConfigError, match="records no body position per recording"):
        store.select_position(bare, "waist")


def test_data_info_refuses_what_prepare_refuses_and_shows_one_folder(data, tmp_path, monkeypatch):
    """`data info` said "not prepared yet" (exit 1) for an unknown name, showed all of uci for uci@wrist (a position
    uci lacks), and listed every folder whose crosshar.toml shares a name."""
    from crosshar.cli import app
    from crosshar.config import WindowConfig

    monkeypatch.setenv("CROSSHAR_DATA", str(data))
    prepare("uci", data)
    run = CliRunner().invoke
    res = run(app, ["data", "info", "-d", "nosuch"])
    assert res.exit_code == 2 and "unknown dataset 'nosuch'" in res.output, res.output
    res = run(app, ["data", "info", "-d", "uci@wrist"])
    assert res.exit_code == 2 and "has no recording at body position 'wrist'; its positions: waist" in res.output
    assert run(app, ["data", "info", "-d", "uci@waist"]).exit_code == 0
    csv = "who,ax,ay,az\n" + "".join(f"s1,0.1,9.8,{0.01 * (i % 7)}\n" for i in range(700))
    toml = 'name = "mylab"\nrate_hz = 50\nacc_columns = ["ax", "ay", "az"]\nsubject_column = "who"\n'
    for lab in ("lab1", "lab2"):
        write_tree(tmp_path / lab, {"crosshar.toml": toml, "a.csv": csv})
        prepare(str(tmp_path / lab), cfg=WindowConfig(channels="acc"))
    res = run(app, ["data", "info", "-d", str(tmp_path / "lab1")])
    assert res.exit_code == 0 and res.output.count("windows from") == 1, res.output


def test_data_prepare_checks_on_bad_first(data):
    """`--on-bad maybe` was a 56-line traceback (the ValueError of BadRows) after resolving the dataset."""
    from crosshar.cli import app

    res = CliRunner().invoke(app, ["data", "prepare", "-d", "uci", "--data-dir", str(data), "--on-bad", "maybe"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.strip() == "error: --on-bad must be one of error, skip, got 'maybe'"


def test_a_data_folder_that_is_a_file_says_so(tmp_path):
    """--data-dir naming a file said the folder "does not exist"."""
    from crosshar.errors import MissingDataError
    from crosshar.paths import data_dir

    f = tmp_path / "data.csv"
    f.write_text("x")
    with pytest.raises(MissingDataError, match=r"data\.csv is a file, not a folder; pass --data-dir"):
        data_dir(f)
    with pytest.raises(MissingDataError, match=r"nowhere does not exist"):
        data_dir(tmp_path / "nowhere")
