"""benchmarks/pair_ensemble.py: the report behind results/pair_ensemble.md (two models' probabilities averaged)."""

import importlib.util
from pathlib import Path


SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pair_ensemble.py"
spec = importlib.util.spec_from_file_location("pair_ensemble", SCRIPT)
pe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pe)


def rows(seeds: int, a: float, b: float, pair: float, partner: str = "B") -> list[dict]:
    out = []
    for seed in range(seeds):
        for s, t in pe.PAIRS:
            jitter = 0.01 * seed  # a seed effect shared by the three columns: the paired difference stays exact
            per_class = {"upstairs": 0.7, "downstairs": 0.8} if (s, t) == ("uci", "motion") else {}
            out.append({"seed": seed, "source": s, "target": t, "a": "A", "b": partner, "macro_f1_a": a + jitter,
                        "macro_f1_b": b + jitter, "macro_f1_pair": pair + jitter, "per_class_f1_pair": per_class})
    return out


def test_report_means_over_pairs_and_seeds_and_pairs_the_differences_by_seed():
    md = pe.report(rows(3, 0.80, 0.78, 0.83))
    assert "## A + B (3 seeds)" in md
    assert "| **mean of the 6 pairs** | **81.0** | **79.0** | **84.0** |" in md
    assert "- A + B − A: +3.0 (95 % interval +3.0 to +3.0)" in md
    assert "- B − A: -2.0" in md
    assert "upstairs / downstairs F1 0.70 / 0.80" in md


def test_report_leaves_out_seeds_missing_a_pair_and_keeps_partners_apart():
    r = rows(3, 0.80, 0.78, 0.83) + rows(2, 0.80, 0.90, 0.95, partner="C")
    r = [x for x in r if not (x["seed"] == 2 and x["b"] == "B" and x["target"] == "uci")]  # seed 2 incomplete
    md = pe.report(r)
    assert "## A + B (2 seeds)" in md and "## A + C (2 seeds)" in md
    section_c = md.split("## A + C")[1]
    assert "**80.5** | **90.5** | **95.5**" in section_c


def test_a_target_only_report_covers_the_sources_into_that_target():
    """--target hhar: the three sources' models on hhar alone; the means and differences run over those 3 pairs."""
    pairs = pe.pairs_for("hhar")
    assert pairs == [("uci", "hhar"), ("motion", "hhar"), ("wisdm", "hhar")] and pe.pairs_for(None) == pe.PAIRS
    rows = []
    for seed in range(2):
        for s, t in pairs:
            rows.append({"seed": seed, "source": s, "target": t, "a": "A", "b": "B", "macro_f1_a": 0.5 + 0.1 * seed,
                         "macro_f1_b": 0.6 + 0.1 * seed, "macro_f1_pair": 0.7 + 0.1 * seed, "per_class_f1_pair": {}})
    md = pe.report(rows, pairs)
    assert "## A + B (2 seeds)" in md and "| wisdm → hhar | 55.0 | 65.0 | 75.0 |" in md
    assert "| **mean of the 3 pairs** | **55.0** | **65.0** | **75.0** |" in md
    assert "- A + B − A: +20.0 (95 % interval +20.0 to +20.0)" in md and "over the 3 pairs" in md
    assert "uci → motion" not in md


def test_against_compares_two_pairs_by_seed_over_the_seeds_both_have():
    """--against: this pair's averaged model against another pair's, per pair and paired by seed; a pair where
    this one is lower is named."""
    mine = rows(3, 0.80, 0.78, 0.86)
    other = [r | {"a": "C", "b": "D", "macro_f1_pair": r["macro_f1_pair"] - 0.02} for r in rows(2, 0.80, 0.78, 0.86)]
    other[0] = other[0] | {"macro_f1_pair": 0.95}  # seed 0, uci -> motion: the other pair higher there
    md = pe.against(mine, other)
    assert "## A + B against C + D (2 seeds both have)" in md
    assert "| uci → motion | 86.5 | 90.0 | -3.5 |" in md  # mean of seeds 0 and 1 only
    assert "| uci → wisdm | 86.5 | 84.5 | +2.0 |" in md
    assert "- pairs where A + B is below C + D: uci → motion (-3.5)" in md
    assert "- (A + B) − (C + D): +1.1" in md
