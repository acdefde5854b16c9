"""benchmarks/pretrain_speed.py: the pretraining throughput table, on the CPU or a GPU (`--device`)."""

import importlib.util
import json
from pathlib import Path

import torch
from synthdata import home, synth, synth_root, tiny_configs  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pretrain_speed.py"
spec = importlib.util.spec_from_file_location("pretrain_speed", SCRIPT)
ps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ps)


def test_table_names_the_device_and_the_run_keeps_the_seed_and_the_callers_threads(synth, home, tiny_configs, capsys):
    threads = torch.get_num_threads()
    ps.main(["-d", "uci", "--epochs", "2", "--device", "cpu", "--seed", "7", "--threads", "1", "--out", str(home / "r")])
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    assert "1+1 epochs" in out and "device cpu" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [r[:2] for r in rows] == [["1", "1"], ["2", "1"]]
    assert all(float(r[2].replace(",", "")) > 0 for r in rows)  # windows/s of each stage
    info = json.loads((home / "r" / "run.json").read_text())
    assert info["configs"]["pretrain"]["seed"] == 7
