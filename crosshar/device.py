"""Where training and inference run: device choice, CPU threads, mixed precision, data placement.

One home for these choices, used by pretraining, finetuning, `cross`, `embed` and `matrix`:

- `resolve_device("auto" | "cpu" | "cuda" | "cuda:1")`: auto is CUDA when PyTorch sees a GPU, else
  the CPU; asking for CUDA where there is none is a one-line error (exit code 2 from the CLI).
- `set_threads(n)`: torch.set_num_threads; the default (`default_threads`) is $OMP_NUM_THREADS when
  set, else min(2, CPU cores). On a shared 2-core box a second thread bought ~8 % of wall time for
  61 % more CPU in pretraining, so more threads only pay on a machine of one's own (pass --threads).
- `Precision(device)`: autocast (bfloat16 where the GPU supports it, else float16 with a GradScaler)
  on CUDA only; on the CPU it does nothing, so CPU results are exactly those of plain float32.
- `dist_backend(device)`: NCCL for CUDA tensors, gloo for CPU tensors (NCCL cannot move CPU tensors).
- `place(X, device)`: the whole training tensor moved to the device once when it fits.

Randomness (augmentation, masks, batch order) is drawn from CPU generators and moved to the data's
device, so a seed gives the same draws on every device.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch

from crosshar.errors import CrossharError

DEVICES = ("auto", "cpu", "cuda")
MAX_RESIDENT_FRACTION = 0.25  # move a dataset to the GPU when it takes at most this share of free memory


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """"auto" | "cpu" | "cuda" | "cuda:N" -> a torch.device that exists here.

    Raises:
        CrossharError: an unknown name, or CUDA asked for where PyTorch sees no GPU.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CrossharError(f"--device {name}: PyTorch sees no CUDA GPU here (torch {torch.__version__}, "
                                f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu or auto")
        idx = name.partition(":")[2]
        if idx and (not idx.isdigit() or int(idx) >= torch.cuda.device_count()):
            raise CrossharError(f"--device {name}: no such GPU (this machine has {torch.cuda.device_count()})")
        return torch.device(name)
    raise CrossharError(f"--device {name!r}: expected one of {', '.join(DEVICES)} (or cuda:N)")


def default_threads() -> int:
    """$OMP_NUM_THREADS when set to a positive integer, else min(2, CPU cores)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def set_threads(n: int | None = None) -> int:
    """torch.set_num_threads(n or default_threads()); returns the number set."""
    n = default_threads() if n is None else n
    if n < 1:
        raise CrossharError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


def dist_backend(device: torch.device) -> str:
    """The torch.distributed backend for tensors on `device`: nccl for CUDA, gloo otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype on `device`: bfloat16 (or float16 on GPUs without it) on CUDA; None on CPU."""
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _clip(params, clip: float) -> torch.Tensor:
    """clip_grad_norm_ over `params`, or over each list of a list of parameter lists (their norms stacked)."""
    params = list(params)
    if params and isinstance(params[0], (list, tuple)):
        return torch.stack([torch.nn.utils.clip_grad_norm_(g, clip) for g in params if g])
    return torch.nn.utils.clip_grad_norm_(params, clip)


def _optimiser_step(step) -> None:
    """`step()`, with torch's overflow of a hyperparameter (a learning rate or weight decay such as 1e300, which no
    float32 holds: "value cannot be converted to type float without overflow") a one-line CrossharError."""
    try:
        step()
    except RuntimeError as e:
        if "overflow" not in str(e):
            raise
        raise CrossharError("the optimiser step overflows float32 (the learning rate or weight decay is too large "
                            f"to compute with: {str(e).strip().splitlines()[0]}); lower the learning rate") from None


class Precision:
    """Mixed precision for a training loop: `with prec.autocast(): loss = ...; prec.backward_step(...)`.

    On the CPU both are plain float32 (autocast is not entered; no scaler), so CPU runs are unchanged.
    On CUDA, float16 needs loss scaling (GradScaler); bfloat16 does not.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.dtype = amp_dtype(self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params, clip: float,
             after_backward: Callable[[], None] | None = None) -> torch.Tensor:
        """backward, unscale, clip the gradient norm to `clip` (0: no clipping), optimiser step; returns the norm.

        `params`: the parameters, or a list of parameter lists whose norms are clipped (and returned) one
        by one (an ensemble's members: each as it would be alone). `after_backward`: called once the gradients
        are computed, before the step (sharpness-aware minimisation puts the weights back there)."""
        clip = clip if clip > 0 else float("inf")
        if self.scaler is None:
            loss.backward()
            if after_backward is not None:
                after_backward()
            gn = _clip(params, clip)
            _optimiser_step(opt.step)
            return gn
        self.scaler.scale(loss).backward()
        if after_backward is not None:
            after_backward()
        self.scaler.unscale_(opt)
        gn = _clip(params, clip)
        _optimiser_step(lambda: self.scaler.step(opt))  # skipped when the scaled gradients overflowed
        self.scaler.update()
        return gn


def fits(X: torch.Tensor, device: torch.device) -> bool:
    """Whether `X` may live on `device` for the whole run (always on the CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return X.numel() * X.element_size() <= MAX_RESIDENT_FRACTION * free


def place(X: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`X` moved to `device` once when it fits there, else kept on the CPU (pinned, for fast copies)."""
    if fits(X, device):
        return X.to(device)
    return X.pin_memory() if torch.device(device).type == "cuda" else X


def batch_to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on `device` (a no-op when its data already lives there)."""
    return x.to(device, non_blocking=True)


def take(X: torch.Tensor, idx, device: torch.device) -> torch.Tensor:
    """X[idx] on `device`: indexed where X lives, then moved (a no-op when X is already there)."""
    if not torch.is_tensor(idx):
        idx = torch.as_tensor(idx)
    return batch_to(X[idx.to(X.device)], device)


__all__ = ["DEVICES", "resolve_device", "default_threads", "set_threads", "dist_backend", "amp_dtype", "Precision",
           "fits", "place", "take", "batch_to"]
