"""Does torch.compile make CPU pretraining cheaper? CPU seconds per stage-2 step, eager vs compiled.

    python benchmarks/compile_speed.py [--steps 20] [--threads 1] [--out results/compile_speed.json]

Times the costliest step of the default pretraining (configs/*.toml; stage 2: two augmented views,
masked reconstruction + NT-Xent, backward, AdamW) on batches of physical-looking windows, in CPU
seconds of this process (time.process_time) plus its children (the compiler's workers), one thread:

    eager     the model as `crosshar pretrain` runs it
    compiled  the same model with the encoder's forward_features compiled (torch.compile, inductor)

The first compiled step pays the compilation; the table gives it apart, and the number of steps after
which compiling pays back, against the steps of one default pretraining on UCI. If compilation fails
(no C++ compiler, an unsupported op), the row says why and the eager figure stands.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # compile in this process: its CPU is counted

import torch  # noqa: E402

from crosshar import config as C  # noqa: E402
from crosshar.augment import Augmenter  # noqa: E402
from crosshar.export import physical_windows  # noqa: E402
from crosshar.pretrain.run import Model, PretrainJob  # noqa: E402
from crosshar.training import generator  # noqa: E402


def cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def steps(job: PretrainJob, X: torch.Tensor, n: int, compile_encoder: bool) -> dict:
    """CPU seconds of the first step and the median of the next n stage-2 training steps."""
    torch.manual_seed(0)
    model = Model(job).train()
    if compile_encoder:  # the pretrainer calls encoder.forward_features, not encoder(...)
        model.encoder.forward_features = torch.compile(model.encoder.forward_features, dynamic=False)
    opt = torch.optim.AdamW(model.parameters(), lr=job.pretrain.lr)
    aug = Augmenter(job.augment, job.window.n_channels)
    g = generator(0, 1, 0)
    B = job.pretrain.batch_size
    times, losses = [], []
    for i in range(n + 1):
        x = X[(i * B) % len(X):][:B]
        t0 = cpu_s()
        v1, v2 = aug.two_views(x, g, job.pretrain.views)
        out = model(v1, v2, 2, g)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        times.append(cpu_s() - t0)
        losses.append(float(out["loss"].detach()))
    rest = sorted(times[1:])
    return {"first_step_cpu_s": times[0], "step_cpu_s": rest[len(rest) // 2], "losses": losses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=1682, help="training windows of one epoch (UCI: 1682)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    job = PretrainJob(("uci",), C.load("window"), C.load("encoder"), C.load("augment"), C.load("pretrain"))
    w = job.window
    X = torch.from_numpy(physical_windows(job.pretrain.batch_size * 8, w.window, w.n_channels, w.rate_hz, seed=0))
    eager = steps(job, X, args.steps, False)
    try:
        comp = steps(job, X, args.steps, True)
        comp["status"] = "ok"
    except Exception as e:  # noqa: BLE001  (any compiler failure: report it, eager stands)
        comp = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    n_steps = args.n_train // job.pretrain.batch_size * job.pretrain.epochs
    doc = {"threads": args.threads, "batch_size": job.pretrain.batch_size, "timed_steps": args.steps,
           "default_pretraining_steps": n_steps, "eager": eager, "compiled": comp, "torch": torch.__version__,
           "command": " ".join(["python", "benchmarks/compile_speed.py"] + sys.argv[1:])}
    print(f"stage-2 step, batch {job.pretrain.batch_size}, {args.threads} thread(s), CPU seconds (median of {args.steps})")
    print(f"eager     {1e3 * eager['step_cpu_s']:8.1f} ms/step   first step {eager['first_step_cpu_s']:6.2f} s")
    if comp["status"] == "ok":
        saved = eager["step_cpu_s"] - comp["step_cpu_s"]
        extra = comp["first_step_cpu_s"] - eager["first_step_cpu_s"]
        doc["break_even_steps"] = extra / saved if saved > 0 else None
        doc["net_cpu_s_default_pretraining"] = extra - saved * n_steps
        print(f"compiled  {1e3 * comp['step_cpu_s']:8.1f} ms/step   first step {comp['first_step_cpu_s']:6.2f} s "
              f"(compilation)")
        print(f"compiling pays back after {'never' if saved <= 0 else f'{extra / saved:.0f}'} steps; one default "
              f"pretraining on UCI has {n_steps} steps: net {doc['net_cpu_s_default_pretraining']:+.0f} CPU s")
    else:
        print(f"compiled  {comp['status']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
