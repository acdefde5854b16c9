"""`crosshar finetune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from crosshar.config import MAX_CADENCE_VIEWS
from crosshar.clitools import DataDir, Device, OnBad, Threads, console, dataset_names, friendly, source_list, use_device


@friendly
def finetune_cmd(
    dataset: Annotated[str, typer.Option("-d", "--dataset", help=f"Source dataset(s), comma-separated: {dataset_names()}.")] = "uci",
    label_rate: Annotated[Optional[float], typer.Option("-lr", "--label-rate", help="Fraction of source training windows that keep their labels (0.1 = 10 %).")] = None,
    head: Annotated[Optional[str], typer.Option("--head", help="Registered head: din, danhar, mag_res2net, cnn_lstm_attn, transformer, gru, linear.")] = None,
    encoder: Annotated[Optional[Path], typer.Option("--encoder", help="Pretraining run folder or checkpoint (default: the latest for the dataset).")] = None,
    no_pretrain: Annotated[bool, typer.Option("--no-pretrain", help="No encoder: the head reads the scaled raw windows.")] = False,
    random_encoder: Annotated[bool, typer.Option("--random-encoder", help="No pretraining, but the encoder architecture, randomly initialised, under the head; trained end to end unless --freeze (the matrix's scratch_encoder_last: 85.4 against crosshar's 85.2 over 6 seeds at today's defaults; results/matrix-seeds6/).")] = False,
    freeze: Annotated[Optional[bool], typer.Option("--freeze/--full", help="Freeze the encoder (default) or finetune it end to end.")] = None,
    input_scaling: Annotated[Optional[str], typer.Option("--input-scaling", help="Without a pretrained encoder (--no-pretrain, --random-encoder): physical (default, configs/encoder.toml) or amplitude_sqrt (each window's motion amplitude square-rooted above 0.1 g / 0.3 rad/s: +1.9 at 40 epochs, +0.0 at 120, 6 seeds; README), amplitude_equal, source_stats, instance. A pretrained encoder keeps its own.")] = None,
    input_frame: Annotated[Optional[str], typer.Option("--input-frame", help="Without a pretrained encoder (--no-pretrain, --random-encoder): gravity (default, configs/encoder.toml), vertical (each sample's acc and gyro as horizontal magnitude and vertical component: +3.1 on the head on the raw window, 6 seeds; README), coupled (the vertical frame plus the products of horizontal acc and rotation: -1.1 against vertical, 3 seeds), world_vertical (the vertical frame with the true vertical at every sample, the gyro integrated: +0.8 against vertical, +1.4 with --mount 0.5, 89.0 over 6 seeds, results/matrix-worldvert/), heading, world, device. A pretrained encoder keeps its own.")] = None,
    head_input: Annotated[Optional[str], typer.Option("--head-input", help="What the head reads: embedding (default) or embedding+window (the scaled window beside the embedding; without an encoder, the window in the skip frame beside the window in the input frame).")] = None,
    skip_frame: Annotated[Optional[str], typer.Option("--skip-frame", help="With --head-input embedding+window: the window's frame, encoder (default: the encoder's own) or vertical, gravity, ... (matrix row crosshar_skip_vertical; without an encoder, a second frame of the window for one head reading both: matrix row scratch_dual, the vertical input frame with gravity here).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option("--label-smoothing", min=0.0, max=0.99, help="Share of each label's probability spread evenly over the classes (default configs/finetune.toml's 0.1, measured on the whole matrix: results/matrix/; 0: none).")] = None,
    class_weight: Annotated[Optional[str], typer.Option("--class-weight", help="none (default, configs/finetune.toml) or balanced: each class's cross-entropy weighted as if the labelled classes were equally frequent (pooled sources: -d uci,wisdm brings WISDM's walking without its stairs; matrix row scratch_multi_worldvert_mount_balanced).")] = None,
    mount: Annotated[Optional[float], typer.Option("--mount", min=0.0, max=1.0, help="Share of the labelled windows seen through a spring-damper mount between body and phone (crosshar.augment.mount; default configs/augment_finetune.toml's 0; matrix rows *_mount, results/matrix-mount/ and results/matrix-worldvert/).")] = None,
    label_space: Annotated[str, typer.Option("--label-space", help="Named label space, intersected with the dataset's labels.")] = "crosshar4",
    config: Annotated[Optional[Path], typer.Option("--config", help="Finetune config TOML (default configs/finetune.toml).")] = None,
    head_config: Annotated[Optional[Path], typer.Option("--head-config", help="Head config TOML (default: the preset's, configs/heads/<head>[.<preset>].toml).")] = None,
    preset: Annotated[str, typer.Option("--preset", help="Head preset: default (ours) or paper (the paper's model and training recipe; docs/paper_presets.md). Options given here override it.")] = "default",
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Finetuning epochs (default configs/finetune.toml's 40; 120 scored higher, 6 seeds: README, results/matrix-seeds6/).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (one value; `matrix --n-seeds` counts seeds).")] = None,
    smote: Annotated[Optional[bool], typer.Option("--smote/--no-smote", help="Borderline-SMOTE on training windows.")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="adamw, adam or lion.")] = None,
    center_loss: Annotated[Optional[float], typer.Option("--center-loss", help="Weight of the center loss.")] = None,
    select: Annotated[Optional[str], typer.Option("--select", help="Which epoch's model to keep: last (default: every epoch runs, no selection on the source) or best (the best source-validation macro-F1, early stopping).")] = None,
    ensemble: Annotated[Optional[int], typer.Option("--ensemble", min=1, help="Heads in a deep ensemble: K heads initialised independently, trained side by side, their probabilities averaged (default configs/finetune.toml's: 1).")] = None,
    unlabelled: Annotated[Optional[float], typer.Option("--unlabelled", min=0.0, help="Semi-supervised finetuning: weight of FixMatch's loss on the source's training windows outside the label rate (0 = off, the default; configs/finetune.toml).")] = None,
    sam: Annotated[Optional[float], typer.Option("--sam", min=0.0, help="Sharpness-aware minimisation: its radius rho (0 = off, the default; configs/finetune.toml). Each step's gradient is taken at the batch's worst weights within rho; a second pass of the head per step.")] = None,
    cadence_views: Annotated[Optional[int], typer.Option("--cadence-views", min=1, max=MAX_CADENCE_VIEWS, help="Test-time views the saved and exported model carries: class probabilities averaged over each window replayed at K fixed speeds evenly spaced over the finetuning cadence range (0.9-1.1x; K x the inference cost; training and selection read one view). Default configs/finetune.toml's 1; the best recipe with 5: README.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default runs/finetune/<dataset>-<time>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the run an --out folder already holds (without, such an --out is refused).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last.pt (--out, or the newest unfinished run of the sources), with the same options; it ends with the weights an uninterrupted run would have.")] = False,
    data_dir: DataDir = None,
    on_bad: OnBad = "error",
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Train a head with a fraction of the source labels on the pretrained encoder's embeddings."""
    from crosshar import config as C
    from crosshar.errors import CrossharError
    from crosshar.finetune.run import make_job, resolve_encoder, run
    from crosshar.train.runs import refuse_overwrite

    C.check_at_least("--epochs", epochs, 1)  # options first: nothing is loaded or written for a bad one
    C.check_choice("--on-bad", on_bad, C.ON_BAD)
    datasets = tuple(source_list(dataset))
    if no_pretrain and freeze is True:  # --freeze would silently do nothing too: there is no encoder to freeze
        raise CrossharError("--freeze freezes the encoder, but --no-pretrain has no encoder: drop --freeze, "
                            "or use --random-encoder --freeze for a frozen, randomly initialised encoder")
    if no_pretrain and freeze is False:  # --full would silently do nothing: there is no encoder to finetune
        raise CrossharError("--full finetunes the encoder end to end, but --no-pretrain has no encoder: drop --full, "
                            "or use --random-encoder for the encoder architecture trained from scratch")
    refuse_overwrite(out, force, resume)
    dev = use_device(device, threads)
    if random_encoder and freeze is None:
        freeze = False  # a random encoder is trained with the head unless told to stay frozen
    given = dict(label_rate=label_rate, head=head, freeze=freeze, head_input=head_input, skip_frame=skip_frame,
                 label_smoothing=label_smoothing, class_weight=class_weight, epochs=epochs, seed=seed, smote=smote,
                 optimizer=optimizer, center_loss=center_loss, ensemble=ensemble, select=select, unlabelled=unlabelled,
                 cadence_views=cadence_views, sam=sam)
    before = C.load("finetune", config, **given)
    user = {k for k, v in given.items() if v is not None} | C.keys_set(config)
    head_cfg, fcfg = C.head_preset(before.head, preset, before, head_config, keep=user)  # what the user set wins
    was = before.to_dict()
    changed = {k: v for k, v in fcfg.to_dict().items() if v != was[k]}
    if changed and preset == "default" and head_config is None:
        console.print(f"head {fcfg.head}: its own schedule ({C.preset_path(fcfg.head).name} \\[finetune]): "
                      + ", ".join(f"{k} {v}" for k, v in changed.items()))
    if random_encoder and (no_pretrain or encoder is not None):
        raise CrossharError("--random-encoder excludes --encoder and --no-pretrain")
    enc = resolve_encoder("+".join(datasets), encoder, no_pretrain or random_encoder, log=console.print)
    for flag, value in (("--input-scaling", input_scaling), ("--input-frame", input_frame)):
        if value is not None and enc is not None:
            raise CrossharError(f"{flag} is for --no-pretrain or --random-encoder: a pretrained encoder keeps the input "
                                "pipeline it was pretrained with (pretrain with --encoder-config to choose it)")
    job = make_job(datasets, fcfg, head_cfg, enc, label_space, data_dir, on_bad, random_encoder=random_encoder,
                   input_scaling=input_scaling, input_frame=input_frame, mount=mount)
    run(job, out=out, log=console.print, device=dev, resume=resume)
