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


def test_a_gru_checkpoint_keeps_its_sub_windows_and_one_from_before_them_reads_the_whole_window(tmp_path):
    """LIMU-BERT's GRU head gained `chunk` (its 20-step sub-windows); the default, 0, is the head as it was, so a
    checkpoint without the option loads as one recurrence over the whole window, outputs unchanged, and one trained
    with sub-windows saves and reloads them."""
    from crosshar.models.heads import resolved_options

    now_cfg = resolved_options("gru", {})
    old_cfg = {k: v for k, v in now_cfg.items() if k != "chunk"}
    assert now_cfg["chunk"] == 0
    run, old = saved(tmp_path, "old", meta(head="gru") | {"head_cfg": old_cfg}, 0)
    loaded, m, _ = classifier.load_runs([run])
    assert loaded.head.chunk == 0 and m["head_cfg"] == old_cfg
    x = torch.randn(3, 120, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), old(x))
    run, sub = saved(tmp_path, "sub", meta(head="gru") | {"head_cfg": now_cfg | {"chunk": 20}}, 1)
    loaded, _, _ = classifier.load_runs([run])
    with torch.no_grad():
        assert loaded.head.chunk == 20 and torch.equal(loaded(x), sub(x))


def test_a_transformer_checkpoint_from_before_attn_dropout_keeps_its_attention_dropout():
    """Until `attn_dropout` was an option the transformer dropped its attention weights as much as the rest
    (`dropout`); a checkpoint's head_cfg without it rebuilds that way (what a finetuning that starts from it trains
    with), one that saved it keeps its own, and today's default is none."""
    from crosshar.models.heads import resolved_options, saved_options

    now_cfg = resolved_options("transformer", {})
    old_cfg = {k: v for k, v in now_cfg.items() if k != "attn_dropout"}
    assert now_cfg["attn_dropout"] == 0.0
    assert saved_options("transformer", old_cfg)["attn_dropout"] == 0.1 == old_cfg["dropout"]
    assert saved_options("transformer", old_cfg | {"dropout": 0.3})["attn_dropout"] == 0.3
    assert saved_options("transformer", now_cfg | {"attn_dropout": 0.2})["attn_dropout"] == 0.2
    assert classifier.build(meta(head="transformer") | {"head_cfg": old_cfg}).head.blocks[0].attn.dropout == 0.1
    assert classifier.build(meta(head="transformer") | {"head_cfg": now_cfg}).head.blocks[0].attn.dropout == 0.0
    assert saved_options("transformer", {}) == {}  # a model described, not trained: today's defaults


def test_a_transformer_checkpoint_from_before_token_kernel_loads_as_it_was_trained(tmp_path):
    """A checkpoint's head_cfg lists every option its head had; one written before `token_kernel` existed lacks it and
    was a Linear layer per time step (heads.BEFORE): it loads as such, weights and all. A checkpoint written now saves
    the option (resolved_options), so a later change of the default cannot change the model it describes."""
    from crosshar.models.heads import BEFORE, resolved_options

    now_cfg = resolved_options("transformer", {})
    old_cfg = {k: v for k, v in now_cfg.items() if k != "token_kernel"}
    assert now_cfg["token_kernel"] == 5 and BEFORE["transformer"]["token_kernel"] == 1
    run, old = saved(tmp_path, "old", meta(head="transformer") | {"head_cfg": old_cfg}, 0)
    loaded, m, _ = classifier.load_runs([run])
    assert isinstance(loaded.head.proj, torch.nn.Linear) and m["head_cfg"] == old_cfg
    x = torch.randn(3, 120, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), old(x))
    new = classifier.build(meta(head="transformer") | {"head_cfg": now_cfg})
    today = classifier.build(meta(head="transformer"))  # an empty head_cfg: a model described, today's defaults
    assert isinstance(new.head.proj, torch.nn.Conv1d) and isinstance(today.head.proj, torch.nn.Conv1d)
