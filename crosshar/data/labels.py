"""One canonical activity vocabulary with a hierarchy, and label spaces built on it.

Two datasets rarely share label sets: WISDM has "stairs" where UCI has upstairs and downstairs;
CrossHAR merges sitting and standing. A `LabelSpace` is a list of classes, each a node of the
hierarchy; a fine label maps to the class that is itself or one of its ancestors. Intersecting a
space with the datasets' label sets merges classes up the hierarchy where a dataset only has the
parent (WISDM's "stairs" absorbs upstairs and downstairs) and drops classes a dataset lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from crosshar.errors import ConfigError

# child -> parent. Nodes without a parent are roots.
PARENT: dict[str, str] = {
    "upstairs": "stairs",
    "downstairs": "stairs",
    "sitting": "sitting&standing",
    "standing": "sitting&standing",
    "jogging": "running",
    "sit_to_stand": "transition",
    "stand_to_sit": "transition",
    "sit_to_lie": "transition",
    "lie_to_sit": "transition",
    "stand_to_lie": "transition",
    "lie_to_stand": "transition",
    "walking_left": "walking",  # USC-HAD: a full circle, counter-clockwise
    "walking_right": "walking",  # USC-HAD: a full circle, clockwise
    "rope_jumping": "jumping",
    "elevator_up": "elevator",
    "elevator_down": "elevator",
}

VOCAB: tuple[str, ...] = (
    "walking", "upstairs", "downstairs", "stairs", "sitting", "standing", "sitting&standing",
    "lying", "jogging", "running", "biking", "transition", "sit_to_stand", "stand_to_sit",
    "sit_to_lie", "lie_to_sit", "stand_to_lie", "lie_to_stand", "badminton", "typing",
    "brushing_teeth", "eating_soup", "eating_chips", "eating_pasta", "drinking",
    "eating_sandwich", "kicking", "catching", "dribbling", "writing", "clapping", "folding",
    "nordic_walking", "watching_tv", "computer_work", "car_driving", "vacuum_cleaning", "ironing",
    "house_cleaning", "playing_soccer", "jumping", "rope_jumping", "walking_left", "walking_right",
    "elevator", "elevator_up", "elevator_down",
)

# Named label spaces; more can be given in configs as lists of vocabulary nodes.
SPACES: dict[str, tuple[str, ...]] = {
    "crosshar4": ("walking", "upstairs", "downstairs", "sitting&standing"),
    "locomotion6": ("walking", "upstairs", "downstairs", "sitting", "standing", "lying"),
    "hhar6": ("biking", "sitting", "standing", "walking", "upstairs", "downstairs"),
    "basic4": ("standing", "running", "walking", "badminton"),
}


def check_label(name: str) -> str:
    if name not in VOCAB:
        raise ConfigError(f"unknown activity {name!r}; the canonical vocabulary is: {', '.join(VOCAB)}")
    return name


def ancestors(name: str) -> list[str]:
    """[name, parent, grandparent, ...]."""
    out = [name]
    while out[-1] in PARENT:
        out.append(PARENT[out[-1]])
    return out


def is_under(label: str, node: str) -> bool:
    """True when `label` is `node` or one of its descendants."""
    return node in ancestors(label)


@dataclass(frozen=True)
class LabelSpace:
    """An ordered set of classes, each a vocabulary node; fine labels map to the covering class."""

    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        for c in self.classes:
            check_label(c)
        for a in self.classes:
            for b in self.classes:
                if a != b and is_under(a, b):
                    raise ConfigError(f"label space {self.name!r}: {a!r} lies under {b!r}; classes must not nest")

    @classmethod
    def named(cls, name: str | Sequence[str]) -> "LabelSpace":
        if not isinstance(name, str):
            return cls(tuple(name), "custom")
        if name not in SPACES:
            raise ConfigError(f"unknown label space {name!r}; known: {', '.join(SPACES)}")
        return cls(SPACES[name], name)

    def __len__(self) -> int:
        return len(self.classes)

    def class_of(self, label: str) -> int:
        """Index of the class covering `label`, or -1 when no class covers it."""
        for i, c in enumerate(self.classes):
            if is_under(label, c):
                return i
        return -1

    def covered(self, label: str) -> tuple[int, ...]:
        """Indices of the classes lying under `label` when it is coarser than them (WISDM's "stairs"
        over upstairs and downstairs); () when a class covers `label` or nothing lies under it."""
        if not label or self.class_of(label) >= 0:
            return ()
        return tuple(i for i, c in enumerate(self.classes) if is_under(c, label))

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        """(n,) int64 class indices, -1 for labels outside the space."""
        labels = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
        uniq, inv = np.unique(labels, return_inverse=True)
        codes = np.array([self.class_of(u) if u else -1 for u in uniq], dtype=np.int64)
        return codes[inv.reshape(-1)]

    def project_to(self, coarser: "LabelSpace") -> np.ndarray:
        """(len(self),) map from this space's class indices to `coarser`'s (-1 where none).

        Used at evaluation: a model trained on upstairs/downstairs is scored on WISDM's "stairs"
        by mapping both predictions to stairs.
        """
        return np.array([coarser.class_of(c) for c in self.classes], dtype=np.int64)

    def intersect(self, *label_sets: Iterable[str]) -> "LabelSpace":
        """The coarsest-needed space that every dataset (given by its fine label set) supports.

        A class is merged into its ancestor when some dataset has only the ancestor (or a sibling
        branch of it); a class is dropped when some dataset has nothing under or above it.
        """
        classes = list(self.classes)
        sets = [set(s) - {""} for s in label_sets]
        changed = True
        while changed:
            changed = False
            for labels in sets:
                for c in list(classes):
                    if c not in classes:
                        continue
                    if any(is_under(lab, c) for lab in labels):
                        continue
                    # the dataset may hold an ancestor of c: merge c's whole family into it
                    anc = next((a for a in ancestors(c)[1:] if a in labels), None)
                    if anc is not None:
                        classes = [k for k in classes if not is_under(k, anc)]
                        classes.append(anc)
                        changed = True
        keep = [c for c in classes if all(any(is_under(lab, c) or is_under(c, lab) for lab in s) for s in sets)]
        # keep vocabulary order for stable indices
        keep = sorted(set(keep), key=lambda c: (min((self.classes.index(k) for k in self.classes if is_under(k, c)), default=99), VOCAB.index(c)))
        if not keep:
            raise ConfigError(f"label space {self.name!r} has no class in common with the datasets")
        return LabelSpace(tuple(keep), f"{self.name}∩" if self.name else "")
