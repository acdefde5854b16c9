"""The root `crosshar` command: composes the stage apps (data, pretrain, finetune, cross, export)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from crosshar import __version__

app = typer.Typer(
    name="crosshar",
    help="Cross-dataset human activity recognition: pretrain once, finetune with few labels, "
    "evaluate on datasets never seen in training, export for a Raspberry Pi.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crosshar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """crosshar: cross-dataset HAR toolkit."""


def _register() -> None:
    from crosshar.tools.cli import bench_cmd, export_cmd
    from crosshar.data.cli import app as data_app
    from crosshar.evaluate.cli import cross_cmd, matrix_cmd
    from crosshar.finetune.cli import finetune_cmd
    from crosshar.pretrain.cli import embed_cmd, pretrain_cmd

    app.add_typer(data_app, name="data")
    app.command("pretrain")(pretrain_cmd)
    app.command("embed")(embed_cmd)
    app.command("finetune")(finetune_cmd)
    app.command("cross")(cross_cmd)
    app.command("matrix")(matrix_cmd)
    app.command("export")(export_cmd)
    app.command("bench")(bench_cmd)


_register()

if __name__ == "__main__":
    app()
