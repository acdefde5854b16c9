"""Distributed pretraining on CPU: two gloo processes end with identical weights, and only rank 0
writes the run folder."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from crosshar import checkpoint
from synthdata import AUGMENT, TINY_ENCODER, TINY_PRETRAIN, WINDOW, synth_root  # noqa: F401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, tmp: str) -> None:
    """One torchrun-like process: the environment torchrun sets, then pretrain.run.run."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), CROSSHAR_DATA=data, CROSSHAR_HOME=os.path.join(tmp, "home"))
    torch.set_num_threads(1)
    import torch.distributed as dist

    import crosshar.train.pretrain as pr

    models = []

    class Capture(pr.Model):  # keeps a handle on the model, to save every rank's final weights
        def __init__(self, job):
            super().__init__(job)
            models.append(self)

    pr.Model = Capture
    job = pr.PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN.replace(stage1_epochs=1, stage2_epochs=1))
    # each rank gets its own folder, so that a write by rank 1 would show
    pr.run(job, out=os.path.join(tmp, f"out{rank}"), log=lambda *_: None, progress=False)
    torch.save(models[0].state_dict(), os.path.join(tmp, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_cpu_ranks_end_identical_and_only_rank0_writes(synth_root, tmp_path):
    procs = mp.start_processes(_worker, args=(2, _free_port(), str(synth_root), str(tmp_path)), nprocs=2, join=False,
                               start_method="fork" if sys.platform == "linux" else "spawn")  # fork: no re-import
    deadline = time.time() + 900  # a hang guard (a deadlocked collective), not a speed requirement
    while not procs.join(timeout=2):  # re-raises a worker's exception
        if time.time() > deadline:
            for p in procs.processes:
                p.kill()
            pytest.fail("the two DDP workers did not finish within 900 s: a deadlock?")
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0), [k for k in w0 if not torch.equal(w0[k], w1[k])]
    out0 = tmp_path / "out0"
    assert {"best.pt", "last.pt", "run.json"} <= {p.name for p in out0.iterdir()}
    assert not (tmp_path / "out1").exists() or not any((tmp_path / "out1").iterdir())
    info = json.loads((out0 / "run.json").read_text())
    assert info["finished"] and info["world_size"] == 2
    # the checkpoint holds exactly the synchronised weights, and training did move them
    ck = checkpoint.load(out0 / "last.pt")["model"]
    assert all(torch.equal(ck[k], w0[k]) for k in w0)
    torch.manual_seed(TINY_PRETRAIN.seed)
    import crosshar.train.pretrain as pr

    init = pr.Model(pr.PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN)).state_dict()
    assert any(not torch.equal(init[k], w0[k]) for k in w0 if w0[k].is_floating_point())
