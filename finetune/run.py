"""The finetune stage: `crosshar finetune` as a composition of library calls.

Training itself is crosshar.train.finetune (shared with `crosshar cross` and `crosshar matrix`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from crosshar import config as C
from crosshar.config import FinetuneConfig
from crosshar.errors import ConfigError, CrossharError
from crosshar.models.scaling import InputPipeline
from crosshar.data.sources import for_sources
from crosshar.train.finetune import FinetuneJob, default_window, run, source_classes
from crosshar.train.runs import find_runs


def resolve_encoder(dataset: str, encoder: Path | None, no_pretrain: bool, log: Callable[[str], None] = print) -> str | None:
    """--encoder PATH, else the latest finished pretraining run of the dataset (said aloud), else an error."""
    if no_pretrain:
        if encoder is not None:
            raise CrossharError("--encoder and --no-pretrain exclude each other")
        return None
    if encoder is not None:
        return str(encoder)
    runs = find_runs("pretrain", dataset)
    if not runs:
        raise CrossharError(f"no finished pretraining run for {dataset} under runs/pretrain; run "
                            f"`crosshar pretrain -d {dataset}` first, pass --encoder PATH, or use --no-pretrain")
    # the newest with the default windows (or their accelerometer-only variant): `cross` against a pre-windowed or
    # accelerometer-only target pretrains the source on that target's windows, which must not become the default
    default = C.load("window")
    usual = (default.to_dict(), default.replace(channels="acc").to_dict())
    found = next((p for p, d in runs if (d.get("configs") or {}).get("window") in usual), None)
    if found is None:
        found, d = runs[0]
        log(f"using the latest pretraining run for {dataset}: {found} (its windows are not the default ones: "
            f"{(d.get('configs') or {}).get('window')}; pass --encoder PATH to choose)")
    else:
        log(f"using the latest pretraining run for {dataset} with the default windows: {found}")
    return str(found)


def make_job(datasets: tuple[str, ...], fcfg: FinetuneConfig, head_cfg: dict, encoder: str | None,
             label_space: str, data_dir: Path | None, on_bad: str = "error", random_encoder: bool = False,
             input_scaling: str | None = None, input_frame: str | None = None, mount: float | None = None) -> FinetuneJob:
    """The job: the encoder's window config, and the label space intersected with the sources' labels
    (`random_encoder`, without `encoder`: the encoder architecture randomly initialised under the head;
    `input_scaling`, `input_frame`, without `encoder`: EncoderConfig's instead of configs/encoder.toml's;
    `mount`: AugmentConfig.mount of the finetuning augmentation instead of configs/augment_finetune.toml's)."""
    if mount is not None and mount > 0 and not fcfg.augment:
        raise ConfigError("--mount needs the finetuning augmentation (augment = true); this recipe finetunes "
                          "without it (--preset paper does), so the mount would never run")
    if fcfg.head_input == "embedding+window" and encoder is None and not random_encoder \
            and fcfg.skip_frame == "encoder":
        raise ConfigError("--head-input embedding+window without an encoder puts the window beside itself: give "
                          "--skip-frame FRAME (the second window's frame), or an encoder")
    pipeline = None
    if input_scaling is not None or input_frame is not None:
        pipeline = InputPipeline.of_encoder(C.load("encoder", input_scaling=input_scaling, input_frame=input_frame))
    window = default_window(encoder) if encoder is not None else for_sources(default_window(None), datasets, data_dir)
    classes = source_classes(label_space, datasets, window, data_dir, on_bad)
    return FinetuneJob(datasets, window, fcfg, C.load("augment_finetune", mount=mount), classes, label_space, encoder,
                       head_cfg, data_dir=None if data_dir is None else str(data_dir), on_bad=on_bad,
                       random_encoder=random_encoder, pipeline=pipeline)


__all__ = ["FinetuneJob", "make_job", "resolve_encoder", "run"]
