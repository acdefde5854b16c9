"""Classification metrics, delegated to scikit-learn and imbalanced-learn."""

from __future__ import annotations

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro/weighted F1, G-mean, per-class precision/recall/F1/support and the confusion matrix.

    Classes are indexed 0..K-1 in `class_names`; classes absent from y_true still get a row.
    """
    from imblearn.metrics import geometric_mean_score  # scikit-learn and imbalanced-learn import in seconds:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support  # only here

    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [c for c in labels if (y_true == c).any()]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "gmean": float(geometric_mean_score(y_true, y_pred, labels=present, average="multiclass")),
        "classes": list(class_names),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def by_group(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], groups: np.ndarray) -> dict[str, dict]:
    """classification_report of each group's windows (groups: (N,) str, e.g. each window's body position or
    device), keyed by group in sorted order; macro-F1 over the classes present in that group."""
    return {str(g): classification_report(y_true[groups == g], y_pred[groups == g], class_names)
            for g in np.unique(groups)}
