"""The input frames: gravity-aligned (tilt factored out) and heading-aligned (tilt and heading)."""

from __future__ import annotations

import math

import pytest
import torch

from crosshar.augment import random_rotation_matrices
from crosshar.models.frame import (
    coupled_align, gravity_align, heading_align, orientation, so3_exp, vertical_align, world_align, world_vertical_align,
)
from crosshar.models.scaling import InputScaler


def walking(b: int = 6, t: int = 120, seed: int = 0) -> torch.Tensor:
    """Windows with gravity in a random device direction and a skewed forward/back sway."""
    g = torch.Generator().manual_seed(seed)
    time = torch.arange(t) / 20.0
    up = torch.nn.functional.normalize(torch.randn(b, 3, generator=g), dim=-1)
    fwd = torch.nn.functional.normalize(torch.linalg.cross(up, torch.randn(b, 3, generator=g)), dim=-1)
    side = torch.linalg.cross(up, fwd)
    sway = torch.sin(2 * math.pi * 1.8 * time) + 0.6 * torch.sin(4 * math.pi * 1.8 * time + 0.4)  # skewed
    acc = 9.81 * up[:, None] + 2.0 * sway[None, :, None] * fwd[:, None] + 0.5 * torch.cos(2 * math.pi * 0.9 * time)[None, :, None] * side[:, None]
    gyro = 1.5 * torch.sin(2 * math.pi * 0.9 * time)[None, :, None] * up[:, None] + 0.4 * sway[None, :, None] * side[:, None]
    return torch.cat([acc, gyro], dim=-1)


def rotate(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[..., :3] @ r.transpose(1, 2), x[..., 3:] @ r.transpose(1, 2)], dim=-1)


def test_gravity_frame_puts_mean_acc_on_plus_z_with_one_rotation_for_both_sensors():
    x = walking()
    y = gravity_align(x)
    mean = y[..., :3].mean(1)
    torch.testing.assert_close(mean[:, :2], torch.zeros(6, 2), atol=1e-4, rtol=0)
    assert (mean[:, 2] > 9.7).all()
    torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))


def test_heading_frame_is_invariant_to_any_device_orientation():
    x = walking(b=8)
    ref = heading_align(x)
    turned = heading_align(rotate(x, random_rotation_matrices(8, torch.Generator().manual_seed(1))))
    torch.testing.assert_close(turned, ref, atol=2e-3, rtol=1e-3)
    # the gravity frame alone is not: it leaves the heading free
    g1, g2 = gravity_align(x), gravity_align(rotate(x, random_rotation_matrices(8, torch.Generator().manual_seed(1))))
    assert (g1 - g2).abs().max() > 0.5
    # main horizontal motion on +x, positively skewed; mean acc on +z
    h = ref[..., :2] - ref[..., :2].mean(1, keepdim=True)
    assert (h[..., 0].pow(2).mean(1) > h[..., 1].pow(2).mean(1)).all()
    assert (h[..., 0].pow(3).mean(1) > 0).all()


def test_heading_frame_of_a_mirror_image_is_the_mirror_image_in_y():
    """What the heading frame cannot remove is handedness: a mirrored window comes out with y (and
    the gyro's axial parts) flipped, which is why the mirror augmentation stays needed."""
    x = walking(b=4)
    n = torch.tensor([0.3, -0.5, 0.2])
    n = n / n.norm()
    m = (torch.eye(3) - 2 * torch.outer(n, n)).expand(4, 3, 3)
    mirrored = torch.cat([x[..., :3] @ m.transpose(1, 2), -(x[..., 3:] @ m.transpose(1, 2))], dim=-1)
    a, b = heading_align(x), heading_align(mirrored)
    flip = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])  # acc y; gyro x and z (axial)
    torch.testing.assert_close(b, a * flip, atol=2e-3, rtol=1e-3)


def test_vertical_frame_keeps_only_horizontal_magnitude_and_vertical_part():
    """Any device orientation gives the same vertical frame; a mirror image changes only the sign of the
    vertical gyro (an axial vector), and the channels are what the gravity frame holds, regrouped."""
    x = walking(b=8)
    ref = vertical_align(x)
    assert ref.shape == x.shape
    turned = vertical_align(rotate(x, random_rotation_matrices(8, torch.Generator().manual_seed(2))))
    torch.testing.assert_close(turned, ref, atol=2e-3, rtol=1e-3)
    g = gravity_align(x)
    torch.testing.assert_close(ref[..., 0], g[..., :2].norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref[..., 5], g[..., 5])
    assert (ref[..., [1, 4]] == 0).all() and (ref[..., [0, 3]] >= 0).all()
    n = torch.nn.functional.normalize(torch.tensor([0.3, -0.5, 0.2]), dim=0)
    m = (torch.eye(3) - 2 * torch.outer(n, n)).expand(8, 3, 3)
    mirrored = torch.cat([x[..., :3] @ m.transpose(1, 2), -(x[..., 3:] @ m.transpose(1, 2))], dim=-1)
    flip = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    torch.testing.assert_close(vertical_align(mirrored), ref * flip, atol=2e-3, rtol=1e-3)


def test_coupled_frame_adds_the_horizontal_products_no_turn_changes():
    """The coupled frame is the vertical frame with (a_h x w_h)_z and (a_h . w_h) / g in its zero channels:
    the same for any device orientation; a mirror image keeps the cross product (polar x axial) and flips
    the dot product's sign with the vertical gyro's; acc-only windows get the plain vertical frame."""
    x = walking(b=8)
    ref = coupled_align(x)
    turned = coupled_align(rotate(x, random_rotation_matrices(8, torch.Generator().manual_seed(3))))
    torch.testing.assert_close(turned, ref, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(ref[..., [0, 2, 3, 5]], vertical_align(x)[..., [0, 2, 3, 5]])
    g = gravity_align(x)
    a, w = g[..., :2], g[..., 3:5]
    torch.testing.assert_close(ref[..., 1], a[..., 0] * w[..., 1] - a[..., 1] * w[..., 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref[..., 4], (a * w).sum(-1) / 9.80665, atol=1e-5, rtol=1e-5)
    assert ref[..., 1].abs().max() > 0.1 and ref[..., 4].abs().max() > 0.01  # the walking windows couple
    n = torch.nn.functional.normalize(torch.tensor([0.3, -0.5, 0.2]), dim=0)
    m = (torch.eye(3) - 2 * torch.outer(n, n)).expand(8, 3, 3)
    mirrored = torch.cat([x[..., :3] @ m.transpose(1, 2), -(x[..., 3:] @ m.transpose(1, 2))], dim=-1)
    flip = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    torch.testing.assert_close(coupled_align(mirrored), ref * flip, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(coupled_align(x[..., :3]), vertical_align(x[..., :3]))
    s = InputScaler("physical", 6, frame="coupled")
    torch.testing.assert_close(s(x)[..., 1], ref[..., 1] / 9.80665)


def test_vertical_frame_of_a_still_window_is_finite_and_an_input_scaler_frame():
    x = torch.zeros(2, 120, 6)
    x[..., 2] = 9.81
    y = vertical_align(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[..., 2], torch.full((2, 120), 9.81))
    s = InputScaler("physical", 6, frame="vertical")
    torch.testing.assert_close(s(walking(b=2)), s(rotate(walking(b=2), random_rotation_matrices(2, torch.Generator().manual_seed(5)))),
                               atol=2e-3, rtol=1e-3)


def test_still_window_keeps_its_axes_and_stays_finite():
    x = torch.zeros(2, 120, 6)
    x[..., 2] = 9.81
    y = heading_align(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, x)


@pytest.mark.parametrize("frame", ["gravity", "heading", "world", "world_vertical"])
def test_frames_export_to_onnx(tmp_path, frame):
    ort = pytest.importorskip("onnxruntime")
    scaler = InputScaler("physical", 6, frame=frame).eval()
    x = walking(b=3)
    path = tmp_path / "f.onnx"
    torch.onnx.export(scaler, (x,), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
    y = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(y), scaler(x), atol=1e-4, rtol=1e-4)


# -- the world frame ------------------------------------------------------------------------

def test_so3_exp_is_a_rotation_by_the_vectors_angle_about_its_axis_and_smooth_at_zero():
    w = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = so3_exp(w)
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
    torch.testing.assert_close(r @ w[..., None], w[..., None])  # the axis stays put
    angle = torch.arccos(((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))
    torch.testing.assert_close(angle, w.norm(dim=-1).remainder(2 * math.pi).where(w.norm(dim=-1) < math.pi, angle))
    torch.testing.assert_close(so3_exp(torch.zeros(2, 3)), torch.eye(3).expand(2, 3, 3))
    tiny = torch.tensor([[1e-6, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(so3_exp(tiny)[0, 2, 1], torch.tensor(1e-6, dtype=torch.float64))


def test_orientation_scan_equals_the_running_product_and_is_the_identity_at_the_middle():
    g = torch.Generator().manual_seed(2)
    for t in (2, 7, 120):
        gyro = torch.randn(3, t, 3, generator=g, dtype=torch.float64)
        r = orientation(gyro, 0.05)
        run = [torch.eye(3, dtype=torch.float64).expand(3, 3, 3)]
        for i in range(t - 1):
            run.append(run[-1] @ so3_exp(gyro[:, i] * 0.05))
        ref = torch.stack(run, 1)
        ref = ref[:, t // 2 : t // 2 + 1].transpose(-1, -2) @ ref
        torch.testing.assert_close(r, ref)
        torch.testing.assert_close(r[:, t // 2], torch.eye(3, dtype=torch.float64).expand(3, 3, 3))


def _turning_in_a_still_world(b: int = 5, t: int = 120, rate: float = 20.0) -> torch.Tensor:
    """A device turning at a varying rate about a varying axis, nothing but gravity acting on it."""
    dt = 1.0 / rate
    time = torch.arange(t, dtype=torch.float64) * dt
    w = torch.stack([1.5 * torch.sin(2 * math.pi * time), 0.7 * torch.cos(2 * math.pi * 0.8 * time), 0.3 + 0 * time], -1)
    w = w[None] * torch.linspace(0.5, 1.5, b, dtype=torch.float64)[:, None, None]
    up = torch.nn.functional.normalize(torch.randn(b, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64), dim=-1)
    acc = (orientation(w, dt).transpose(-1, -2) @ (9.81 * up)[:, None, :, None])[..., 0]
    return torch.cat([acc, w], dim=-1)


def test_world_frame_holds_gravity_still_however_the_device_turns():
    for rate in (20.0, 100.0):
        x = _turning_in_a_still_world(t=int(6 * rate), rate=rate)
        y = world_align(x, rate)
        # gravity alone: +z at every sample in the world frame; the gravity frame leaves it swinging
        torch.testing.assert_close(y[..., :3], torch.tensor([0, 0, 9.81], dtype=torch.float64).expand_as(y[..., :3]),
                                   atol=1e-6, rtol=0)
        assert gravity_align(x)[..., :2].abs().max() > 3.0
        torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))  # the turning rate is kept
    acc_only = walking()[..., :3]
    torch.testing.assert_close(world_align(acc_only), gravity_align(acc_only))


def test_world_frame_is_invariant_to_how_far_the_device_swings_and_to_its_orientation():
    from crosshar.augment import swing

    x = walking(b=8).double()
    ref = world_align(x)
    y = world_align(swing(x, torch.Generator().manual_seed(4), spread=1.0))
    torch.testing.assert_close(y[..., :3], ref[..., :3], atol=1e-6, rtol=0)  # acc: the same recording
    turned = world_align(rotate(x, random_rotation_matrices(8, torch.Generator().manual_seed(1)).double()))
    torch.testing.assert_close(turned[..., 2], ref[..., 2], atol=1e-6, rtol=0)  # vertical acc: any orientation


def test_world_vertical_frame_reads_the_true_vertical_at_every_sample():
    """A device turning in a still world: the world-vertical frame reads (0, 0, g) at every sample and the
    turning rate's magnitude; the vertical frame (the window's mean gravity direction) sees gravity swing
    into its horizontal channel. A turn or mirror of the whole device changes nothing; acc only gives the
    vertical frame."""
    x = _turning_in_a_still_world()
    y = world_vertical_align(x)
    torch.testing.assert_close(y[..., :3], torch.tensor([0, 0, 9.81], dtype=torch.float64).expand_as(y[..., :3]),
                               atol=1e-5, rtol=0)
    assert vertical_align(x)[..., 0].max() > 3.0
    torch.testing.assert_close(y[..., 3:5].norm(dim=-1).hypot(y[..., 5]), x[..., 3:].norm(dim=-1))
    assert (y[..., [1, 4]] == 0).all()
    w = walking(b=8).double()
    ref = world_vertical_align(w)
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    m = mirror @ random_rotation_matrices(1, torch.Generator().manual_seed(5), torch.float64)[0]
    from crosshar.augment import apply_frame_transform

    moved = world_vertical_align(apply_frame_transform(w, m.expand(8, 3, 3)))
    torch.testing.assert_close(moved[..., :3], ref[..., :3], atol=1e-6, rtol=0)  # acc: no turn or mirror changes it
    torch.testing.assert_close(moved[..., 5].abs(), ref[..., 5].abs(), atol=1e-6, rtol=0)  # a mirror flips the turning
    scaler = InputScaler("physical", 6, frame="world_vertical")
    torch.testing.assert_close(scaler(w.float()), (ref / scaler.scale.double()).float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(world_vertical_align(w[..., :3]), vertical_align(w[..., :3]))


# -- heading-invariant prediction -----------------------------------------------------------

def test_heading_turns_turn_about_gravity_only():
    from crosshar.models.frame import heading_turns

    x = walking(b=3)
    y = heading_turns(x, 4).reshape(4, 3, *x.shape[1:])
    torch.testing.assert_close(y[0], x)  # turn 0 is the window itself
    for j in range(4):
        torch.testing.assert_close(y[j][..., :3].mean(1), x[..., :3].mean(1), atol=1e-4, rtol=0)  # gravity kept
        torch.testing.assert_close(y[j][..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))
        # in the gravity frame the turn is a rotation about +z by 90 j degrees, the same for acc and gyro
        g, gj = gravity_align(x), gravity_align(y[j])
        a = math.pi / 2 * j
        rz = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
        torch.testing.assert_close(gj[..., :3], g[..., :3] @ rz.T, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(gj[..., 3:], g[..., 3:] @ rz.T, atol=1e-4, rtol=1e-4)


def test_a_classifier_with_heading_views_is_heading_invariant_in_eval_and_unchanged_in_training():
    from crosshar.models import classifier as clf
    from crosshar.models.frame import heading_turns

    meta = {"window": {"rate_hz": 20.0, "window": 120, "stride": 120, "channels": "acc+gyro",
                                "normalize": "none"}, "classes": ["walking", "upstairs", "downstairs", "sitting"],
                     "encoder": None, "head": "din", "head_cfg": {}, "scaling": "physical", "frame": "gravity"}
    torch.manual_seed(0)
    one = clf.build(meta)
    torch.manual_seed(0)
    eight = clf.build(meta | {"heading_views": 8})
    assert one.heading_views == 1 and eight.heading_views == 8
    x = walking(b=4)
    turned = heading_turns(x, 8)[4 * 3: 4 * 4]  # every window turned by 135 degrees
    with torch.no_grad():
        eight.eval(), one.eval()
        p, p_turned = torch.softmax(eight(x), -1), torch.softmax(eight(turned), -1)
        torch.testing.assert_close(p, p_turned, atol=1e-5, rtol=1e-4)  # invariant to the turns it averages
        torch.testing.assert_close(p.sum(-1), torch.ones(4))
        assert not torch.allclose(torch.softmax(one(x), -1), torch.softmax(one(turned), -1), atol=1e-3)
        # the average of the single-view model's probabilities over the 8 turns
        ref = torch.softmax(one(heading_turns(x, 8)), -1).reshape(8, 4, -1).mean(0)
        torch.testing.assert_close(p, ref, atol=1e-6, rtol=1e-5)
        eight.train(), one.train()
        torch.manual_seed(1)
        a = eight(x)
        torch.manual_seed(1)
        torch.testing.assert_close(a, one(x))  # training reads one view



def test_a_classifier_with_cadence_views_averages_fixed_replays_in_eval_only():
    """cadence_views K: in eval the probabilities are the mean over the window replayed at K speeds across the
    finetuning cadence range (with heading views, over every replay turned every way); training reads one view;
    the weights (state dict) are those of the single-view model, so any trained model can be given the views."""
    from crosshar.augment import replay
    from crosshar.errors import ConfigError, CrossharError
    from crosshar.models import classifier as clf
    from crosshar.models.frame import heading_turns

    meta = {"window": {"rate_hz": 20.0, "window": 120, "stride": 120, "channels": "acc+gyro", "normalize": "none"},
            "classes": ["walking", "upstairs", "downstairs", "sitting"], "encoder": None, "head": "din",
            "head_cfg": {}, "scaling": "physical", "frame": "gravity", "augment": {"cadence": 0.2}}
    torch.manual_seed(0)
    one = clf.build(meta).eval()
    five = clf.build(meta | {"cadence_views": 5, "cadence_span": 0.2}).eval()
    assert one.cadence is None and five.cadence.speeds == pytest.approx((0.8, 0.9, 1.0, 1.1, 1.2))
    five.load_state_dict(one.state_dict())  # strict: the replays add no weights
    x = walking(b=4)
    with torch.no_grad():
        p = torch.softmax(five(x), -1)
        ref = torch.stack([torch.softmax(one(replay(x, s)), -1) for s in five.cadence.speeds]).mean(0)
        torch.testing.assert_close(p, ref, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(p, torch.softmax(one(x), -1), atol=1e-4)
        both = clf.build(meta | {"cadence_views": 3, "cadence_span": 0.2, "heading_views": 2}).eval()
        both.load_state_dict(one.state_dict())
        ref = torch.stack([torch.softmax(one(heading_turns(replay(x, s), 2)), -1).reshape(2, 4, -1).mean(0)
                           for s in (0.8, 1.0, 1.2)]).mean(0)
        torch.testing.assert_close(torch.softmax(both(x), -1), ref, atol=1e-6, rtol=1e-5)
        five.train(), one.train()
        torch.manual_seed(1)
        a = five(x)
        torch.manual_seed(1)
        torch.testing.assert_close(a, one(x))  # training reads one view
    # a trained model given views after the fact: the span is its finetuning cadence range
    one.eval(), five.eval()  # (the training call moved both models' batch statistics alike)
    given = clf.with_cadence_views(one, meta, 5)
    assert given["cadence_views"] == 5 and given["cadence_span"] == 0.2 and one.cadence.k == 5
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(one(x), -1), torch.softmax(five(x), -1))
    assert clf.with_cadence_views(one, meta, 1)["cadence_views"] == 1 and one.cadence is None
    with pytest.raises(CrossharError, match="cadence range"):
        clf.with_cadence_views(one, meta | {"augment": {"cadence": 0.0}}, 3)
    with pytest.raises(ConfigError, match="cadence range"):
        clf.build(meta | {"cadence_views": 3})  # views without the span they cover
    ensemble = clf.ModelEnsemble([clf.build(meta), clf.build(meta)]).eval()  # every model averaged gets them
    assert clf.with_cadence_views(ensemble, meta, 3)["cadence_views"] == 3
    assert [m.cadence.k for m in ensemble.members] == [3, 3]


def _turning_reading(rate: float = 200.0, seconds: float = 3.0, carried: bool = False) -> torch.Tensor:
    """(2, T, 6): a device turning about a varying axis in a still world (acc is gravity alone), or,
    `carried`, also pushed about with a varying linear acceleration."""
    dt = 1.0 / rate
    t = torch.arange(int(seconds * rate), dtype=torch.float64) * dt
    w = torch.stack([1.5 * torch.sin(2 * math.pi * t), 0.7 * torch.cos(2 * math.pi * 0.8 * t), 0.3 + 0 * t], -1)
    w = torch.stack([w, 0.5 * w.flip(-1)])
    world = torch.tensor([0.0, 0.0, 9.81], dtype=torch.float64).expand(len(t), 3)
    if carried:
        world = world + torch.stack([2.0 * torch.sin(2 * math.pi * 1.8 * t) ** 3, 0 * t, torch.cos(2 * math.pi * 1.8 * t)], -1)
    acc = (orientation(w, dt).transpose(-1, -2) @ world[..., None])[..., 0]
    return torch.cat([acc, w], dim=-1)


def _rigid_body_residual(x: torch.Tensor, rate: float) -> float:
    """|d(acc)/dt + w x acc| / |w x acc| (central differences): ~0 for a device turning in a still world."""
    a, w = x[..., :3], x[..., 3:]
    da = (a[:, 2:] - a[:, :-2]) * rate / 2
    rhs = -torch.linalg.cross(w[:, 1:-1], a[:, 1:-1])
    return ((da - rhs).norm(dim=-1).mean() / rhs.norm(dim=-1).mean()).item()


def test_reverse_time_plays_a_rigid_body_reading_backwards():
    from crosshar.models.frame import reverse_time

    rate = 200.0
    still = _turning_reading(rate)
    y = reverse_time(still)
    torch.testing.assert_close(y[..., :3], still[..., :3].flip(1))  # acc(t) -> acc(-t)
    torch.testing.assert_close(y[..., 3:], -still[..., 3:].flip(1))  # w(t) -> -w(-t)
    before, after = _rigid_body_residual(still, rate), _rigid_body_residual(y, rate)
    assert before < 0.02 and after < 1.05 * before  # still a reading of a turning rigid body
    assert _rigid_body_residual(still.flip(1), rate) > 50 * before  # played back without flipping w: not one
    moving = _turning_reading(rate, carried=True)
    torch.testing.assert_close(reverse_time(reverse_time(moving)), moving)  # an involution
    torch.testing.assert_close(reverse_time(moving[..., :3]), moving[..., :3].flip(1))  # acc only
    # the gravity frame does not depend on the direction of time (it reads the window's mean acc)
    torch.testing.assert_close(gravity_align(reverse_time(moving)), reverse_time(gravity_align(moving)))
    with pytest.raises(ValueError, match="shape"):
        reverse_time(moving[0])
