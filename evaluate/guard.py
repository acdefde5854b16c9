"""The leakage guard: target data must never have touched training or model selection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crosshar.data.windows import WindowSet
from crosshar.errors import LeakageError


def check_names(source: list[str], target: str) -> None:
    if target in source:
        raise LeakageError(f"target dataset {target!r} is also a source ({', '.join(source)}); "
                           f"cross-dataset evaluation needs a dataset that never touched training")


def check_run(meta: dict, target: str) -> None:
    """The finetuned model and the encoder it used were trained without the target dataset."""
    check_names(list(meta.get("source", [])), target)
    pre = meta.get("pretrain_run")
    if pre:
        info = Path(pre if Path(pre).is_dir() else Path(pre).parent) / "run.json"
        if info.is_file():
            datasets = json.loads(info.read_text()).get("datasets", [])
            if target in datasets:
                raise LeakageError(f"the encoder of this model was pretrained on {target!r} ({pre}): "
                                   f"target data entered pretraining")


def check_windows(source: WindowSet, target: WindowSet) -> None:
    """No shared subject ids and no window of identical content between source and target."""
    shared = sorted(set(source.subjects.tolist()) & set(target.subjects.tolist()))
    if shared:
        raise LeakageError(f"source and target share {len(shared)} subject(s), e.g. {shared[:3]}")
    if source.X.shape[1:] != target.X.shape[1:]:
        return
    hs = set(source.content_hashes().tolist())
    ht = target.content_hashes()
    dup = np.flatnonzero([h in hs for h in ht])
    if len(dup):
        raise LeakageError(f"{len(dup)} target window(s) of {target.dataset} are identical to source windows of "
                           f"{source.dataset} (e.g. target window {int(dup[0])}); the datasets overlap")
