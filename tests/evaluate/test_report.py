"""crosshar.evaluate.report: the matrix's report.md from its rows (targets, ceiling, defects, leave-one-out, time)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import crosshar.evaluate.methods as Me
import crosshar.evaluate.report as R
from crosshar.evaluate.matrix import MatrixConfig
from crosshar.evaluate.methods import METHODS
from crosshar.evaluate.report import write_report


def test_a_pooled_row_above_the_ceiling_is_a_defect_and_the_best_recipes_oracle_counts(tmp_path):
    """The ceiling includes the in-domain model of the best transfer recipe (oracle_worldvert_mount), and a pooled
    (leave-one-out) row above every oracle of its target is flagged like a single-source one."""
    assert "oracle_worldvert_mount" in Me.CEILING
    assert dataclasses.replace(METHODS["oracle_worldvert_mount"], name="scratch_worldvert_mount", oracle=False) \
        == METHODS["scratch_worldvert_mount"]

    def row(s, t, m, f1):
        return {"source": s, "target": t, "method": m, "head": "din", "seed": 0, "macro_f1": f1, "accuracy": f1,
                "cpu_seconds": 1.0, "classes": ["walking", "sitting&standing"]}

    rows = [row("uci", "wisdm", "scratch", 0.80), row("wisdm", "uci", "scratch", 0.80),
            row("uci+motion", "wisdm", "scratch_multi", 0.90),
            row("wisdm", "wisdm", "oracle", 0.85), row("uci", "uci", "oracle", 0.95)]
    mc = MatrixConfig(("uci", "motion", "wisdm"), ("din",), methods=("scratch", "scratch_multi", "oracle"))
    write_report(mc, rows, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "oracle on wisdm (85.0) is below uci+motion → wisdm (90.0)" in text and "uci → wisdm (80.0)" not in text
    rows.append(row("wisdm", "wisdm", "oracle_worldvert_mount", 0.92))
    write_report(replace_methods(mc, ("scratch", "scratch_multi", "oracle", "oracle_worldvert_mount")), rows, tmp_path)
    assert "no oracle below a transfer result" in (tmp_path / "report.md").read_text()


def test_the_full_label_defect_is_judged_against_the_best_full_label_oracle(tmp_path):
    """With every label, the in-domain ceiling is the better of crosshar's pipeline (oracle_full) and the best transfer
    recipe's (oracle_worldvert_mount_full): a transfer row above oracle_full alone is no defect once the best recipe's
    own full-label model beats it, and is named against the best one while none does."""
    assert dataclasses.replace(METHODS["oracle_worldvert_mount_full"], name="oracle_worldvert_mount", label_rate=None) \
        == METHODS["oracle_worldvert_mount"]

    def row(s, t, m, f1):
        return {"source": s, "target": t, "method": m, "head": "din", "seed": 0, "macro_f1": f1, "accuracy": f1,
                "cpu_seconds": 1.0, "classes": ["walking", "sitting&standing"]}

    methods = ("scratch_worldvert_mount", "oracle_worldvert_mount", "oracle_full", "oracle_worldvert_mount_full")
    rows = [row("motion", "wisdm", "scratch_worldvert_mount", 0.90), row("wisdm", "wisdm", "oracle_worldvert_mount", 0.91),
            row("wisdm", "wisdm", "oracle_full", 0.86)]
    mc = MatrixConfig(("motion", "wisdm"), ("din",), methods=methods)
    write_report(mc, rows, tmp_path)
    assert "oracle_full on wisdm (86.0) is below motion → wisdm (90.0)" in (tmp_path / "report.md").read_text()
    write_report(mc, rows + [row("wisdm", "wisdm", "oracle_worldvert_mount_full", 0.89)], tmp_path)
    assert "oracle_worldvert_mount_full on wisdm (89.0) is below motion → wisdm (90.0)" in (tmp_path / "report.md").read_text()
    write_report(mc, rows + [row("wisdm", "wisdm", "oracle_worldvert_mount_full", 0.94)], tmp_path)
    assert "no oracle below a transfer result" in (tmp_path / "report.md").read_text()


def test_a_target_only_dataset_is_set_against_its_own_ceiling_outside_the_averages(tmp_path):
    """hhar (a target only) enters no average; the report gives crosshar's and scratch's share of hhar's own ceiling
    (its oracles, re-read in each pair's classes) and flags a transfer into it above that ceiling."""
    def row(s, t, m, f1, classes=("walking", "upstairs", "downstairs", "sitting&standing")):
        return {"source": s, "target": t, "method": m, "head": "din", "seed": 0, "macro_f1": f1, "accuracy": f1,
                "cpu_seconds": 1.0, "classes": list(classes)}

    rows = [row("uci", "motion", "crosshar", 0.80), row("motion", "uci", "crosshar", 0.90),
            row("uci", "motion", "scratch", 0.70), row("motion", "uci", "scratch", 0.90),
            row("uci", "hhar", "crosshar", 0.40), row("motion", "hhar", "crosshar", 0.60),
            row("uci", "hhar", "scratch", 0.50), row("motion", "hhar", "scratch", 0.90),
            row("uci", "uci", "oracle", 0.95), row("motion", "motion", "oracle", 0.90), row("hhar", "hhar", "oracle", 0.80)]
    mc = MatrixConfig(("uci", "motion"), ("din",), methods=("scratch", "crosshar", "oracle"), targets_only=("hhar",))
    write_report(mc, rows, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Average macro-F1 over the 2 pairs among uci, motion: scratch 80.0, crosshar 85.0" in text  # hhar in no average
    # crosshar 40 and 60 of 80: 50.0 %; scratch 50 and 90 of 80: 87.5 %
    assert ("- into hhar (a target only, outside the averages above), against its own ceiling (80.0 over the 2 sources' "
            "classes; the oracles trained on hhar's training users): crosshar 50.0, 62.5 %; scratch 70.0, 87.5 %") in text
    assert "oracle on hhar (80.0) is below motion → hhar (90.0)" in text


def replace_methods(mc: MatrixConfig, methods: tuple[str, ...]) -> MatrixConfig:
    return dataclasses.replace(mc, methods=methods)


def test_report_checks_targets_and_flags_an_oracle_below_transfer(tmp_path):
    def row(s, t, m, f1, seed=0, up=None):
        r = {"source": s, "target": t, "method": m, "head": "din", "seed": seed, "macro_f1": f1, "accuracy": f1,
             "cpu_seconds": 1.0}
        if up is not None:
            r["per_class_f1"] = {"upstairs": up, "downstairs": up / 2, "walking": 0.9}
        return r

    rows = [row("uci", "motion", "crosshar", 0.80, up=0.8), row("motion", "uci", "crosshar", 0.60, up=0.4),
            row("uci", "motion", "scratch", 0.60), row("motion", "uci", "scratch", 0.65),
            row("uci", "motion", "crosshar_paper", 0.50), row("motion", "uci", "crosshar_paper", 0.50),
            row("motion", "motion", "oracle", 0.70), row("uci", "uci", "oracle", 0.95)]
    mc = MatrixConfig(("uci", "motion"), ("din",), methods=("scratch", "crosshar", "crosshar_paper", "oracle"))
    write_report(mc, rows, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "crosshar − scratch (same input pipeline): **+7.5 points** (target ≥ +10): not met" in text
    assert "crosshar − crosshar_paper: **+20.0 points** (target ≥ +5): met" in text
    assert ("headroom: the in-domain ceiling averages 82.5 over these pairs, +20.0 points over scratch: "
            "+10 fits under the ceiling") in text
    # crosshar 80 / 70 and 60 / 95 of the oracle: 88.7 %, printed to a tenth so that "not met" never reads "90 %"
    assert "crosshar / oracle (the best of oracle per target, in each pair's classes): **88.7 %** (target ≥ 90 %): not met" in text
    rows[-1] = row("uci", "uci", "oracle", 0.75)  # ceiling 72.5, 10.0 over scratch
    write_report(mc, rows, tmp_path)
    assert "+10.0 points over scratch: +10 fits under" in (tmp_path / "report.md").read_text()
    rows[-1] = row("uci", "uci", "oracle", 0.74)
    write_report(mc, rows, tmp_path)
    assert "+9.5 points over scratch: +10 would put crosshar above the ceiling" in (tmp_path / "report.md").read_text()
    assert "pairs where crosshar is below scratch: motion → uci (60.0 < 65.0)" in text
    assert "oracle on motion (70.0) is below uci → motion (80.0)" in text
    assert "| uci → motion | crosshar | 0.80 | 0.40 |" in text
    assert "80.0 (1)" in text
    assert "embeddings.png" not in text  # no plot was written: the report does not name one
    (tmp_path / "embeddings.png").write_bytes(b"")
    write_report(mc, rows, tmp_path)
    assert "`embeddings.png`" in (tmp_path / "report.md").read_text()


def test_oracle_is_compared_in_the_pairs_classes():
    """A 4-class oracle on motion against wisdm -> motion (3 classes, stairs merged): its confusion
    matrix is re-read with upstairs and downstairs merged, exactly."""
    from crosshar.evaluate.report import coarsened_macro_f1

    classes = ["walking", "upstairs", "downstairs", "sitting&standing"]
    cm = [[10, 0, 0, 0], [0, 5, 5, 0], [0, 5, 5, 0], [0, 0, 0, 10]]  # stairs direction a coin toss
    three = ["walking", "stairs", "sitting&standing"]
    assert coarsened_macro_f1(cm, classes, three, "crosshar4") == pytest.approx(1.0)
    assert coarsened_macro_f1(cm, classes, classes, "crosshar4") == pytest.approx(0.75)
    oracle = {"source": "motion", "target": "motion", "method": "oracle", "head": "din", "seed": 0, "macro_f1": 0.75,
              "accuracy": 0.75, "classes": classes, "confusion": cm, "cpu_seconds": 1.0}
    tr = {"source": "wisdm", "target": "motion", "method": "crosshar", "head": "din", "seed": 0, "macro_f1": 0.9,
          "accuracy": 0.9, "classes": three, "cpu_seconds": 1.0}
    assert R._oracle([oracle], "din", "motion", "oracle", three) == pytest.approx(1.0)
    assert R.ceiling([oracle, tr], "din", "wisdm", "motion", "crosshar4") == pytest.approx(1.0)
    assert R._oracle_cell([oracle, tr], "din", "wisdm", "motion", "oracle", "crosshar4") == "100.0 (1)*"


def test_rows_from_another_version_or_broken_lines_are_a_clear_error(tmp_path):
    from crosshar.errors import CrossharError

    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps({"method": "crosshar", "macro_f1": 0.5}) + "\n\n" + json.dumps({"method": "magic"}) + "\n")
    with pytest.raises(CrossharError, match=r"rows.jsonl:3: unknown method 'magic'"):
        R.read_rows(p)
    p.write_text(json.dumps({"method": "crosshar"}) + "\n{not json\n")
    with pytest.raises(CrossharError, match=r"rows.jsonl:2: not a JSON row"):
        R.read_rows(p)
    assert R.read_rows(tmp_path / "absent.jsonl") == []


def test_time_section_counts_the_time_some_process_ran():
    timing = [{"shard": [0, 2], "wall_s": 600.0, "cpu_s": 590.0, "finished": "2026-12-02 10:10:00"},
              {"shard": [1, 2], "wall_s": 720.0, "cpu_s": 700.0, "finished": "2026-12-02 10:13:00"}]
    # workers 0 (10:00-10:10) and 1 (10:01-10:13) of one run: from the first start to the last end
    assert R._span_minutes(timing) == pytest.approx(13.0)
    text = "\n".join(R._time_section([], timing))
    assert "**13.0 min**" in text and "first start to last end: 13.0 min" in text and "21.5 min of process CPU" in text
    # rows added hours later by another invocation (14:00-14:05) add their 5 minutes, not the gap
    later = timing + [{"shard": [0, 1], "wall_s": 300.0, "cpu_s": 290.0, "finished": "2026-12-02 14:05:00"}]
    assert R._span_minutes(later) == pytest.approx(18.0)
    assert R._span_minutes(later, union=False) == pytest.approx(245.0)
    assert R._span_minutes([{"shard": [0, 1], "wall_s": 1.0}]) is None


def test_paired_difference_interval_over_seeds():
    """The mean over pairs of the seed-paired differences, with a Student-t interval (Welch-Satterthwaite
    degrees of freedom); no interval from fewer than 2 paired seeds; the report prints it."""
    from scipy import stats

    def rows(method, pair, f1s):
        return [{"source": pair[0], "target": pair[1], "method": method, "head": "din", "seed": k, "macro_f1": f}
                for k, f in enumerate(f1s)]

    p1, p2 = ("uci", "motion"), ("motion", "uci")
    hr = rows("a", p1, [0.80, 0.90, 0.70]) + rows("b", p1, [0.79, 0.88, 0.67])  # d = 0.01, 0.02, 0.03
    d, h, n = R.paired_difference(hr, "din", "a", "b", [p1])
    assert (d, n) == (pytest.approx(0.02), 3)
    assert h == pytest.approx(stats.t.ppf(0.975, 2) * 0.01 / np.sqrt(3))
    hr += rows("a", p2, [0.5, 0.5]) + rows("b", p2, [0.4, 0.4])  # a constant difference has no spread
    d, h, n = R.paired_difference(hr, "din", "a", "b", [p1, p2])
    assert (d, n) == (pytest.approx(0.06), 5)
    assert h == pytest.approx(stats.t.ppf(0.975, 2) * np.sqrt(0.01 ** 2 / 3) / 2)  # v2 = 0: p1's df
    assert R.paired_difference(hr, "din", "a", "b", [p2])[1] == 0.0
    assert R.paired_difference(hr + rows("c", p1, [0.9]), "din", "c", "a", [p1]) is None  # one seed
    assert R.paired_difference(hr, "din", "a", "b", []) is None  # no pair (every row into a target-only dataset)
    table = R._differences(hr + rows("scratch", p1, [0.1, 0.2, 0.3]) + rows("crosshar", p1, [0.2, 0.2, 0.2]),
                           "din", [p1], ["crosshar", "scratch"])
    assert any(line.startswith("| crosshar − scratch | +0.0 |") and "includes 0" in line for line in table)


def test_a_pair_below_scratch_says_whether_the_seeds_resolve_it():
    from scipy import stats

    def rows(method, f1s, pair=("wisdm", "uci")):
        return [{"source": pair[0], "target": pair[1], "method": method, "head": "din", "seed": k, "macro_f1": f}
                for k, f in enumerate(f1s)]

    noisy = rows("crosshar", [0.80, 0.95, 0.85]) + rows("scratch", [0.90, 0.90, 0.90])  # d = -0.10, +0.05, -0.05
    text = R._pair_interval(noisy, "din", "wisdm", "uci")
    h = 100 * stats.t.ppf(0.975, 2) * np.std([-0.10, 0.05, -0.05], ddof=1) / np.sqrt(3)
    assert text == f"; -3.3, 95 % interval {-3.333 - h:+.1f} to {-3.333 + h:+.1f}, inside the noise"
    sure = rows("crosshar", [0.80, 0.81, 0.79]) + rows("scratch", [0.90, 0.90, 0.90])
    assert R._pair_interval(sure, "din", "wisdm", "uci").startswith("; -10.0, 95 % interval -12.5 to -7.5")
    assert "noise" not in R._pair_interval(sure, "din", "wisdm", "uci")
    assert R._pair_interval(rows("crosshar", [0.8]) + rows("scratch", [0.9]), "din", "wisdm", "uci") == ""


def test_the_leave_one_out_table_sets_scratch_multi_beside_multi_with_each_recipes_best_single_source():
    hr = []
    srcs = {"uci": "motion+wisdm", "motion": "uci+wisdm", "wisdm": "uci+motion"}
    for seed in range(3):
        for i, t in enumerate(("motion", "uci", "wisdm")):
            hr.append(dict(method="multi", source=srcs[t], target=t, head="din", seed=seed, macro_f1=0.80 + 0.01 * i + 0.01 * seed))
            hr.append(dict(method="scratch_multi", source=srcs[t], target=t, head="din", seed=seed, macro_f1=0.70 + 0.01 * i))
            for j, s in enumerate(x for x in ("uci", "motion", "wisdm") if x != t):
                hr.append(dict(method="crosshar", source=s, target=t, head="din", seed=seed, macro_f1=0.60 + 0.1 * j))
                hr.append(dict(method="scratch", source=s, target=t, head="din", seed=seed, macro_f1=0.50 + 0.1 * j))
    pairs = sorted({(r["source"], r["target"]) for r in hr if r["method"] in ("crosshar", "scratch")})
    L = R._multi_table(hr, pairs, ["multi", "scratch_multi"], "din")
    assert L[2] == "| sources → target | multi | scratch_multi | best single source (crosshar) | best single source (scratch) |"
    assert "| motion+wisdm → uci | 82.0 ± 0.8 | 71.0 ± 0.0 | 70.0 (wisdm) | 60.0 (wisdm) |" in L
    # multi − scratch_multi: 10 points on every target plus 1 per seed: mean +11.0 over 9 cells
    line = next(x for x in L if x.startswith("multi − scratch_multi"))
    assert "+11.0 points" in line and "(9 cells)" in line
    only = R._multi_table(hr, pairs, ["multi"], "din")  # the committed reports' table is unchanged
    assert only[:4] == ["Leave one dataset out (`multi`: pretrain and finetune on every other dataset):", "",
                        "| sources → target | multi | best single source (crosshar) |", "|---|---|---|"]
    assert not any(x.startswith("multi − scratch_multi") for x in only)


def test_the_world_vertical_recipe_pooled_sits_beside_its_single_source_and_scratch_multi():
    """scratch_multi_worldvert_mount: its best single source is scratch_worldvert_mount (not scratch), and it is
    compared with scratch_multi, and its `_tta` row with it, paired by seed."""
    assert R.single_source("scratch_multi_worldvert_mount") == "scratch_worldvert_mount"
    assert R.single_source("scratch_multi_worldvert_mount_tta") == "scratch_worldvert_mount_tta"
    assert (R.single_source("multi"), R.single_source("scratch_multi")) == ("crosshar", "scratch")
    hr = []
    srcs = {"uci": "motion+wisdm", "motion": "uci+wisdm", "wisdm": "uci+motion"}
    for seed in range(3):
        for i, t in enumerate(("motion", "uci", "wisdm")):
            for m, f in (("scratch_multi", 0.70), ("scratch_multi_worldvert_mount", 0.75 + 0.01 * seed),
                         ("scratch_multi_worldvert_mount_tta", 0.77 + 0.01 * seed)):
                hr.append(dict(method=m, source=srcs[t], target=t, head="din", seed=seed, macro_f1=f + 0.01 * i))
            for j, s in enumerate(x for x in ("uci", "motion", "wisdm") if x != t):
                hr.append(dict(method="scratch_worldvert_mount", source=s, target=t, head="din", seed=seed, macro_f1=0.6 + 0.1 * j))
    pairs = sorted({(r["source"], r["target"]) for r in hr if r["method"] == "scratch_worldvert_mount"})
    multis = ["scratch_multi", "scratch_multi_worldvert_mount", "scratch_multi_worldvert_mount_tta"]
    L = R._multi_table(hr, pairs, multis, "din")
    # a single-source recipe that did not run gets no column (scratch, scratch_worldvert_mount_tta here)
    assert L[2].endswith("| scratch_multi_worldvert_mount_tta | best single source (scratch_worldvert_mount) |")
    assert "| uci+wisdm → motion | 70.0 ± 0.0 | 76.0 ± 0.8 | 78.0 ± 0.8 | 70.0 (wisdm) |" in L
    assert not any(x.startswith("\\*") for x in L)
    lines = [x for x in L if " − " in x]
    assert lines[0].startswith("scratch_multi_worldvert_mount − scratch_multi, paired by seed over the 3 targets: +6.0 points")
    assert lines[1].startswith("scratch_multi_worldvert_mount_tta − scratch_multi_worldvert_mount, paired by seed over "
                               "the 3 targets: +2.0 points")


def test_the_best_single_source_beside_a_multi_row_is_one_in_its_classes_else_marked():
    """Pooled with WISDM, a target keeps upstairs and downstairs apart, while wisdm -> target merges them: the
    easier 3-class cell is not the pooled row's yardstick unless no 4-class single source exists (then marked)."""
    four, three = ["walking", "upstairs", "downstairs", "sitting&standing"], ["walking", "stairs", "sitting&standing"]
    hr = [dict(method="scratch_multi", source="motion+wisdm", target="uci", head="din", seed=0, macro_f1=0.8, classes=four),
          dict(method="scratch", source="motion", target="uci", head="din", seed=0, macro_f1=0.85, classes=four),
          dict(method="scratch", source="wisdm", target="uci", head="din", seed=0, macro_f1=0.95, classes=three)]
    L = R._multi_table(hr, [("motion", "uci"), ("wisdm", "uci")], ["scratch_multi"], "din")
    assert "| motion+wisdm → uci | 80.0 (1) | 85.0 (motion) |" in L and not any(x.startswith("\\*") for x in L)
    L = R._multi_table(hr[:1] + hr[2:], [("wisdm", "uci")], ["scratch_multi"], "din")
    assert "| motion+wisdm → uci | 80.0 (1) | 95.0* (wisdm) |" in L and any(x.startswith("\\* no single source") for x in L)


def test_report_of_oracles_alone_shows_each_target_in_domain():
    """`crosshar matrix -d wisdm --methods oracle_long` has no pair: the report shows the oracle per target
    (it rendered an empty, malformed pairs table)."""
    mc = MatrixConfig(("wisdm",), ("din",), methods=("oracle_long",))
    row = {"source": "wisdm", "target": "wisdm", "method": "oracle_long", "head": "din",
           "classes": ["walking", "stairs", "sitting&standing"], "cpu_seconds": 1.0}
    rows = [{**row, "seed": s, "macro_f1": f} for s, f in enumerate((0.8, 0.9))]
    text = "\n".join(R._head_section(mc, rows, "din", [], ["oracle_long"]))
    assert "| target | oracle_long |" in text and "| wisdm | 85.0 ± 5.0 (2) |" in text
    assert "source → target" not in text


def test_a_cells_cpu_is_counted_once_whatever_its_targets():
    """A row's cpu_seconds runs from its cell's start, so the second target's row includes the training the
    first one paid for: the cells' CPU is each cell's largest row, not the sum of the rows."""
    from crosshar.evaluate.report import cpu_line

    cell = {"source": "uci", "method": "crosshar", "head": "din", "seed": 0, "preset": "default"}
    rows = [cell | {"target": "motion", "cpu_seconds": 100.0}, cell | {"target": "wisdm", "cpu_seconds": 110.0},
            cell | {"seed": 1, "target": "motion", "cpu_seconds": 50.0}]
    assert cpu_line(rows).startswith("Rows: 3 in 2 cells; process CPU of the cells 2.7 min")


def test_a_sources_hhar_profile_cell_and_its_six_pair_cell_are_two_cells():
    """One row's model for uci's pair targets and its model in HHAR's window profile are two cells (two trainings,
    `matrix.plan`), each counted once: keyed on source, method, head and seed alone they counted as one, the larger.
    A wide row trains one model per target. Rows written before the window was recorded count as the default's."""
    from crosshar.evaluate.report import _cell_cpu, cpu_by_method

    cell = {"source": "uci", "method": "crosshar", "head": "din", "seed": 0, "preset": "default"}
    rows = [cell | {"target": "motion", "window": "", "cpu_seconds": 100.0},
            cell | {"target": "wisdm", "window": "", "cpu_seconds": 110.0},
            cell | {"target": "hhar", "window": "-w128accz", "cpu_seconds": 80.0}]
    assert sorted(_cell_cpu(rows).values()) == [80.0, 110.0]
    assert cpu_by_method(rows) == [("crosshar", "din", 2, 190.0)]
    legacy = [{k: v for k, v in r.items() if k != "window"} for r in rows[:2]]
    assert cpu_by_method(legacy + rows[2:]) == [("crosshar", "din", 2, 190.0)]
    wide = [r | {"method": "crosshar_wide"} for r in rows[:2]]
    assert cpu_by_method(wide) == [("crosshar_wide", "din", 2, 210.0)]


def test_the_time_section_says_where_the_cpu_went_method_by_method():
    """Per method and head: its cells (each counted once, whatever its targets) and their CPU, the costliest first."""
    from crosshar.evaluate.report import _time_section, cpu_by_method

    def row(method, seed, target, cpu, head="din"):
        return {"source": "uci", "target": target, "method": method, "head": head, "seed": seed,
                "preset": "default", "cpu_seconds": cpu}

    rows = [row("crosshar", 0, "motion", 100.0), row("crosshar", 0, "wisdm", 110.0), row("crosshar", 1, "motion", 90.0),
            row("scratch", 0, "motion", 30.0), row("scratch", 0, "motion", 400.0, head="transformer")]
    assert cpu_by_method(rows) == [("scratch", "transformer", 1, 400.0), ("crosshar", "din", 2, 200.0),
                                   ("scratch", "din", 1, 30.0)]
    text = "\n".join(_time_section(rows, []))
    assert "| method | head | cells | process CPU | share |" in text
    assert "| crosshar | din | 2 | 3.3 min | 31.7 % |" in text and text.index("| scratch | transformer") < text.index("| crosshar |")


@pytest.mark.parametrize("change", [{"macro_f1": float("nan")}, {"macro_f1": "x"}, {"accuracy": 1.5}, {"seed": "0"},
                                    {"source": None}, {"window": 128}])
def test_a_damaged_row_is_named_not_averaged(tmp_path, change):
    """A row whose score was NaN went into the report as "nan (1)"; one whose score was a string, a TypeError
    traceback. Each is a CrossharError naming the line and the field."""
    from crosshar.errors import CrossharError

    row = {"source": "uci", "target": "motion", "method": "crosshar", "head": "din", "seed": 0, "macro_f1": 0.5,
           "accuracy": 0.6}
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps(row) + "\n" + json.dumps(row | change) + "\n")
    key = next(iter(change))
    with pytest.raises(CrossharError, match=rf"^{p}:2: {key} is .*; remove or fix that row"):
        R.read_rows(p)
    p.write_text(json.dumps(row) + "\n")
    assert R.read_rows(p) == [row]


@pytest.mark.parametrize("line", [{"shard": [0, 1]}, {"shard": [0, 1], "wall_s": "x", "cpu_s": 1.0, "finished": "t"}])
def test_a_damaged_timing_line_is_named(tmp_path, line):
    """A timing.jsonl line without wall_s (or with a string for it) ended the report in a KeyError / TypeError."""
    from crosshar.errors import CrossharError

    from crosshar.evaluate.matrix import MatrixConfig

    p = tmp_path / "timing.jsonl"
    good = {"shard": [0, 1], "wall_s": 60.0, "cpu_s": 59.0, "finished": "2026-12-02 10:10:00"}
    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5,
           "accuracy": 0.6, "classes": ["walking"], "per_class_f1": {"walking": 0.5}, "confusion": [[1]], "n": 1}
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, methods=("scratch",))
    p.write_text(json.dumps(good) + "\n")
    R.write_report(mc, [row], tmp_path)
    assert "1.0 min" in (tmp_path / "report.md").read_text()
    p.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(CrossharError, match=rf"^{p}:2: not a timing line"):
        R.write_report(mc, [row], tmp_path)


def test_a_cell_twice_in_rows_is_named_not_counted_as_two_seeds(tmp_path):
    """A row appended twice (or two values of one seed) went into its cell's mean as two seeds: "47.0 ± 1.1" looked
    like three seeds of a cell that has two."""
    from crosshar.errors import CrossharError

    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5}
    p = tmp_path / "rows.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in (row, row | {"seed": 1}, row | {"macro_f1": 0.9})))
    with pytest.raises(CrossharError, match=rf"^{p}:3: the same cell as line 1 \(uci → motion scratch din seed 0\)"):
        R.read_rows(p)
    p.write_text("".join(json.dumps(r) + "\n" for r in (row, row | {"seed": 1}, row | {"head": "transformer"})))
    assert len(R.read_rows(p)) == 3


def test_the_report_averages_the_seeds_its_command_runs_and_one_source_set_per_pooled_target(tmp_path):
    """`--seeds 1` (or `--report-only --seeds 1`) on a folder of 3 seeds averaged all 3 under a command saying 1; the
    leave-one-out table averaged the pooled rows of two matrices (two source sets) into one cell."""
    def row(s, t, m, f1, seed=0):
        return {"source": s, "target": t, "method": m, "head": "din", "seed": seed, "macro_f1": f1,
                "classes": ["walking", "sitting&standing"]}

    rows = [row("uci", "motion", "scratch", 0.5), row("uci", "motion", "scratch", 0.9, seed=1),
            row("motion", "uci", "scratch", 0.6), row("motion", "uci", "scratch", 0.2, seed=1)]
    mc = MatrixConfig(("uci", "motion"), ("din",), seeds=1, methods=("scratch",))
    write_report(mc, rows, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "| uci → motion | 50.0 (1) |" in text and "| motion → uci | 60.0 (1) |" in text and "--seeds 1" in text
    assert "Rows: 2 in 2 cells" in text
    pooled = [row("uci+wisdm", "motion", "multi", 0.8), row("uci+wisdm+pamap2", "motion", "multi", 0.4),
              row("uci", "motion", "crosshar", 0.7), row("wisdm", "motion", "crosshar", 0.6)]
    mc = MatrixConfig(("uci", "motion", "wisdm"), ("din",), seeds=1, methods=("crosshar", "multi"))
    write_report(mc, pooled, tmp_path)
    assert "| uci+wisdm → motion | 80.0 (1) | 70.0 (uci) |" in (tmp_path / "report.md").read_text()


def test_a_row_of_another_preset_is_named_not_averaged(tmp_path):
    """A row finetuned with `--preset paper` in a folder reported as the default preset went into its cell's mean."""
    from crosshar.errors import CrossharError

    row = {"source": "uci", "target": "motion", "method": "scratch", "head": "din", "seed": 0, "macro_f1": 0.5}
    p = tmp_path / "rows.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in (row, row | {"seed": 1, "preset": "paper"})))
    with pytest.raises(CrossharError, match=rf"^{p}:2: a row of --preset 'paper', not 'default'"):
        R.read_rows(p, "default")
    assert len(R.read_rows(p)) == 2  # without a preset to hold them to: every row
    p.write_text(json.dumps(row) + "\n")  # a row without a preset predates them: the default
    assert R.read_rows(p, "default") == [row]
    with pytest.raises(CrossharError, match=":1: a row of --preset"):
        R.read_rows(p, "paper")
