"""Shared helpers for the typer commands: clean errors, consoles, common options."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from crosshar.config import MAX_CADENCE_VIEWS
from crosshar.errors import ConfigError, CrossharError, DataError

TRAIN_MODULES = {"torch", "scipy", "sklearn", "imblearn", "einops", "lion_pytorch", "tensorboard", "matplotlib",
                 "onnx", "onnxscript", "thop"}

def _flags_without_a_type() -> None:
    """Typer prints `<bool>` in the type column of flags (`--quick <bool>`), as if they took a value."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):  # type: ignore[no-untyped-def]
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_a_type()

console = Console()
err_console = Console(stderr=True)

def dataset_names() -> str:
    """The registered public datasets, for help texts (with the body-position selector, DATASET@POSITION)."""
    import crosshar.data  # noqa: F401  (registers the loaders)
    from crosshar.registry import DATASETS

    return (", ".join(n for n in DATASETS.names() if n != "custom")
            + "; NAME@POSITION keeps one body position's recordings, e.g. shoaib@wrist")


def split_list(value: str) -> list[str]:
    """`a,b` -> [a, b]: how every command reads a list (datasets, heads, methods)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def source_list(value: str, option: str = "--dataset") -> list[str]:
    """The source datasets of `-d a,b` (split_list), checked before any work: naming none, or one twice (its windows
    pooled twice, each counted double in training and validation), is a one-line error."""
    names = split_list(value)
    if not names:
        raise ConfigError(f"{option} names no dataset: give at least one, e.g. -d uci")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{option} names {', '.join(twice)} twice: each source once")
    from crosshar.data.store import split_position

    whole = {str(base) for base, pos in map(split_position, names) if pos is None}
    part = next((n for n in names if (sp := split_position(n))[1] is not None and str(sp[0]) in whole), None)
    if part is not None:  # uci,uci@waist: the positions' windows are in the whole dataset already
        raise ConfigError(f"{option} names {split_position(part)[0]} and {part}: the whole dataset holds the "
                          f"windows of {part} already; name the dataset or its positions, not both")
    return names


DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder holding the raw public datasets (default: $CROSSHAR_DATA).")]
Sources = Annotated[str, typer.Option("-d", "--dataset", "--datasets", help=f"Source dataset(s), comma-separated: {dataset_names()}.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an earlier result of the same name.")]
OnBad = Annotated[str, typer.Option("--on-bad", help="'error' (default): stop at the first bad row; 'skip': skip bad rows and report each.")]
Device = Annotated[str, typer.Option("--device", help="'auto' (CUDA when PyTorch sees a GPU, else the CPU), 'cpu', 'cuda' or 'cuda:N'.")]
CadenceViews = Annotated[Optional[int], typer.Option("--cadence-views", min=1, max=MAX_CADENCE_VIEWS, help="Test-time views the model carries (and its export): class probabilities averaged over each window replayed at K fixed speeds evenly spaced over the model's finetuning cadence range (0.9-1.1x; K x the inference cost; 1: none). Default: the model's own (FinetuneConfig.cadence_views).")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for PyTorch (default: $OMP_NUM_THREADS, else min(2, cores): polite on a shared box).")]


def plain(text: object) -> str:
    """`text` printed as it is by a rich console: "[labels]" or "[/walk]" in a file name, a label or a cell is not
    markup (rich would drop it, or fail on an unmatched closing tag)."""
    return escape(str(text))


def use_device(device: str, threads: int | None) -> Any:
    """Apply --threads and resolve --device (see crosshar.device); returns the torch.device."""
    from crosshar.device import resolve_device, set_threads

    if not device.strip():  # resolve_device reads an empty name as "auto": given on the command line, it is a mistake
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    set_threads(threads)
    return resolve_device(device)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn crosshar's own errors into a one-line message and exit code 2 (no traceback).

    On Ctrl-C, `--resume` is suggested only to a command that has that option.
    """
    resumable = "resume" in inspect.signature(fn).parameters
    skippable = "on_bad" in inspect.signature(fn).parameters
    forcible = "force" in inspect.signature(fn).parameters
    interrupted = ("[yellow]interrupted[/]: checkpoints written so far are kept; rerun with --resume to continue "
                   "(a run stopped before its first checkpoint, an epoch of pretraining or 30 s of finetuning, has "
                   "none: rerun it as it was)" if resumable
                   else "[yellow]interrupted[/]: files are written whole or not at all, so none is half-written; rerun the command"
                   + (" (with --force if it wrote into an --out folder: the run there is unfinished)" if forcible else ""))

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CrossharError as e:
            hint = ("" if not (skippable and isinstance(e, DataError) and e.skippable
                               and kwargs.get("on_bad", "error") == "error")
                    else " (--on-bad skip skips such rows and lists them)" if e.line is not None
                    else " (--on-bad skip skips such input and lists it)")
            # the message holds the user's own text (file names, cells, labels): never read as markup
            err_console.print("[bold red]error:[/] " + escape(f"{e}{hint}"), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in TRAIN_MODULES:
                err_console.print(f"[bold red]error:[/] this command needs {e.name!r}, part of the training "
                                  "dependencies: pip install 'crosshar\\[train]' (after `pip install torch==2.13.0` for the CPU build)")
                raise typer.Exit(2) from None
            raise
        except KeyboardInterrupt:
            err_console.print(interrupted)
            raise typer.Exit(130) from None

    return wrapper
