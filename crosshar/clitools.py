"""Shared helpers for the typer commands: clean errors, consoles, common options."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from crosshar.errors import CrossharError

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder holding the raw datasets (default: $CROSSHAR_DATA).")]
OnBad = Annotated[str, typer.Option("--on-bad", help="'error' (default): stop at the first bad row; 'skip': skip bad rows and report each.")]


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn crosshar's own errors into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CrossharError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: checkpoints written so far are kept; rerun with --resume")
            raise typer.Exit(130) from None

    return wrapper
