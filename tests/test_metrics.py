"""crosshar.metrics.classification_report against scikit-learn and imbalanced-learn on fixed
predictions."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from crosshar.metrics import by_group, classification_report

NAMES = ["walking", "stairs", "sitting&standing"]
Y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
P = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 0, 2])


def test_equals_sklearn_and_imblearn():
    r = classification_report(Y, P, NAMES)
    assert r["n"] == 12 and r["classes"] == NAMES
    assert r["accuracy"] == pytest.approx(accuracy_score(Y, P)) == pytest.approx(8 / 12)
    assert r["macro_f1"] == pytest.approx(f1_score(Y, P, average="macro"))
    assert r["weighted_f1"] == pytest.approx(f1_score(Y, P, average="weighted"))
    assert r["gmean"] == pytest.approx(geometric_mean_score(Y, P, average="multiclass"))
    assert r["confusion"] == confusion_matrix(Y, P).tolist() == [[2, 1, 1], [1, 2, 0], [1, 0, 4]]
    prec, rec, f1 = (fn(Y, P, average=None) for fn in (precision_score, recall_score, f1_score))
    for i, name in enumerate(NAMES):
        pc = r["per_class"][name]
        assert (pc["precision"], pc["recall"], pc["f1"]) == pytest.approx((prec[i], rec[i], f1[i]))
        assert pc["support"] == int((Y == i).sum())


def test_a_class_absent_from_the_truth_keeps_its_row_but_not_the_averages():
    """A class the evaluated windows lack (e.g. predicted, never true) gets a confusion row and
    column, while macro-F1 averages over the classes that are present, as sklearn does with labels=present."""
    names = NAMES + ["lying"]
    y = Y.copy()
    p = P.copy()
    p[0] = 3  # one prediction of the absent class
    r = classification_report(y, p, names)
    present = [0, 1, 2]
    assert r["macro_f1"] == pytest.approx(f1_score(y, p, labels=present, average="macro", zero_division=0))
    assert r["weighted_f1"] == pytest.approx(f1_score(y, p, labels=present, average="weighted", zero_division=0))
    assert r["accuracy"] == pytest.approx(accuracy_score(y, p))
    cm = np.array(r["confusion"])
    assert cm.shape == (4, 4) and cm[0, 3] == 1 and cm[3].sum() == 0
    assert r["per_class"]["lying"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_perfect_and_constant_predictions():
    r = classification_report(Y, Y, NAMES)
    assert r["accuracy"] == r["macro_f1"] == r["gmean"] == 1.0
    r = classification_report(Y, np.zeros_like(Y), NAMES)
    assert r["accuracy"] == pytest.approx(4 / 12)
    assert r["gmean"] == pytest.approx(0.0)  # a class never recalled zeroes the G-mean
    assert r["macro_f1"] == pytest.approx(f1_score(Y, np.zeros_like(Y), average="macro", zero_division=0))


def test_by_group_is_each_groups_own_report():
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 0])
    groups = np.array(["b", "a", "a", "b", "b"])
    out = by_group(y, p, ["x", "y"], groups)
    assert list(out) == ["a", "b"]
    for g, rep in out.items():
        assert rep == classification_report(y[groups == g], p[groups == g], ["x", "y"])
    assert out["a"]["n"] == 2 and out["b"]["accuracy"] == pytest.approx(2 / 3)
