"""The finetune stage: `crosshar finetune` as a composition of library calls.

Training itself is crosshar.train.finetune (shared with `crosshar cross` and `crosshar matrix`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from crosshar import config as C
from crosshar.config import FinetuneConfig
from crosshar.errors import CrossharError
from crosshar.models.scaling import InputPipeline
from crosshar.train.finetune import FinetuneJob, default_window, run, source_classes
from crosshar.train.runs import latest_run


def resolve_encoder(dataset: str, encoder: Path | None, no_pretrain: bool, log: Callable[[str], None] = print) -> str | None:
    """--encoder PATH, else the latest finished pretraining run of the dataset (said aloud), else an error."""
    if no_pretrain:
        if encoder is not None:
            raise CrossharError("--encoder and --no-pretrain exclude each other")
        return None
    if encoder is not None:
        return str(encoder)
    found = latest_run("pretrain", dataset)
    if found is None:
        raise CrossharError(f"no finished pretraining run for {dataset} under runs/pretrain; run "
                            f"`crosshar pretrain -d {dataset}` first, pass --encoder PATH, or use --no-pretrain")
    log(f"using the latest pretraining run for {dataset}: {found}")
    return str(found)


def make_job(datasets: tuple[str, ...], fcfg: FinetuneConfig, head_cfg: dict, encoder: str | None,
             label_space: str, data_dir: Path | None, on_bad: str = "error", random_encoder: bool = False,
             input_scaling: str | None = None, input_frame: str | None = None, mount: float | None = None) -> FinetuneJob:
    """The job: the encoder's window config, and the label space intersected with the sources' labels
    (`random_encoder`, without `encoder`: the encoder architecture randomly initialised under the head;
    `input_scaling`, `input_frame`, without `encoder`: EncoderConfig's instead of configs/encoder.toml's;
    `mount`: AugmentConfig.mount of the finetuning augmentation instead of configs/augment_finetune.toml's)."""
    pipeline = None
    if input_scaling is not None or input_frame is not None:
        pipeline = InputPipeline.of_encoder(C.load("encoder", input_scaling=input_scaling, input_frame=input_frame))
    window = default_window(encoder)
    classes = source_classes(label_space, datasets, window, data_dir, on_bad)
    return FinetuneJob(datasets, window, fcfg, C.load("augment_finetune", mount=mount), classes, label_space, encoder,
                       head_cfg, data_dir=None if data_dir is None else str(data_dir), on_bad=on_bad,
                       random_encoder=random_encoder, pipeline=pipeline)


__all__ = ["FinetuneJob", "make_job", "resolve_encoder", "run"]
