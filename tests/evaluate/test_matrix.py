"""`crosshar matrix`: every directed pair x method on two synthetic datasets, a report row per pair,
and a rerun that adds nothing and trains nothing."""

from __future__ import annotations

import json

import pytest

import crosshar.finetune.run as fr
import crosshar.pretrain.run as pr
from crosshar.evaluate.matrix import METHODS, MatrixConfig, run_matrix
from synthdata import home, synth, synth_root, tiny_configs  # noqa: F401


@pytest.mark.slow
def test_matrix_all_methods_and_resume(synth, home, tiny_configs, monkeypatch):
    mc = MatrixConfig(("uci", "motion"), ("linear",), seeds=1, label_rate=0.5, pretrain_epochs=2, finetune_epochs=2)
    root = home / "results" / "m"
    report = run_matrix(mc, root, log=lambda *_: None)
    rows = [json.loads(l) for l in (root / "rows.jsonl").read_text().splitlines()]
    cells = {(r["source"], r["target"], r["method"]) for r in rows}
    cross_methods = [m for m in METHODS if m != "oracle"]
    assert cells == ({(s, t, m) for s, t in [("uci", "motion"), ("motion", "uci")] for m in cross_methods}
                     | {("-", "uci", "oracle"), ("-", "motion", "oracle")})
    assert len(rows) == len(cells)
    assert all(0 <= r["macro_f1"] <= 1 and r["n"] > 0 for r in rows)
    # the oracle is tested on the target's held-out subjects only, not on all of its windows
    oracle_uci = next(r for r in rows if r["method"] == "oracle" and r["target"] == "uci")
    cross_uci = next(r for r in rows if r["method"] == "crosshar" and r["target"] == "uci")
    assert oracle_uci["n"] < cross_uci["n"] == 120
    text = report.read_text()
    for pair in ("| uci → motion |", "| motion → uci |"):
        assert text.count(pair) == 2  # macro-F1 table and accuracy table
    assert "crosshar − scratch" in text and "crosshar / oracle" in text
    # the "mask" method pretrains stage 1 only, "contrast" stage 2 only with no reconstruction
    mask = json.loads((root / "runs" / "pretrain-uci-mask-s0" / "run.json").read_text())
    contrast = json.loads((root / "runs" / "pretrain-uci-contrast-s0" / "run.json").read_text())
    assert [h["stage"] for h in mask["history"]] == [1, 1]
    assert [h["stage"] for h in contrast["history"]] == [2, 2] and contrast["configs"]["pretrain"]["w_mse"] == 0

    # resumable: a second call adds no rows and trains nothing
    monkeypatch.setattr(pr, "run", lambda *a, **k: pytest.fail("pretrained again"))
    monkeypatch.setattr(fr, "run", lambda *a, **k: pytest.fail("finetuned again"))
    before = (root / "rows.jsonl").read_text()
    run_matrix(mc, root, log=lambda *_: None)  # (what it must not do is guarded above, not its duration)
    assert (root / "rows.jsonl").read_text() == before
    assert report.read_text().count("| uci → motion |") == 2
