"""`crosshar cross` and `crosshar matrix`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from crosshar.clitools import DataDir, Device, Threads, console, friendly, use_device


def print_report(res: dict) -> None:
    m = res["metrics"]
    console.print(f"[bold]{'+'.join(res['source'])} → {res['target']}[/] (head {res['head']}, run {res['run']}): "
                  f"{m['n']:,} target windows in classes {res['eval_classes']}")
    console.print(f"accuracy [bold]{m['accuracy']:.4f}[/]  macro-F1 [bold]{m['macro_f1']:.4f}[/]  "
                  f"weighted F1 {m['weighted_f1']:.4f}  G-mean {m['gmean']:.4f}")
    t = Table(title="per class")
    for c in ("class", "precision", "recall", "F1", "support"):
        t.add_column(c, justify="right" if c != "class" else "left")
    for name, v in m["per_class"].items():
        t.add_row(name, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    console.print(t)
    cm = Table(title="confusion matrix (rows true, columns predicted)")
    cm.add_column("")
    for c in m["classes"]:
        cm.add_column(c[:12], justify="right")
    for c, row in zip(m["classes"], m["confusion"]):
        cm.add_row(c, *[str(v) for v in row])
    console.print(cm)
    console.print(f"results: {res['out']}/results.json, {res['out']}/confusion.png")


@friendly
def cross_cmd(
    dataset: Annotated[str, typer.Option("-d", "--dataset", help="Source dataset(s), comma-separated.")] = "uci",
    target: Annotated[str, typer.Option("-td", "--target", help="Target dataset, never seen in training or model selection.")] = "hhar",
    head: Annotated[Optional[str], typer.Option("--head", help="Head of the model to use or train.")] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="Finetuned run folder or best.pt (default: the latest for the source; trained if none).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Results folder (default results/cross/<source>_to_<target>_<head>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the results folder if it holds an earlier evaluation.")] = False,
    data_dir: DataDir = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Evaluate a source model on every window of an unseen target dataset."""
    from crosshar.evaluate.run import cross

    dev = use_device(device, threads)
    src = [d.strip() for d in dataset.split(",") if d.strip()]
    res = cross(src, target, head=head, run=run, data_dir=data_dir, out=out, log=console.print, force=force, device=dev)
    print_report(res)


@friendly
def matrix_cmd(
    datasets: Annotated[str, typer.Option("--datasets", "-d", help="Datasets, comma-separated; every directed pair is run.")] = "uci,motion,wisdm",
    targets_only: Annotated[str, typer.Option("--targets-only", help="Datasets used only as targets (e.g. hhar), comma-separated.")] = "",
    heads: Annotated[str, typer.Option("--heads", help="Heads, comma-separated.")] = "din",
    seeds: Annotated[int, typer.Option("--seeds", help="Number of seeds per cell (0, 1, ... seeds-1).")] = 3,
    label_rate: Annotated[float, typer.Option("--label-rate", "-lr", help="Fraction of source labels.")] = 0.1,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated rows (see `evaluate/matrix.py`): scratch, mask, contrast, crosshar, crosshar_nomirror, crosshar_device, crosshar_full, crosshar_paper, multi, oracle, oracle_full.")] = ",".join(
        ("scratch", "mask", "contrast", "crosshar", "crosshar_nomirror", "crosshar_device", "crosshar_paper", "multi", "oracle", "oracle_full")),
    name: Annotated[Optional[str], typer.Option("--name", help="Report folder results/<name> (default from the options).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Short schedules: the same matrix in a few minutes.")] = False,
    pretrain_epochs: Annotated[Optional[int], typer.Option("--pretrain-epochs", help="Pretraining epochs for a ~1,700-window source (scaled down for larger ones).")] = None,
    finetune_epochs: Annotated[Optional[int], typer.Option("--finetune-epochs", help="Finetuning epochs (default configs/finetune.toml).")] = None,
    shard: Annotated[str, typer.Option("--shard", help="K/N: run the K-th of N shards (N processes can share one folder).")] = "0/1",
    report_only: Annotated[bool, typer.Option("--report-only", help="Train nothing: rewrite report.md from the rows already in results/<name>.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="Head preset of every finetune: default or paper (docs/paper_presets.md).")] = "default",
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """All directed pairs x methods x heads x seeds, resumable; writes results/<name>/report.md."""
    from crosshar import config as C
    from crosshar import paths
    from crosshar.errors import ConfigError
    from crosshar.evaluate.matrix import MatrixConfig, run_matrix

    dev = use_device(device, threads)
    def split(v: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in v.split(",") if x.strip())

    try:
        k, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/2), got {shard!r}") from None
    mc = MatrixConfig(split(datasets), split(heads), seeds, label_rate, methods=split(methods), quick=quick,
                      pretrain_epochs=pretrain_epochs, finetune_epochs=finetune_epochs,
                      targets_only=split(targets_only), shard=(k, n), preset=preset,
                      device=str(dev))
    for h in mc.heads:  # a missing preset is an error before any training
        C.head_preset(h, preset)
    name = name or f"matrix-{'-'.join(mc.datasets)}{'-quick' if quick else ''}{'' if preset == 'default' else '-' + preset}"
    report = run_matrix(mc, paths.home() / "results" / name, log=console.print, report_only=report_only)
    console.print(report.read_text())
