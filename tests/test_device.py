"""Device choice, CPU threads, the distributed backend, mixed precision, and CPU results unchanged.

The CUDA tests skip (with the reason) where PyTorch sees no GPU."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import crosshar.train.distributed as training
from crosshar import checkpoint, device
from crosshar.cli import app
from crosshar.errors import CrossharError
from crosshar.train.pretrain import PretrainJob, run
from synthdata import AUGMENT, TINY_ENCODER, TINY_PRETRAIN, WINDOW, home, synth, synth_root  # noqa: F401

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch here")


def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_cpu_without_a_gpu_and_cuda_with_one(monkeypatch):
    no_gpu(monkeypatch)
    assert device.resolve_device("auto") == torch.device("cpu")
    assert device.resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto").type == "cuda"
    assert device.resolve_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch, name):
    no_gpu(monkeypatch)
    with pytest.raises(CrossharError, match="no CUDA GPU"):
        device.resolve_device(name)


def test_unknown_device_is_an_error():
    with pytest.raises(CrossharError, match="expected one of auto, cpu, cuda"):
        device.resolve_device("tpu")


@pytest.mark.parametrize("cmd", [["pretrain"], ["finetune"], ["cross"], ["matrix"], ["embed", "-d", "uci", "--encoder", "x"]])
def test_cli_device_cuda_without_gpu_exits_2_with_one_line(monkeypatch, cmd):
    no_gpu(monkeypatch)
    r = CliRunner().invoke(app, cmd + ["--device", "cuda"])
    assert r.exit_code == 2, r.output
    assert "no CUDA GPU" in r.output and r.output.strip().count("\n") == 0 and "Traceback" not in r.output


def test_threads_option_sets_torch_threads(monkeypatch):
    old = torch.get_num_threads()
    try:
        assert device.set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert device.default_threads() == 3
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(device.os, "cpu_count", lambda: 16)
        assert device.default_threads() == 2  # polite on a shared box
        with pytest.raises(CrossharError):
            device.set_threads(0)
    finally:
        torch.set_num_threads(old)


def test_backend_follows_the_tensors_device():
    assert device.dist_backend(torch.device("cpu")) == "gloo"
    assert device.dist_backend(torch.device("cuda", 0)) == "nccl"


def test_torchrun_on_cpu_picks_gloo_even_when_a_gpu_is_visible(monkeypatch):
    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(training.dist, "init_process_group", lambda backend, **kw: chosen.append(backend))
    monkeypatch.setattr(training.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(training.dist, "get_world_size", lambda: 2)
    assert training.init_distributed(torch.device("cpu")) == training.Dist(1, 2)
    training.init_distributed(torch.device("cuda", 0))
    assert chosen == ["gloo", "nccl"]


def test_cpu_precision_is_plain_float32():
    p = device.Precision(torch.device("cpu"))
    assert p.dtype is None and p.scaler is None
    with p.autocast():
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.parametrize("opt", ["adamw", "adam"])
def test_an_optimiser_step_that_overflows_float32_is_one_clear_error(opt):
    """lr = 1e300 passes the config (a finite number) but no float32 holds it: torch raised a RuntimeError
    traceback from inside the optimiser; now a CrossharError that says to lower the learning rate."""
    w = torch.nn.Parameter(torch.ones(3))
    o = (torch.optim.AdamW if opt == "adamw" else torch.optim.Adam)([w], lr=1e300)
    with pytest.raises(CrossharError, match="overflows float32.*lower the learning rate"):
        device.Precision(torch.device("cpu")).step((w * 2).sum(), o, [w], 1.0)


def test_place_and_take_on_cpu_are_exact():
    X = torch.arange(24.0).reshape(6, 4)
    assert device.place(X, torch.device("cpu")) is X
    import numpy as np

    np.testing.assert_array_equal(device.take(X, np.array([4, 0, 2]), torch.device("cpu")), X[[4, 0, 2]])


def _weights(d):
    return checkpoint.load(d / "last.pt")["model"]


def test_cpu_results_do_not_depend_on_how_the_cpu_is_named(synth, home, monkeypatch):
    """Same seed: the default and "auto" without a GPU (torch.device("cpu")) give identical weights and losses."""
    no_gpu(monkeypatch)
    job = PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN)
    runs = [run(job, out=home / "default", log=lambda *_: None, progress=False)]
    for i, dev in enumerate(["auto"]):
        runs.append(run(job, out=home / f"r{i}", log=lambda *_: None, progress=False, device=dev))
    ref = _weights(runs[0])
    import json

    ref_hist = json.loads((runs[0] / "run.json").read_text())["history"]
    for d in runs[1:]:
        w = _weights(d)
        assert all(torch.equal(ref[k], w[k]) for k in ref)
        hist = json.loads((d / "run.json").read_text())["history"]
        assert [h["train"] for h in hist] == [h["train"] for h in ref_hist]
        assert [h["val"] for h in hist] == [h["val"] for h in ref_hist]


@CUDA
def test_pretrain_and_finetune_on_cuda(synth_root, home):
    import crosshar.train.finetune as fr
    from crosshar.models import classifier as clf
    from synthdata import TINY_FINETUNE

    job = PretrainJob(("uci",), WINDOW, TINY_ENCODER, AUGMENT, TINY_PRETRAIN, data_dir=str(synth_root))
    d = run(job, out=home / "gpu", log=lambda *_: None, progress=False, device="cuda")
    w = _weights(d)
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())
    fj = fr.FinetuneJob(("uci",), WINDOW, TINY_FINETUNE, AUGMENT, ("walking", "upstairs", "downstairs", "sitting&standing"),
                        "crosshar4", str(d), {}, data_dir=str(synth_root))
    fd = fr.run(fj, out=home / "ft", log=lambda *_: None, progress=False, device="cuda")
    model, _ = clf.load(fd)  # saved on the GPU, loads on the CPU
    assert next(model.parameters()).device.type == "cpu"


@CUDA
def test_cuda_precision_autocasts_and_scales_fp16_only():
    p = device.Precision(torch.device("cuda"))
    assert p.dtype in (torch.bfloat16, torch.float16)
    assert (p.scaler is not None) == (p.dtype == torch.float16)
    with p.autocast():
        assert (torch.ones(2, 2, device="cuda") @ torch.ones(2, 2, device="cuda")).dtype == p.dtype
