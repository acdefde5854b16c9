"""benchmarks/infer_batch.py: the figures behind crosshar.inference.infer_batch (no timing asserted)."""

import importlib.util
import json
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "infer_batch.py"
spec = importlib.util.spec_from_file_location("infer_batch", SCRIPT)
ib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ib)


def test_every_model_every_batch_and_the_same_outputs(tmp_path):
    out = tmp_path / "ib.md"
    before = torch.get_num_threads()
    assert ib.main(["--windows", "24", "--batches", "5,24", "--rounds", "1", "--write", str(out)]) == 0
    assert torch.get_num_threads() == before  # the caller's thread count is restored
    r = json.loads(out.with_suffix(".json").read_text())
    assert r["batches"] == [5, 24] and len(r["results"]) == 4
    for v in r["results"].values():
        assert set(v["ms_per_window"]) == {"5", "24"} and all(t > 0 for t in v["ms_per_window"].values())
        assert max(v["max_abs_diff"].values()) < 1e-5  # a batch is a speed choice only
    assert "CrossHAR's classifier" in out.read_text()
