"""`crosshar pretrain` and `crosshar embed`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from crosshar.clitools import DataDir, Device, OnBad, Threads, console, dataset_names, friendly, source_list, use_device


@friendly
def pretrain_cmd(
    dataset: Annotated[str, typer.Option("-d", "--dataset", help=f"Source dataset(s), comma-separated ({dataset_names()}), e.g. uci or uci,motion. Never the target.")] = "uci",
    config: Annotated[Optional[Path], typer.Option("--config", help="Pretraining config TOML (default configs/pretrain.toml).")] = None,
    encoder_config: Annotated[Optional[Path], typer.Option("--encoder-config", help="Encoder config TOML (default configs/encoder.toml).")] = None,
    augment_config: Annotated[Optional[Path], typer.Option("--augment-config", help="Augmentation config TOML (default configs/augment.toml).")] = None,
    window_config: Annotated[Optional[Path], typer.Option("--window-config", help="Window config TOML (default configs/window.toml).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Total epochs, split between the stages in the config's proportion.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default runs/pretrain/<dataset>-<time>).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same weights on CPU).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last.pt (--out or the latest run).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in an --out folder that already holds a run, replacing it (without, such an --out is refused).")] = False,
    channels: Annotated[Optional[str], typer.Option("--channels", help="'acc+gyro' (default) or 'acc'.")] = None,
    activities: Annotated[Optional[str], typer.Option("--activities", help="Pretrain only on the windows whose activity lies in this label space (e.g. crosshar4: WISDM's 14 hand and sports activities left out); '' every window (the config's default).")] = None,
    data_dir: DataDir = None,
    on_bad: OnBad = "error",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="'default' (crosshar's recipe) or 'paper' (CrossHAR as published: configs/recipes/paper.toml); a config file named here (--config, --encoder-config, ...) wins where it sets a key.")] = "default",
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Hierarchical self-supervised pretraining (CrossHAR) of a shared encoder on unlabelled source windows."""
    from crosshar import config as C
    from crosshar.data.labels import SPACES
    from crosshar.pretrain.run import make_job, run
    from crosshar.train.runs import refuse_overwrite

    C.check_at_least("--epochs", epochs, 1)  # options first: nothing is loaded or written for a bad one
    C.check_choice("--on-bad", on_bad, C.ON_BAD)
    if activities:
        C.check_choice("--activities", activities, tuple(SPACES))
    datasets = tuple(source_list(dataset))
    refuse_overwrite(out, force, resume)
    dev = use_device(device, threads)
    job = make_job(datasets, preset, config=config,
                   encoder_config=encoder_config, augment_config=augment_config, window_config=window_config,
                   epochs=epochs, seed=seed, channels=channels, data_dir=data_dir, on_bad=on_bad,
                   activities=activities)
    run(job, out=out, resume=resume, log=console.print, progress=not quiet, device=dev)


@friendly
def embed_cmd(
    dataset: Annotated[str, typer.Option("-d", "--dataset", help=f"Dataset to embed: one of {dataset_names()}, or a folder holding crosshar.toml.")],
    encoder: Annotated[Path, typer.Option("--encoder", help="Pretraining run folder or checkpoint.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Output .npz (default embed_<dataset>.npz).")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Write the encoder's (N, T, D) embeddings of a dataset's windows, with labels and subjects, to .npz."""
    from crosshar.pretrain.run import embed_to_file

    dev = use_device(device, threads)
    embed_to_file(dataset, encoder, out or Path(f"embed_{dataset}.npz"), data_dir, dev, log=console.print)
