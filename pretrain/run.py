"""The pretrain stage: `crosshar pretrain` and `crosshar embed` as compositions of library calls.

Training itself is crosshar.train.pretrain (shared with `crosshar cross` and `crosshar matrix`);
loading and embedding are crosshar.inference.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np

from crosshar import config as C
from crosshar.atomic import atomic_write_bytes
from crosshar.config import WindowConfig
from crosshar.data.sources import for_sources
from crosshar.data.store import prepare
from crosshar.inference import embed, load_encoder
from crosshar.train.pretrain import PretrainJob, run, split_epochs


def make_job(datasets: tuple[str, ...], preset: str = "default", *, config: Path | None = None,
             encoder_config: Path | None = None, augment_config: Path | None = None,
             window_config: Path | None = None, epochs: int | None = None, seed: int | None = None,
             channels: str | None = None, data_dir: Path | None = None, on_bad: str = "error",
             activities: str | None = None) -> PretrainJob:
    """The job the command line describes: config files (or the packaged ones), the preset, overrides."""
    pcfg = C.load("pretrain", config, preset, seed=seed, activities=activities)
    window = C.load("window", window_config, channels=channels)
    if channels is None and window_config is None:  # acc-only sources: acc-only windows, as data prepare does
        window = for_sources(window, datasets, data_dir)
    return PretrainJob(
        datasets=datasets, window=window,
        encoder=C.load("encoder", encoder_config, preset), augment=C.load("augment", augment_config, preset),
        pretrain=split_epochs(pcfg, epochs), data_dir=None if data_dir is None else str(data_dir), on_bad=on_bad,
    )


def embed_to_file(dataset: str, encoder: Path, out: Path, data_dir: Path | None, device,
                  log: Callable[[str], None] = print) -> Path:
    """Write the encoder's (N, T, D) embeddings of a dataset's windows, with labels and subjects, to .npz."""
    enc, scaler, jd = load_encoder(encoder)
    ws = prepare(dataset, data_dir, WindowConfig.from_dict(jd["window"]))
    E = embed(enc, scaler, ws.X, device=device)
    b = io.BytesIO()
    np.savez(b, embeddings=E, labels=ws.labels, subjects=ws.subjects)
    atomic_write_bytes(out, b.getvalue())
    log(f"{out}: embeddings {E.shape} from {jd['path']}")
    return out


__all__ = ["PretrainJob", "make_job", "run", "embed_to_file", "embed", "load_encoder"]
