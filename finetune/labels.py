"""Resolving what a finetuning run needs: its window config and label space."""

from __future__ import annotations

from crosshar.config import WindowConfig
from crosshar.data.labels import LabelSpace
from crosshar.data.store import prepare


def default_window(encoder_run: str | None, datasets: tuple[str, ...], data_dir) -> WindowConfig:
    """The pretraining run's window config, else the packaged default."""
    from crosshar import config as C

    if encoder_run is not None:
        from crosshar import checkpoint

        ck = checkpoint.load(encoder_run, "crosshar-pretrain/1", keys=("job",))
        with checkpoint.reading(encoder_run):
            return WindowConfig.from_dict(ck["job"]["window"])
    return C.load("window")


def source_classes(space: str, datasets: tuple[str, ...], window: WindowConfig, data_dir, on_bad: str = "error",
                   extra_label_sets: tuple[set, ...] = ()) -> tuple[str, ...]:
    """The named space intersected with the source datasets' pooled label set (and any extra sets).

    The sources' labels are pooled: a class that one source has at a finer level than another
    (UCI's upstairs/downstairs against WISDM's stairs) stays fine, and the windows with the
    coarser label are left out of the supervised part (they still feed pretraining).
    """
    pooled = set().union(*(set(prepare(d, data_dir, window, on_bad=on_bad).labels.tolist()) for d in datasets))
    return LabelSpace.named(space).intersect(pooled, *extra_label_sets).classes
