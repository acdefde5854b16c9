"""Source data for training (one or several prepared datasets, split by subject) and what a target
dataset asks of a source model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosshar import config
from crosshar.config import WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.splits import subject_split
from crosshar.data.store import prepare, resolve, split_position
from crosshar.data.windows import WindowSet
from crosshar.errors import DataError


def concat(sets: list[WindowSet]) -> WindowSet:
    """Stack window sets that share one WindowConfig."""
    cfg = sets[0].config
    for s in sets[1:]:
        if s.config != cfg:
            raise ValueError(f"cannot stack windows of {sets[0].dataset} ({cfg}) and {s.dataset} ({s.config})")
    return WindowSet(
        np.concatenate([s.X for s in sets]), np.concatenate([s.labels for s in sets]),
        np.concatenate([s.subjects for s in sets]), np.concatenate([s.sessions for s in sets]),
        "+".join(s.dataset for s in sets), cfg, {s.dataset: s.manifest for s in sets},
        np.concatenate([s.datasets for s in sets]),
    )


def load_sources(names: list[str], data_dir: str | Path | None, wcfg: WindowConfig | None,
                 on_bad: str = "error") -> WindowSet:
    return concat([prepare(n, data_dir, wcfg, on_bad=on_bad) for n in names])


def in_label_space(ws: WindowSet, space: str) -> WindowSet:
    """The windows of `ws` whose activity lies in the named label space `space` (a class covers it, or it is
    coarser than a class: WISDM's "stairs" under upstairs and downstairs); unlabelled windows and the other
    activities (WISDM's eating, typing, ...) are left out. "" returns `ws` whole.

    Raises ConfigError for an unknown space, DataError when no window is left.
    """
    if not space:
        return ws
    ls = LabelSpace.named(space)
    names = np.unique(ws.labels)
    keep = {n for n in names.tolist() if n and (ls.class_of(n) >= 0 or ls.covered(n))}
    idx = np.flatnonzero(np.isin(ws.labels, sorted(keep)))
    if not len(idx):
        raise DataError(f"{ws.dataset}: no window lies in label space {space!r} ({', '.join(ls.classes)}); "
                        f"its activities: {', '.join(n for n in names.tolist() if n) or 'none'}")
    return ws.subset(idx)


def split_by_subject(ws: WindowSet, val_fraction: float, seed: int) -> tuple[WindowSet, WindowSet, dict]:
    """(train, val, split record). Each dataset is split separately so every source has val subjects; two body
    positions of one dataset (pamap2@chest, pamap2@wrist: the same people) are split as one dataset, so that no
    subject is on both sides."""
    tr_idx, va_idx = [], []
    names, inverse = np.unique(ws.datasets, return_inverse=True)
    datasets = np.array([str(split_position(n)[0]) for n in names.tolist()])[inverse.reshape(-1)]
    for d in np.unique(datasets):
        idx = np.flatnonzero(datasets == d)
        tr, va = subject_split(ws.subjects[idx], val_fraction, seed)
        tr_idx.append(idx[tr])
        va_idx.append(idx[va])
    tr_i, va_i = np.sort(np.concatenate(tr_idx)), np.sort(np.concatenate(va_idx))
    split = {"seed": seed, "val_fraction": val_fraction,
             "train_subjects": sorted(set(ws.subjects[tr_i].tolist())),
             "val_subjects": sorted(set(ws.subjects[va_i].tolist()))}
    return ws.subset(tr_i), ws.subset(va_i), split


def apply_split(ws: WindowSet, split: dict) -> tuple[WindowSet, WindowSet]:
    """Re-use a recorded split (e.g. the pretraining run's) so validation subjects stay held out."""
    return ws.by_subjects(split["train_subjects"]), ws.by_subjects(split["val_subjects"])


def for_sources(window: WindowConfig, datasets: tuple[str, ...] | list[str], data_dir) -> WindowConfig:
    """`window` with acc-only channels when a source has no gyroscope (as `crosshar data prepare` chooses):
    accelerometer-only data trains without a window config of its own. A source that cannot be found is left to
    the step that reads it (its error names the layout)."""
    from crosshar.errors import MissingDataError

    if window.channels != "acc+gyro":
        return window
    try:
        gyro = all(target_has_gyro(d, data_dir) for d in datasets)
    except MissingDataError:
        return window
    return window if gyro else window.replace(channels="acc")


def target_window(target: str, data_dir) -> WindowConfig | None:
    """The target's fixed window profile (pre-windowed data such as hhar_sa_adatime), or None."""
    r = resolve(target, data_dir)
    return r.dataset.profile(r.folder)


def target_has_gyro(target: str, data_dir) -> bool:
    return resolve(target, data_dir).has_gyro()


def target_needs(target: str, data_dir) -> WindowConfig | None:
    """The window config a source model must use to be scored on `target`: its fixed profile
    (pre-windowed data), acc-only windows when it has no gyroscope, else None (any model fits)."""
    need = target_window(target, data_dir)
    if need is None and not target_has_gyro(target, data_dir):
        need = config.load("window", channels="acc")
    return need
