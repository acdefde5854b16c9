"""crosshar.inference: test-time views (`predict_tta`) and the augmentation a run was finetuned with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from crosshar import inference
from crosshar.config import AugmentConfig, WindowConfig
from crosshar.errors import CrossharError
from crosshar.models import classifier

CLASSES = ["walking", "upstairs", "downstairs", "sitting&standing"]
IDENTITY = AugmentConfig(**{f: 0.0 for f in ("rotation_p", "mirror_p", "tilt_deg", "gain_std", "bias_acc", "bias_gyro",
                                              "noise_acc", "noise_gyro", "cadence", "body_amplitude")})


def meta(**extra) -> dict:
    return {"window": WindowConfig().to_dict(), "channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
            "classes": CLASSES, "label_space": "crosshar4", "encoder": None, "head": "linear", "head_cfg": {},
            "scaling": "physical", "frame": "gravity", "source": ["uci"], **extra}


def model_and_windows(n: int = 40):
    torch.manual_seed(0)
    model = classifier.build(meta()).eval()
    rng = np.random.default_rng(0)
    X = rng.normal(0, 2.0, (n, 120, 6)).astype(np.float32)
    X[..., 2] += 9.8
    return model, X


def test_the_identity_augmentation_leaves_the_prediction_as_it_was():
    """Views that change nothing average to the window's own probabilities (log-softmax of its logits)."""
    from crosshar.augment import enabled_steps

    assert enabled_steps(IDENTITY) == []
    model, X = model_and_windows()
    want = torch.log_softmax(torch.from_numpy(inference.predict(model, X)), 1).numpy()
    for views in (0, 3):
        got = inference.predict_tta(model, X, IDENTITY, views, batch=16)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_views_average_the_probabilities_and_are_reproducible():
    model, X = model_and_windows()
    aug = AugmentConfig()  # the default finetuning draws: turns, mirror, amplitude, cadence, calibration, noise
    a = inference.predict_tta(model, X, aug, 4, seed=1, batch=16)
    np.testing.assert_allclose(np.exp(a).sum(1), 1.0, atol=1e-5)  # log of a probability distribution
    np.testing.assert_array_equal(a, inference.predict_tta(model, X, aug, 4, seed=1, batch=16))
    assert not np.allclose(a, inference.predict_tta(model, X, aug, 4, seed=2, batch=16))
    clean = inference.predict_tta(model, X, aug, 0)
    assert np.abs(a - clean).max() > 1e-3  # the views were really drawn

    # the average, by hand: the window and each view, drawn batch after batch from one generator
    from crosshar.augment import Augmenter

    g, au, p = torch.Generator().manual_seed(1), Augmenter(aug, 6, 20.0), []
    with torch.no_grad():
        for i in range(0, len(X), 16):
            x = torch.from_numpy(X[i:i + 16])
            q = torch.softmax(model(x), 1)
            for _ in range(4):
                q += torch.softmax(model(au(x, g)), 1)
            p.append(q / 5)
    np.testing.assert_allclose(a, torch.log(torch.cat(p)).numpy(), atol=1e-5)


def test_negative_views_and_empty_input():
    model, X = model_and_windows(3)
    with pytest.raises(CrossharError, match="views must be >= 0"):
        inference.predict_tta(model, X, IDENTITY, -1)
    assert inference.predict_tta(model, X[:0], IDENTITY, 2).shape == (0, len(CLASSES))


def test_run_augment_reads_the_meta_then_the_run_json_beside_the_checkpoint(tmp_path):
    cfg = AugmentConfig(mount=0.5)
    assert inference.run_augment(meta(augment=cfg.to_dict())) == cfg
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"configs": {"augment": AugmentConfig(mirror_p=0.25).to_dict()}}))
    assert inference.run_augment(meta(), run).mirror_p == 0.25  # a run finetuned before the meta held it
    assert inference.run_augment(meta(), run / "best.pt").mirror_p == 0.25
    with pytest.raises(CrossharError, match="finetuning augmentation is not recorded"):
        inference.run_augment(meta(), tmp_path / "elsewhere")


def test_views_of_the_motion_leave_the_devices_orientation_alone():
    aug = AugmentConfig(yaw_deg=30.0, tilt_deg=5.0, axis_permute_p=0.5, mount=0.5)
    motion = inference.view_augment(aug, "motion")
    assert (motion.rotation_p, motion.axis_permute_p, motion.mirror_p, motion.yaw_deg, motion.tilt_deg) == (0, 0, 0, 0, 0)
    assert motion.replace(**{f: getattr(aug, f) for f in ("rotation_p", "axis_permute_p", "mirror_p", "yaw_deg",
                                                           "tilt_deg")}) == aug  # nothing else changed
    assert inference.view_augment(aug, "all") == aug
    with pytest.raises(CrossharError, match="test-time views must be one of"):
        inference.view_augment(aug, "sideways")
    # views that only turn and mirror the device: with kind "motion" they are the window itself
    model, X = model_and_windows()
    turns = IDENTITY.replace(rotation_p=1.0, mirror_p=0.5, tilt_deg=5.0)
    clean = inference.predict_tta(model, X, turns, 0)
    np.testing.assert_allclose(inference.predict_tta(model, X, turns, 3, kind="motion"), clean, atol=1e-5)
    assert np.abs(inference.predict_tta(model, X, turns, 3) - clean).max() > 1e-3


def test_a_mirror_view_is_the_mirror_image_alone_and_makes_a_vertical_frame_model_blind_to_handedness():
    from crosshar.augment import Augmenter

    aug = AugmentConfig(mount=0.5, turn=0.3, yaw_deg=30.0, mirror_plane="device")
    m = inference.view_augment(aug, "mirror")
    assert m.mirror_p == 1.0 and m.mirror_plane == "device"
    assert [n for n, _ in Augmenter(m, 6).steps] == ["mirror"]  # nothing but the mirror image
    # in the vertical frame, a window scored with its mirror image and that mirror image scored with its own agree:
    # the prediction no longer depends on handedness (scored alone, they differ)
    _, X = model_and_windows()
    torch.manual_seed(0)
    model = classifier.build(meta(frame="vertical", head="din", head_cfg={"dim": 16, "depth": 1})).eval()
    Xm = Augmenter(inference.view_augment(AugmentConfig(), "mirror"), 6)(torch.from_numpy(X), torch.Generator()).numpy()
    a = inference.predict_tta(model, X, AugmentConfig(), 1, kind="mirror")
    b = inference.predict_tta(model, Xm, AugmentConfig(), 1, kind="mirror")
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(inference.predict_tta(model, X, AugmentConfig(), 0) - inference.predict_tta(model, Xm, AugmentConfig(), 0)).max() > 1e-4


@pytest.mark.parametrize("kind,steps", [("mount", ["mount"]), ("amplitude", ["body_amplitude"]),
                                        ("cadence", ["time_warp"]), ("sensor", ["gain_bias", "noise"])])
def test_a_single_augmentation_view_draws_that_augmentation_alone_as_the_run_had_it(kind, steps):
    from crosshar.augment import Augmenter

    aug = AugmentConfig(mount=0.5, body_amplitude=1.5, cadence=0.1, yaw_deg=30.0)
    v = inference.view_augment(aug, kind)
    assert [n for n, _ in Augmenter(v, 6).steps] == steps
    for f in inference.VIEW_FIELDS[kind]:
        assert getattr(v, f) == getattr(aug, f)


def test_the_inference_batch_is_small_on_a_cpu_and_large_on_an_accelerator():
    assert inference.infer_batch("cpu") == inference.CPU_INFER_BATCH < inference.ACCEL_INFER_BATCH
    assert inference.infer_batch(torch.device("cuda")) == inference.infer_batch("meta") == inference.ACCEL_INFER_BATCH


def test_predictions_do_not_depend_on_the_inference_batch():
    """The batch is a speed choice only: every window is predicted alone, so any batch gives the same
    logits (to float rounding), the same classes, and `in_batches` covers every window exactly once."""
    b = inference.CPU_INFER_BATCH
    model, X = model_and_windows(2 * b + 11)
    seen = []
    out = inference.in_batches(lambda x: seen.append(len(x)) or x.sum((1, 2)), X, torch.device("cpu"))
    assert seen == [b, b, 11] and torch.cat(out).shape == (len(X),)
    ref = inference.predict(model, X, batch=512)
    for b in (None, 1, 7, 32):
        got = inference.predict(model, X, batch=b)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
        assert (got.argmax(1) == ref.argmax(1)).all()


def test_scores_split_by_the_targets_body_positions_and_devices():
    """score_groups splits score's windows (those in the label space, in order) by their recordings' position
    and device, for each that takes more than one value; each group's report is its windows' own."""
    from crosshar.data.labels import LabelSpace
    from crosshar.data.windows import WindowSet

    labels = np.array(["walking", "jogging", "upstairs", "walking", "sitting", "walking"])
    sessions = np.array(["p1", "p1", "p1", "w1", "w1", "w2"])
    ws = WindowSet(np.zeros((6, 4, 6), np.float32), labels, np.array(["s"] * 6), sessions, "x", WindowConfig(),
                   manifest={"recordings": {"p1": {"position": "pocket", "device": "s2"},
                                            "w1": {"position": "wrist", "device": "s2"},
                                            "w2": {"position": "wrist", "device": "s2"}}})
    space = LabelSpace(("walking", "upstairs", "sitting"))
    y = space.encode(labels[space.encode(labels) >= 0])  # jogging is outside the space: 5 windows scored
    pred = np.array([0, 0, 0, 2, 1])  # pocket: walking right, upstairs wrong; wrist: all right but the last
    out = inference.score_groups(ws, space, y, pred)
    assert list(out) == ["by_position"]  # one device: no split by device
    pocket, wrist = out["by_position"]["pocket"], out["by_position"]["wrist"]
    assert (pocket["n"], wrist["n"]) == (2, 3)
    assert pocket["accuracy"] == 0.5 and wrist["accuracy"] == pytest.approx(2 / 3)
    assert pocket["per_class"]["upstairs"]["support"] == 1 and wrist["per_class"]["upstairs"]["support"] == 0
    ws.manifest = {}
    assert inference.score_groups(ws, space, y, pred) == {}


def test_a_model_giving_non_finite_scores_is_an_error_not_a_score():
    """A NaN in the weights (a damaged checkpoint) made every logit NaN; argmax read them as class 0 and `cross`
    printed accuracy and macro-F1 as if measured. Now score names the model and scores nothing; the zero
    probabilities of test-time views (log = -inf for some classes) still score."""
    from crosshar.data.windows import WindowSet

    model, X = model_and_windows(8)
    labels = np.array(["walking", "upstairs", "downstairs", "sitting"] * 2)
    ws = WindowSet(X, labels, np.array(["s"] * 8), np.array(["r"] * 8), "target", WindowConfig())
    rep, *_ = inference.score(model, meta(), ws)
    assert rep["n"] == 8
    with torch.no_grad():
        model.head.fc.bias[1] = float("nan")
    with pytest.raises(CrossharError, match=r"^runs/x gives non-finite class scores for 8 of 8 windows of target "
                                            r"\(the first: window 0\)"):
        inference.score(model, meta(), ws, name="runs/x")
    logp = np.tile([[np.log(0.7), np.log(0.3), -np.inf, -np.inf]], (8, 1))  # log 0 where a class has probability 0
    rep, _, pred, _ = inference.score(None, meta(), ws, logits_fn=lambda _: logp)
    assert (pred == 0).all()
    for bad in (np.full((8, 4), -np.inf), np.where(np.eye(8, 4) > 0, np.inf, 0.0)):
        with pytest.raises(CrossharError, match="the model gives non-finite class scores"):
            inference.score(None, meta(), ws, logits_fn=lambda _, b=bad: b)


@pytest.mark.parametrize("cached", [False, True], ids=["windows", "features"])
def test_evaluate_counts_the_windows_whose_scores_are_not_finite(cached):
    """Finetuning keeps a model only if its validation scores are finite: evaluate counts the windows that are not
    (from the same scores it reports), so the check does not score the windows a second time."""
    model, X = model_and_windows(6)
    y = np.array([0, 1, 2, 3, 0, 1])
    feats = inference.encode(model, X) if cached else None
    assert inference.evaluate(model, X, y, CLASSES, feats=feats)["nonfinite"] == 0
    with torch.no_grad():
        model.head.fc.bias[2] = float("nan")
    rep = inference.evaluate(model, X, y, CLASSES, feats=feats)
    assert rep["nonfinite"] == 6 and rep["n"] == 6


def test_nonfinite_rows_leave_zero_probabilities_alone():
    logits = np.array([[0.0, -np.inf], [np.nan, 0.0], [np.inf, 0.0], [-np.inf, -np.inf], [1.0, 2.0]])
    assert inference.nonfinite_rows(logits).tolist() == [False, True, True, True, False]
