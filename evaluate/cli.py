"""`crosshar cross` and `crosshar matrix`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from crosshar.clitools import (CadenceViews, DataDir, Device, Force, OnBad, Sources, Threads, console, dataset_names,
                               err_console, friendly, plain, source_list, split_list, use_device)
from crosshar.evaluate.methods import DEFAULT_METHODS, METHODS


def print_report(res: dict) -> None:
    m = res["metrics"]
    views = f", {res['tta']} test-time views" if res.get("tta") else ""
    views += f", {res['cadence_views']} cadence views" if (res.get("cadence_views") or 1) > 1 else ""
    # names, paths and classes are the user's text: printed as they are, never read as markup
    console.print(f"[bold]{plain('+'.join(res['source']) + ' → ' + res['target'])}[/] "
                  + plain(f"(head {res['head']}, run {', '.join(res.get('ensemble_runs', [res['run']]))}{views}): "
                          f"{m['n']:,} target windows in classes {res['eval_classes']}"))
    console.print(f"accuracy [bold]{m['accuracy']:.4f}[/]  macro-F1 [bold]{m['macro_f1']:.4f}[/]  "
                  f"weighted F1 {m['weighted_f1']:.4f}  G-mean {m['gmean']:.4f}")
    t = Table(title="per class")
    for c in ("class", "precision", "recall", "F1", "support"):
        t.add_column(c, justify="right" if c != "class" else "left")
    for name, v in m["per_class"].items():
        t.add_row(plain(name), f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    console.print(t)
    cm = Table(title="confusion matrix (rows true, columns predicted)")
    cm.add_column("")
    for c in m["classes"]:
        cm.add_column(plain(c[:12]), justify="right")
    for c, row in zip(m["classes"], m["confusion"]):
        cm.add_row(plain(c), *[str(v) for v in row])
    console.print(cm)
    for attr in ("position", "device"):
        groups = res.get(f"by_{attr}") or {}
        if groups:
            g = Table(title=f"by {'body position' if attr == 'position' else attr}")
            for c in (attr, "windows", "accuracy", "macro-F1", *(f"F1 {k}" for k in m["classes"])):
                g.add_column(plain(c[:14]), justify="left" if c == attr else "right")
            for name, v in groups.items():
                g.add_row(plain(name), f"{v['n']:,}", f"{v['accuracy']:.3f}", f"{v['macro_f1']:.3f}",
                          *(f"{v['per_class'][k]['f1']:.2f}" if v["per_class"][k]["support"] else "-" for k in m["classes"]))
            console.print(g)
    console.print(plain(f"results: {res['out']}/results.json, {res['out']}/confusion.png"), soft_wrap=True)


@friendly
def cross_cmd(
    dataset: Sources = "uci",
    target: Annotated[str, typer.Option("-td", "--target", help=f"Target, never seen in training or model selection: one of {dataset_names()}, or a folder holding crosshar.toml (your own data, read in place).")] = "hhar",
    head: Annotated[Optional[str], typer.Option("--head", help="Head of the model to use or train.")] = None,
    run: Annotated[Optional[list[Path]], typer.Option("--run", help="Finetuned run folder or best.pt (default: the latest for the source; trained if none). Repeat to average several models' probabilities (same source and classes).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Results folder (default $CROSSHAR_HOME/results/cross/<source>_to_<target>_<head>).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Results folder name under $CROSSHAR_HOME/results/cross/, to keep an earlier result.")] = None,
    force: Force = False,
    pretrain_epochs: Annotated[Optional[int], typer.Option("--pretrain-epochs", help="Epochs of the pretraining that cross starts when no model matches (default: configs/pretrain.toml).")] = None,
    finetune_epochs: Annotated[Optional[int], typer.Option("--finetune-epochs", help="Epochs of the finetuning that cross starts when no model matches (default: configs/finetune.toml).")] = None,
    data_dir: DataDir = None,
    on_bad: OnBad = "error",
    tta: Annotated[int, typer.Option("--tta", min=0, help="Test-time views: score each target window as its class probabilities averaged over the window as recorded and N draws of the model's finetuning augmentation (N + 1 forward passes; no target label or statistic is used). 0: the window alone.")] = 0,
    cadence_views: CadenceViews = None,
    tta_views: Annotated[str, typer.Option("--tta-views", help="What the test-time views draw: 'all' (the model's finetuning augmentation), 'motion' (without the device's orientation: amplitude, cadence, mount, calibration and noise only) 'mirror' (the window's mirror image only: with --tta 1 the window and its mirror averaged), or one augmentation alone: 'mount', 'amplitude', 'cadence', 'sensor' (gain, bias, noise).")] = "all",
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Evaluate a source model on every window of an unseen target dataset (or your own folder).

    When no finetuned model matches, one is trained with the default configs (said beforehand,
    with an estimate of the time); interrupted, the same command resumes that training.
    """
    from crosshar import config as C
    from crosshar.evaluate.run import cross
    from crosshar.train.runs import check_name

    check_name(name)  # options first: nothing is trained or written for a bad one
    C.check_choice("--on-bad", on_bad, C.ON_BAD)
    C.check_at_least("--pretrain-epochs", pretrain_epochs, 1)
    C.check_at_least("--finetune-epochs", finetune_epochs, 1)
    sources = source_list(dataset)
    if head is not None:  # an unknown head is refused here, not after the pretraining `cross` starts when no run matches
        C.check_head(head)
    dev = use_device(device, threads)
    try:
        res = cross(sources, target, head=head, run=run or None, data_dir=data_dir, out=out, log=console.print,
                    force=force, name=name, pretrain_epochs=pretrain_epochs, finetune_epochs=finetune_epochs,
                    device=dev, on_bad=on_bad, tta=tta, tta_views=tta_views, cadence_views=cadence_views)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: no result was filed for this target (results.json is written last); run the same "
                          "command again"
                          if run else
                          "[yellow]interrupted[/]: run the same command again to resume; the pretraining "
                          "continues from its last finished epoch, the finetuning from its last checkpoint (written at most every "
                          "30 s)")
        raise typer.Exit(130) from None
    print_report(res)


@friendly
def matrix_cmd(
    datasets: Annotated[str, typer.Option("-d", "--dataset", "--datasets", help=f"Datasets, comma-separated ({dataset_names()}); every directed pair is run.")] = "uci,motion,wisdm",
    targets_only: Annotated[str, typer.Option("--targets-only", help="Datasets used only as targets (e.g. hhar), comma-separated: never a source, but the oracle rows train their ceiling on their own training users.")] = "",
    heads: Annotated[str, typer.Option("--head", "--heads", help="Heads, comma-separated.")] = "din",
    seeds: Annotated[int, typer.Option("--n-seeds", "--seeds", help="How many seeds per cell (0, 1, ... n-1); not a seed value.")] = 3,
    label_rate: Annotated[float, typer.Option("-lr", "--label-rate", help="Fraction of source labels.")] = 0.1,
    methods: Annotated[str, typer.Option("--methods", help=f"Comma-separated rows, each the default recipe with one named factor changed ({len(METHODS)} known, each described in evaluate/methods.py; an unknown name lists them all).")] = ",".join(DEFAULT_METHODS),
    name: Annotated[Optional[str], typer.Option("--name", help="Report folder $CROSSHAR_HOME/results/<name> (default from the options).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Short schedules: the same matrix in a few minutes.")] = False,
    pretrain_epochs: Annotated[Optional[int], typer.Option("--pretrain-epochs", help="Pretraining epochs for a ~1,700-window source (scaled down for larger ones).")] = None,
    finetune_epochs: Annotated[Optional[int], typer.Option("--finetune-epochs", help="Finetuning epochs (default configs/finetune.toml).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes sharing the work (each claims the next group of cells nobody holds); --threads is per worker (default: cores / jobs).")] = 1,
    shard: Annotated[str, typer.Option("--shard", help="K/N: only the K-th of N fixed subsets of the work (e.g. one per machine); processes on one folder already share the rest dynamically.")] = "0/1",
    report_only: Annotated[bool, typer.Option("--report-only", help="Train nothing: rewrite report.md from the rows already in results/<name>.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="Head preset of every finetune: default or paper (docs/paper_presets.md).")] = "default",
    recipe: Annotated[str, typer.Option("--recipe", help="Config recipe of every row whose method has none of its own (crosshar_paper keeps 'paper'): 'default' (the shipped configs) or 'next' (configs/recipes/next.toml: the candidate next defaults, measured on the whole matrix before they are shipped).")] = "default",
    device: Device = "auto",
    threads: Threads = None,
    data_dir: DataDir = None,
) -> None:
    """All directed pairs x methods x heads x seeds, resumable; writes results/<name>/report.md."""
    from crosshar import config as C
    from crosshar import paths
    from crosshar.errors import ConfigError
    from crosshar.evaluate.matrix import MatrixConfig, run_matrix, sources_tag
    from crosshar.train.runs import check_name

    check_name(name)
    if data_dir is not None:  # the matrix reads every dataset through the data folder's default
        os.environ[paths.ENV_DATA] = str(paths.data_dir(data_dir))
    dev = use_device(device, threads)
    split = split_list

    try:
        k, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/2), got {shard!r}") from None
    mc = MatrixConfig(tuple(split(datasets)), tuple(split(heads)), seeds, label_rate, methods=tuple(split(methods)), quick=quick,
                      pretrain_epochs=pretrain_epochs, finetune_epochs=finetune_epochs,
                      targets_only=tuple(split(targets_only)), shard=(k, n), preset=preset,
                      device=str(dev), recipe=recipe)
    for h in mc.heads:  # a missing preset is an error before any training
        C.head_preset(h, preset)
    name = name or (f"matrix-{sources_tag(mc.datasets).replace('+', '-')}{'-quick' if quick else ''}"
                    f"{'' if preset == 'default' else '-' + preset}{'' if recipe == 'default' else '-' + recipe}")
    report = run_matrix(mc, paths.home() / "results" / name, log=console.print, report_only=report_only, jobs=jobs,
                        threads=threads)
    console.print(report.read_text(), markup=False, highlight=False)
