"""Subject-wise splits: no subject ever has windows on both sides of a split."""

from __future__ import annotations

import numpy as np

from crosshar.errors import ConfigError



def subject_split(subjects: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Window indices (train, val) with a seeded split of the *subjects* (sklearn GroupShuffleSplit).

    Args:
        subjects: (N,) subject id of each window.
        val_fraction: fraction of subjects held out (at least one subject on each side).
    """
    uniq = np.unique(subjects)
    if len(uniq) < 2:
        raise ConfigError(f"a subject-wise split needs at least 2 subjects, got {len(uniq)}")
    n_val = min(max(1, int(round(val_fraction * len(uniq)))), len(uniq) - 1)
    from sklearn.model_selection import GroupShuffleSplit

    gss = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    tr, va = next(gss.split(np.zeros(len(subjects)), groups=subjects))
    return np.sort(tr), np.sort(va)


def label_subset(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Indices of a stratified, seeded fraction `rate` of the windows that keep their labels.

    Every class keeps at least one window (so that a 1 % label rate still sees each class).
    """
    idx = np.arange(len(y))
    if rate >= 1.0:
        return idx
    classes = np.unique(y)
    n_keep = max(int(round(rate * len(y))), len(classes))
    if n_keep >= len(y):
        return idx
    try:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(idx, train_size=n_keep, stratify=y, random_state=seed)
    except ValueError:  # a class with a single window cannot be stratified
        rng = np.random.default_rng(seed)
        keep = np.concatenate([rng.choice(idx[y == c], max(1, int(round(rate * (y == c).sum()))), replace=False)
                               for c in classes])
    # a split of fewer windows than twice the classes rounds a small class's share down to none: one window each
    missing = np.setdiff1d(classes, y[keep])
    if len(missing):
        rng = np.random.default_rng(seed)
        keep = np.concatenate([keep, [rng.choice(idx[y == c]) for c in missing]])
    return np.sort(keep)
