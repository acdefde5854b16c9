"""Nothing vanishes without a word, and the physics is checked: unlabelled windows, short
recordings, joined files, the kept/dropped report, gravity at rest, acc/gyro handedness, `axes`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from crosshar.config import WindowConfig
from crosshar.data.checks import (CheckError, physical_checks, rotation_slope, turning_by_class, turning_warnings,
                                  window_turns)
from crosshar.data.readers.custom import axes_matrix
from crosshar.data.recording import Recording
from crosshar.limits import GRAVITY
from crosshar.data.store import kept_dropped, prepare
from crosshar.data.windows import Tally, make_windows
from crosshar.errors import ConfigError
from rawfmt import write_tree
from synthdata import CUSTOM_TOML, custom_csv, custom_files, home  # noqa: F401

RATE = 50.0


def rotating_still_device(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(acc m/s², gyro rad/s) of a device turned slowly by hand: gravity, fixed in the world, turns
    in the device frame as dv/dt = −ω × v (integrated exactly, step by step)."""
    t = np.arange(n) / RATE
    ph = np.random.default_rng(seed).uniform(0, 6, 3)
    w = np.stack([0.8 * np.sin(2 * np.pi * 0.2 * t + ph[0]), 0.6 * np.cos(2 * np.pi * 0.13 * t + ph[1]),
                  0.4 * np.sin(2 * np.pi * 0.07 * t + ph[2])], 1)
    v = np.zeros((n, 3))
    v[0] = [0.0, 3.0, 9.33]
    v[0] *= GRAVITY / np.linalg.norm(v[0])
    for i in range(1, n):
        th = -w[i - 1] / RATE
        a = np.linalg.norm(th)
        k = th / a
        p = v[i - 1]
        v[i] = p * np.cos(a) + np.cross(k, p) * np.sin(a) + k * (k @ p) * (1 - np.cos(a))
    return v, w


def rec(acc, gyro=None, labels=None, source="f.csv", subject="x:1") -> Recording:
    n = len(acc)
    lab = np.array(labels if labels is not None else ["walking"] * n)
    return Recording(np.asarray(acc, np.float32), None if gyro is None else np.asarray(gyro, np.float32), RATE,
                     lab, subject, "t", source).validate()


# ---- physics


def test_rotation_law_holds_on_a_simulated_device_and_a_mirror_breaks_it():
    acc, gyro = rotating_still_device(3000)
    num, den = rotation_slope(acc, gyro, RATE)
    assert num / den == pytest.approx(1.0, abs=0.05)
    figures, warnings = physical_checks([rec(acc, gyro)], "here")
    assert figures["handedness"]["slope"] == pytest.approx(1.0, abs=0.05) and warnings == []
    # mirror both sensors (one axis negated): the law's slope turns to -1 and is reported with its figure
    m = axes_matrix(["-x", "y", "z"])
    figures, warnings = physical_checks([rec(acc @ m.T, gyro @ m.T)], "here")
    assert figures["handedness"]["slope"] == pytest.approx(-1.0, abs=0.05)
    assert len(warnings) == 1 and re.search(r"≈ -(0.9|1.0)\d", warnings[0]) and "mirrored" in warnings[0]


@pytest.mark.parametrize("scale, figure, hint", [
    (180 / np.pi, r"≈ 0\.017 ×", r"5\dx more turning .*data in deg/s read as rad/s\? \(gyro_unit = \"deg/s\"\)"),
    (np.pi / 180, r"≈ 5\d\.\d\d ×", r"5\dx less turning .*data in rad/s read as deg/s\? \(gyro_unit\)"),
    (3.0, None, None),  # within the tolerated band: no warning
])
def test_a_gyroscope_in_the_wrong_unit_is_a_warning_saying_so(scale, figure, hint):
    """A gyroscope read in the other unit scales the law's slope by 180/π (or its inverse): both are warned, with
    the likely cause; the upper side was not flagged before."""
    acc, gyro = rotating_still_device(3000)
    figures, warnings = physical_checks([rec(acc, gyro * scale)], "here")
    if hint is None:
        assert warnings == []
        return
    assert len(warnings) == 1 and re.search(figure, warnings[0]) and re.search(hint, warnings[0]), warnings


def test_a_rotation_keeps_the_law():
    acc, gyro = rotating_still_device(3000, seed=1)
    m = axes_matrix(["-y", "x", "z"])
    assert np.linalg.det(m) == pytest.approx(1.0)
    num, den = rotation_slope(acc @ m.T, gyro @ m.T, RATE)
    assert num / den == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("scale, match", [(GRAVITY, r"96\.2 m/s².*declared in g"), (1 / GRAVITY, r"1 m/s².*in g but declared")])
def test_gravity_in_the_wrong_unit_is_an_error_with_the_figure(scale, match):
    acc, gyro = rotating_still_device(1000)
    with pytest.raises(CheckError, match=match):
        physical_checks([rec(acc * scale, gyro)], "here")


def test_data_without_a_still_second_is_not_judged_at_rest():
    """Only jogging (no still second): |acc| over all data is well above 9.81 by the motion itself; that stopped
    prepare as a unit error. Now it is a warning that gravity went unchecked, and only a factor of 9.81 (the unit
    mixed up) is still an error."""
    t = np.arange(3000) / RATE
    acc = np.stack([0.3 * np.sin(2 * np.pi * 1.3 * t), 9.81 + 14.0 * np.maximum(np.sin(2 * np.pi * 2.7 * t), 0),
                    0.5 * np.cos(2 * np.pi * 2.7 * t)], 1)
    figures, warnings = physical_checks([rec(acc)], "here")
    assert figures["gravity"]["still_seconds"] == 0 and figures["gravity"]["median_ms2"] > 1.2 * GRAVITY
    assert len(warnings) == 1 and "no still second found, so gravity could not be checked at rest" in warnings[0]
    with pytest.raises(CheckError, match=r"over all data \(no still second found\).*declared in g but already in"):
        physical_checks([rec(acc * GRAVITY)], "here")


def test_a_badly_calibrated_device_is_a_warning_with_the_figure():
    acc, gyro = rotating_still_device(1000)
    figures, warnings = physical_checks([rec(acc * 7.9 / GRAVITY, gyro)], "here")
    assert figures["gravity"]["median_ms2"] == pytest.approx(7.9, abs=0.01)
    assert any("7.9 m/s²" in w for w in warnings)
    assert physical_checks([rec(acc, gyro)], "here")[1] == []


def test_axes_must_name_each_axis_once():
    for bad in (["x", "x", "z"], ["x", "y"], ["-q", "y", "z"], "xyz"):
        with pytest.raises(ValueError, match="axes must name"):
            axes_matrix(bad)


# ---- nothing vanishes


def test_unlabelled_windows_are_kept_only_when_asked_and_always_counted():
    labels = ["walking"] * 300 + [""] * 300 + ["walking"] * 50  # at 20 Hz: 120, 120, 20 samples
    r = rec(np.ones((650, 3)) * [0, 0, GRAVITY], labels=labels)
    cfg = WindowConfig(channels="acc")
    t = Tally()
    ws = make_windows([r], cfg, "t", keep_unlabelled=True, tally=t)
    assert ws.labels.tolist() == ["walking", ""]
    assert (t.labelled_windows, t.unlabelled_windows, t.short_runs_s) == (1, 1, 1.0)
    t = Tally()
    ws = make_windows([r], cfg, "t", keep_unlabelled=False, tally=t)
    assert ws.labels.tolist() == ["walking"] and t.unlabelled_s == pytest.approx(6.0)


def test_short_recordings_are_reported():
    t = Tally()
    make_windows([rec(np.ones((250, 3)), source="a.csv"), rec(np.ones((400, 3)), source="b.csv")],
                 WindowConfig(channels="acc"), "t", tally=t)
    assert (t.short_recordings, t.short_recording_s) == (1, 5.0) and t.short_examples == ["a.csv (5.0 s)"]
    text = kept_dropped({"kept": t.to_dict(), "skipped": []})
    assert "1 recording(s) shorter than one window" in text and "(5 s, e.g. a.csv (5.0 s))" in text
    assert "join = true" not in text  # a public dataset's files are as they are: nothing to join
    text = kept_dropped({"kept": t.to_dict(), "skipped": [], "short_hint": "`join = true` in crosshar.toml joins"})
    assert "e.g. a.csv (5.0 s); `join = true` in crosshar.toml joins)" in text


def five_second_files(root, join: bool):
    """Walking cut into 5-s files (each shorter than a 6-s window) for one subject."""
    rng = np.random.default_rng(0)
    files = {"crosshar.toml": CUSTOM_TOML.format(name="pieces", acc_unit="g", extra=f"join = {str(join).lower()}")}
    for i in range(6):
        acc = np.tile([0.0, 0.0, 1.0], (250, 1)) + 0.05 * rng.standard_normal((250, 3))
        files[f"P01_{i}.csv"] = custom_csv(acc, 0.01 * rng.standard_normal((250, 3)), ["walk"] * 250)
    write_tree(root, files)
    return root


def test_join_puts_consecutive_files_of_one_subject_and_activity_together(tmp_path, home):  # noqa: F811
    with pytest.raises(Exception, match="no window.*6 recording\\(s\\) shorter than one window.*join = true"):
        prepare(str(five_second_files(tmp_path / "a", join=False)), cfg=WindowConfig())
    ws = prepare(str(five_second_files(tmp_path / "b", join=True)), cfg=WindowConfig())
    assert len(ws) == 5 and ws.manifest["n_recordings"] == 1  # 30 s of walking: 5 windows of 6 s
    assert ws.dataset == "pieces" and set(ws.subjects.tolist()) == {"pieces:P01"}


def test_prepare_prints_kept_and_dropped_and_the_checks(tmp_path, home):  # noqa: F811
    from crosshar.cli import app

    files = custom_files(name="kd", subjects=(1, 2))
    files["P09_short.csv"] = custom_csv(np.tile([0.0, 0.0, 1.0], (100, 1)), np.zeros((100, 3)), ["walk"] * 100)
    write_tree(tmp_path / "kd", files)
    res = CliRunner().invoke(app, ["data", "prepare", "-d", str(tmp_path / "kd")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "kept 20 labelled windows and 2 unlabelled windows (pretraining only) from 3 recordings" in out
    assert "1 recording(s) shorter than one window (2 s" in out and "P09_short.csv" in out
    assert "median |acc| at rest" in out
    man = json.loads(next((home / "cache").glob("kd-*.json")).read_text())
    assert man["kept"]["short_recordings"] == 1 and man["n_unlabelled_windows"] == 2
    res = CliRunner().invoke(app, ["data", "list"])
    assert res.exit_code == 0 and "kd" in res.output and "your own data" in res.output


def test_units_declared_wrong_stop_prepare(tmp_path, home):  # noqa: F811
    write_tree(tmp_path / "w", custom_files(name="wrong", subjects=(1,), scale=GRAVITY))  # m/s² data declared g
    with pytest.raises(CheckError, match=r"median \|acc\| at rest is 96\.\d m/s²"):
        prepare(str(tmp_path / "w"), cfg=WindowConfig())


def test_a_custom_name_may_not_be_a_registered_dataset(tmp_path):
    write_tree(tmp_path / "x", custom_files(name="uci", subjects=(1,)))
    with pytest.raises(ConfigError, match="name = 'uci' is a registered dataset"):
        prepare(str(tmp_path / "x"))


def test_real_datasets_pass_and_a_mirrored_one_fails(real_data):
    """On real UCI recordings: gravity at rest near 9.81, slope near +1; mirrored, about −1."""
    from crosshar.data.base import BadRows
    from crosshar.data.store import resolve

    r = resolve("uci", real_data)
    recs = r.dataset.load(r.folder, BadRows())[::4]
    figures, warnings = physical_checks(recs, "uci")
    print(f"\n[uci] {figures}")
    assert warnings == [] and abs(figures["gravity"]["median_ms2"] - GRAVITY) < 0.5
    assert figures["handedness"]["slope"] > 0.9
    m = axes_matrix(["-x", "y", "z"])
    for x in recs:
        x.acc, x.gyro = x.acc @ m.T, x.gyro @ m.T
    figures, warnings = physical_checks(recs, "uci")
    assert figures["handedness"]["slope"] < -0.9 and any("mirrored" in w for w in warnings)


def test_skipped_rows_are_counted_per_reason():
    k = Tally(recordings=2, labelled_windows=5).to_dict()
    skipped = [{"file": "a.csv", "line": i, "problem": p} for i, p in enumerate(
        ["NaN or infinite value", "NaN or infinite value", "unknown label 'run': it is not in the [labels] table",
         "time stamp 1040 does not increase"])]
    text = kept_dropped({"kept": k, "skipped": skipped})
    assert text.startswith("kept 5 labelled windows from 2 recordings; dropped: ")
    assert "2 bad item(s): NaN or infinite value" in text
    assert "1 bad item(s): unknown label …: it is not in the [labels] table" in text
    assert "1 bad item(s): time stamp … does not increase" in text


# -- which way each class turns ------------------------------------------------------------

def _turning(rate: float, n: int = 4, T: int = 120) -> np.ndarray:
    """(n, T, 6): a device turning about the vertical at `rate` rad/s (gravity along its z, which is up)."""
    x = np.zeros((n, T, 6))
    x[..., 2], x[..., 5] = GRAVITY, rate
    return x


def test_window_turns_gives_the_angle_and_sense_whatever_the_devices_orientation():
    import torch

    from crosshar.augment import mirror, rotate

    expected = np.degrees(0.3 * 6.0)  # 120 samples at 20 Hz
    np.testing.assert_allclose(window_turns(_turning(0.3), 20.0), expected, rtol=1e-6)
    np.testing.assert_allclose(window_turns(_turning(-0.3), 20.0), -expected, rtol=1e-6)
    held = rotate(torch.from_numpy(_turning(0.3)), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(window_turns(held.numpy(), 20.0), expected, rtol=1e-5)
    mirrored = mirror(held, torch.Generator().manual_seed(1), p=1.0).numpy()  # a mirror image turns the other way
    np.testing.assert_allclose(window_turns(mirrored, 20.0), -expected, rtol=1e-5)


def test_a_class_that_turns_one_way_is_flagged_and_one_that_turns_both_ways_or_hardly_is_not():
    X = np.concatenate([_turning(0.3, 30), _turning(0.3, 15), _turning(-0.3, 15), _turning(0.01, 30)])
    labels = np.array(["upstairs"] * 30 + ["downstairs"] * 30 + ["walking"] * 30)
    turns = turning_by_class(X, labels, 20.0)
    assert turns["upstairs"] == {"windows": 30, "median_deg": 103.1, "ccw_share": 1.0}
    assert turns["downstairs"]["ccw_share"] == 0.5 and turns["walking"]["median_deg"] < 5
    warnings = turning_warnings(turns, "mydata")
    assert len(warnings) == 1 and "'upstairs' windows turn counterclockwise" in warnings[0] and "mirror_p" in warnings[0]
    assert turning_warnings(turning_by_class(X[:10], labels[:10], 20.0), "few") == []  # too few windows to say
    assert turning_by_class(X[..., :3], labels, 20.0) == {}  # no gyroscope, no turn


def test_prepare_reports_each_class_turn_and_warns_about_a_one_way_class(tmp_path, home):  # noqa: F811
    from crosshar.cli import app

    write_tree(tmp_path / "kd", custom_files(name="kd", subjects=(1, 2)))
    res = CliRunner().invoke(app, ["data", "prepare", "-d", str(tmp_path / "kd")])
    assert res.exit_code == 0, res.output
    assert "turning about the vertical per window" in " ".join(res.output.split())
    man = json.loads(next((home / "cache").glob("kd-*.json")).read_text())
    assert set(man["checks"]["turning"]) == set(man["per_class"]) - {""}  # every labelled class


def test_real_stairs_turn_one_way_in_uci_and_the_other_in_motionsense(real_data):
    """The datasets' stairs are stairwells turning opposite ways (results/turning.md): the shortcut the
    mirror augmentation takes away, and a check on both loaders' sign conventions."""
    from crosshar.data.store import prepare as prep

    for name, up_ccw in (("uci", True), ("motion", False)):
        ws = prep(name, real_data, WindowConfig())
        turns = ws.manifest["checks"]["turning"]
        print(f"\n[{name}] " + ", ".join(f"{c} {v['median_deg']:.0f} deg {100 * v['ccw_share']:.0f} % ccw"
                                         for c, v in turns.items() if c in ("walking", "upstairs", "downstairs")))
        up, down = turns["upstairs"]["ccw_share"], turns["downstairs"]["ccw_share"]
        assert (up > 0.9 and down < 0.1) if up_ccw else (up < 0.1 and down > 0.9)
        assert turns["upstairs"]["median_deg"] > 60 and turns["walking"]["median_deg"] < 30
        assert any("'upstairs' windows turn" in w for w in ws.manifest["warnings"])
