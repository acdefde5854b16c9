"""crosshar.models.classifier: several finetuned runs loaded as one model whose probabilities are their mean."""

from __future__ import annotations

import pytest
import torch

from crosshar.config import WindowConfig
from crosshar.errors import CrossharError
from crosshar.models import classifier

CLASSES = ["walking", "upstairs", "downstairs", "sitting&standing"]


def meta(classes=CLASSES, head: str = "linear") -> dict:
    return {"window": WindowConfig().to_dict(), "channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
            "classes": list(classes), "label_space": "crosshar4", "encoder": None, "head": head, "head_cfg": {},
            "scaling": "physical", "frame": "gravity", "source": ["uci"]}


def saved(tmp_path, name: str, m: dict, seed: int):
    torch.manual_seed(seed)
    model = classifier.build(m)
    classifier.save(tmp_path / name / "best.pt", model, m)
    return tmp_path / name, model.eval()


def test_load_runs_averages_the_runs_probabilities(tmp_path):
    (ra, a), (rb, b) = saved(tmp_path, "a", meta(), 0), saved(tmp_path, "b", meta(), 1)
    model, m, metas = classifier.load_runs([ra, rb])
    assert isinstance(model, classifier.ModelEnsemble) and not model.training
    assert m["head"] == "linear+linear" and m["ensemble_runs"] == [str(ra), str(rb)] and len(metas) == 2
    x = torch.randn(5, 120, 6)
    x[..., 2] += 9.8
    with torch.no_grad():
        want = (torch.softmax(a(x), 1) + torch.softmax(b(x), 1)) / 2
        assert torch.allclose(torch.softmax(model(x), 1), want, atol=1e-6)
    single, m1, _ = classifier.load_runs([ra])  # one run: the run itself
    assert isinstance(single, classifier.HARClassifier) and "ensemble_runs" not in m1


def test_load_runs_refuses_runs_that_predict_other_classes(tmp_path):
    ra, _ = saved(tmp_path, "a", meta(), 0)
    rb, _ = saved(tmp_path, "b", meta(CLASSES[::-1]), 1)
    with pytest.raises(CrossharError, match=r"b: its classes .* differs from .*a's"):
        classifier.load_runs([ra, rb])
