"""Physics-based augmentations: rotations are rotations, the same for acc and gyro; reproducible."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crosshar.augment import (
    Augmenter, apply_frame_rotation, apply_frame_transform, gain_bias, mirror, noise, permute_axes,
    proper_axis_permutations, random_rotation_matrices, rotate, tilt, time_warp, replay, yaw,
)
from crosshar.config import AugmentConfig
from crosshar.registry import AUGMENTATIONS

NAMES = ["rotate", "mirror", "yaw", "permute_axes", "tilt", "gain_bias", "noise", "time_warp", "mount"]



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def imu_windows(b: int = 8, t: int = 60, c: int = 6, seed: int = 1) -> torch.Tensor:
    """Gravity along a random direction plus wobble on acc; smooth angular velocity on gyro."""
    g = gen(seed)
    time = torch.linspace(0, 6, t)
    grav = torch.nn.functional.normalize(torch.randn(b, 1, 3, generator=g), dim=-1) * 9.81
    acc = grav + 2.0 * torch.sin(2 * math.pi * 1.8 * time)[None, :, None] * torch.randn(b, 1, 3, generator=g)
    acc = acc + 0.3 * torch.randn(b, t, 3, generator=g)
    if c == 3:
        return acc
    gyro = torch.cos(2 * math.pi * 0.9 * time)[None, :, None] * torch.randn(b, 1, 3, generator=g)
    gyro = gyro + 0.1 * torch.randn(b, t, 3, generator=g)
    return torch.cat([acc, gyro], dim=-1)


def call(name: str, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return AUGMENTATIONS.get(name)(x, g)


def test_all_augmentations_registered():
    assert set(NAMES) <= set(AUGMENTATIONS.names())


# -- rotations ------------------------------------------------------------------------------

def test_rotate_preserves_norms_and_uses_one_matrix_for_acc_and_gyro():
    x = imu_windows(b=6).double()
    y = rotate(x, gen(3))
    for sensor in (slice(0, 3), slice(3, 6)):
        torch.testing.assert_close(y[..., sensor].norm(dim=-1), x[..., sensor].norm(dim=-1))
    for i in range(x.shape[0]):
        # recover R from acc by least squares (acc_y = acc_x R^T), then check it maps gyro too
        rt = torch.linalg.lstsq(x[i, :, :3], y[i, :, :3]).solution
        r = rt.T
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=r.dtype), atol=1e-8, rtol=0)
        assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-8)
        torch.testing.assert_close(x[i, :, 3:] @ rt, y[i, :, 3:], atol=1e-8, rtol=0)
    assert not torch.allclose(x, y)


def test_random_rotations_are_proper_orthogonal_and_uniform():
    r = random_rotation_matrices(20000, gen(0), torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand_as(r)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(20000, dtype=torch.float64))
    # Haar measure: E[R] = 0, so a rotated unit vector averages to 0 (std of the mean ~ 0.004)
    assert r.mean(0).abs().max() < 0.02
    # and its squared components average 1/3 each (no preferred direction)
    v = r @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(v.pow(2).mean(0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.01, rtol=0)


def test_rotate_probability():
    x = imu_windows(b=400, t=5)
    y = rotate(x, gen(0), p=0.3)
    unchanged = (y - x).abs().amax(dim=(1, 2)) < 1e-5
    assert 0.6 < unchanged.float().mean() < 0.8
    torch.testing.assert_close(rotate(x, gen(0), p=0.0), x)


def test_proper_axis_permutations_are_the_24_cube_rotations():
    m = proper_axis_permutations()
    assert m.shape == (24, 3, 3)
    torch.testing.assert_close(torch.linalg.det(m), torch.ones(24, dtype=m.dtype))
    assert len({tuple(a.flatten().tolist()) for a in m}) == 24
    assert set(m.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert (m.abs().sum(1) == 1).all() and (m.abs().sum(2) == 1).all()


def test_permute_axes_applies_one_cube_rotation_to_both_sensors():
    x = imu_windows(b=300, t=10)
    y = permute_axes(x, gen(5))
    mats = proper_axis_permutations().float()
    seen = set()
    for i in range(x.shape[0]):
        cand = torch.einsum("kij,tj->kti", mats, x[i, :, :3])
        k = int((cand - y[i, None, :, :3]).abs().amax(dim=(1, 2)).argmin())
        torch.testing.assert_close(cand[k], y[i, :, :3])
        torch.testing.assert_close(x[i, :, 3:] @ mats[k].T, y[i, :, 3:])
        seen.add(k)
    assert len(seen) == 24


def test_tilt_is_a_rotation_about_a_horizontal_axis_with_the_given_spread():
    b, deg = 4000, 5.0
    x = torch.zeros(b, 8, 6, dtype=torch.float64)
    x[:, :, 2] = 9.80665  # phone flat: gravity along +z
    x[:, :, 3:] = torch.randn(b, 1, 3, generator=gen(9), dtype=torch.float64)
    y = tilt(x, gen(2), deg=deg)
    torch.testing.assert_close(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1))
    torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))
    # the axis is perpendicular to gravity, so gravity turns by the full |angle|
    cos = (y[:, 0, :3] * x[:, 0, :3]).sum(-1) / 9.80665**2
    angle = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    assert angle.mean().item() == pytest.approx(deg * math.sqrt(2 / math.pi), rel=0.05)
    torch.testing.assert_close(tilt(x, gen(2), deg=0.0), x)


# -- sensor effects and cadence -------------------------------------------------------------

def test_gain_bias_statistics():
    b = 5000
    ones = torch.ones(b, 4, 6)
    y = gain_bias(ones, gen(0), gain_std=0.1, bias_acc=0.0, bias_gyro=0.0)
    assert (y == y[:, :1]).all(), "gain must be constant over time"
    assert y[:, 0].std().item() == pytest.approx(0.1, rel=0.05)
    zeros = torch.zeros(b, 4, 6)
    y = gain_bias(zeros, gen(0), gain_std=0.1, bias_acc=0.2, bias_gyro=0.02)
    assert (y == y[:, :1]).all(), "bias must be constant over time"
    assert y[:, 0, :3].std().item() == pytest.approx(0.2, rel=0.05)
    assert y[:, 0, 3:].std().item() == pytest.approx(0.02, rel=0.05)


def test_noise_statistics():
    y = noise(torch.zeros(200, 100, 6), gen(0), noise_acc=0.05, noise_gyro=0.01)
    assert y[..., :3].std().item() == pytest.approx(0.05, rel=0.02)
    assert y[..., 3:].std().item() == pytest.approx(0.01, rel=0.02)
    assert y.mean().abs().item() < 1e-3


def test_time_warp_resamples_a_ramp_at_the_drawn_speed_and_reflects_at_the_end():
    t, cadence = 120, 0.2
    ramp = torch.arange(t, dtype=torch.float64)[None, :, None].expand(500, t, 3).contiguous()
    y = time_warp(ramp, gen(0), cadence)
    speed = y[:, 1, 0] - y[:, 0, 0]
    assert ((speed >= 1 - cadence - 1e-9) & (speed <= 1 + cadence + 1e-9)).all()
    assert speed.min() < 0.85 and speed.max() > 1.15  # spread over the range
    assert y[:, 0].abs().max() == 0  # starts at the start
    assert y.max() <= t - 1 and y.min() >= 0
    fast = speed > 1
    expected_last = 2 * (t - 1) - (t - 1) * speed[fast]  # reflected at T - 1
    torch.testing.assert_close(y[fast, -1, 0], expected_last)


def test_replay_is_time_warp_at_a_given_speed():
    """replay(x, s) is the time warp with the speed fixed: a ramp read s times as fast, the same
    windows time_warp gives for the speeds it drew, and speed 1 is the identity."""
    t = 120
    ramp = torch.arange(t, dtype=torch.float64)[None, :, None].expand(4, t, 3).contiguous()
    torch.testing.assert_close(replay(ramp, 0.8)[:, :, 0], 0.8 * ramp[:, :, 0])
    x = imu_windows()
    assert torch.equal(replay(x, 1.0), x)
    warped = time_warp(ramp, gen(0), 0.2)
    drawn = (warped[:, 1, 0] - warped[:, 0, 0])[:, None]
    torch.testing.assert_close(replay(ramp, drawn), warped)


def test_time_warp_factor_one_is_identity():
    x = imu_windows()
    assert torch.equal(time_warp(x, gen(0), cadence=0.0), x)
    with pytest.raises(ValueError):
        time_warp(x, gen(0), cadence=1.0)


# -- common contract ------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [3, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_reproducibility(name, c, dtype):
    x = imu_windows(c=c).to(dtype)
    y1 = call(name, x, gen(7))
    assert y1.shape == x.shape and y1.dtype == dtype
    assert torch.isfinite(y1).all()
    assert torch.equal(y1, call(name, x, gen(7)))
    assert not torch.allclose(y1, call(name, x, gen(8)))
    assert not torch.allclose(y1, x)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="B, T, 3"):
        rotate(torch.zeros(2, 10, 4), gen())
    with pytest.raises(ValueError):
        rotate(torch.zeros(10, 6), gen())


def test_augmenter_all_zero_config_is_identity():
    zero = AugmentConfig(rotation_p=0, axis_permute_p=0, mirror_p=0, yaw_deg=0, tilt_deg=0, gain_std=0, bias_acc=0,
                         bias_gyro=0, noise_acc=0, noise_gyro=0, cadence=0, body_amplitude=0)
    for c in (3, 6):
        x = imu_windows(c=c)
        assert torch.equal(Augmenter(zero, c)(x, gen()), x)


def test_augmenter_default_config_and_two_views():
    x = imu_windows()
    aug = Augmenter(AugmentConfig(axis_permute_p=0.5, tilt_deg=3.0), n_channels=6)
    v1, v2 = aug.two_views(x, gen(0))
    assert v1.shape == x.shape and not torch.allclose(v1, v2)
    w1, w2 = aug.two_views(x, gen(0))
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    with pytest.raises(ValueError, match="6 channels"):
        aug(imu_windows(c=3), gen())
    with pytest.raises(ValueError):
        Augmenter(AugmentConfig(), n_channels=4)


def test_augmenter_rotation_only_keeps_norms():
    x = imu_windows()
    only_rot = AugmentConfig(rotation_p=1, mirror_p=0.5, yaw_deg=90, gain_std=0, bias_acc=0, bias_gyro=0, noise_acc=0,
                             noise_gyro=0, cadence=0, axis_permute_p=1, tilt_deg=10, body_amplitude=0)
    y = Augmenter(only_rot, 6)(x, gen(1))
    torch.testing.assert_close(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1))
    torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))


def test_apply_frame_rotation_three_channels():
    x = imu_windows(c=3)
    r = random_rotation_matrices(x.shape[0], gen(0))
    torch.testing.assert_close(apply_frame_rotation(x, r), torch.einsum("bij,btj->bti", r, x))


def test_body_amplitude_scales_motion_not_gravity():
    from crosshar.augment import body_amplitude

    x = imu_windows()
    y = body_amplitude(x, gen(3), spread=0.5)
    # the window mean (gravity estimate) is unchanged; the motion around it is scaled per window
    torch.testing.assert_close(y[..., :3].mean(1), x[..., :3].mean(1), atol=1e-4, rtol=0)
    dyn_x = x[..., :3] - x[..., :3].mean(1, keepdim=True)
    dyn_y = y[..., :3] - y[..., :3].mean(1, keepdim=True)
    s_acc = dyn_y.norm(dim=(1, 2)) / dyn_x.norm(dim=(1, 2))
    s_gyro = y[..., 3:].norm(dim=(1, 2)) / x[..., 3:].norm(dim=(1, 2))
    torch.testing.assert_close(s_acc, s_gyro, atol=1e-4, rtol=1e-4)  # one factor per window, both sensors
    assert s_acc.min() >= 1 / 1.5 - 1e-4 and s_acc.max() <= 1.5 + 1e-4
    assert s_acc.std() > 0.05  # different windows, different factors
    assert torch.equal(body_amplitude(x, gen(3), spread=0.0), x)


def test_gyro_amplitude_scales_rotation_per_window_and_leaves_the_default_stream():
    from crosshar.augment import body_amplitude

    x = imu_windows()
    base = body_amplitude(x, gen(3), spread=0.5)
    y = body_amplitude(x, gen(3), spread=0.5, gyro_spread=0.5)
    torch.testing.assert_close(y[..., :3], base[..., :3])  # acc: the same draw of s as without gyro_spread
    r = y[..., 3:].norm(dim=(1, 2)) / base[..., 3:].norm(dim=(1, 2))  # the lever-arm factor alone
    assert r.min() >= 1 / 1.5 - 1e-4 and r.max() <= 1.5 + 1e-4 and r.std() > 0.05
    only = body_amplitude(x, gen(3), spread=0.0, gyro_spread=0.5)  # r without s: acc untouched
    torch.testing.assert_close(only[..., :3], x[..., :3])
    assert not torch.allclose(only[..., 3:], x[..., 3:])
    acc_only = imu_windows(c=3)
    assert torch.equal(body_amplitude(acc_only, gen(3), spread=0.0, gyro_spread=0.5), acc_only)


# -- swing ----------------------------------------------------------------------------------

def _turning_device(b: int = 4, rate: float = 20.0, seconds: float = 6.0) -> torch.Tensor:
    """A device turning at a varying rate about a varying axis in a still world: acc is gravity alone."""
    from crosshar.models.frame import orientation

    dt = 1.0 / rate
    t = torch.arange(int(seconds * rate), dtype=torch.float64) * dt
    w = torch.stack([1.5 * torch.sin(2 * math.pi * t), 0.7 * torch.cos(2 * math.pi * 0.8 * t), 0.3 + 0 * t], -1)
    w = w[None] * torch.linspace(0.5, 1.5, b, dtype=torch.float64)[:, None, None]
    acc = orientation(w, dt).transpose(-1, -2) @ torch.tensor([0.0, 0.0, 9.81], dtype=torch.float64)
    return torch.cat([acc, w], dim=-1)


def _law_residual(x: torch.Tensor, rate: float) -> float:
    """|d(acc)/dt + w x acc| / |w x acc| (central differences): 0 for an exact rigid-body reading."""
    dt = 1.0 / rate
    a, w = x[..., :3].double(), x[..., 3:].double()
    da = (a[:, 2:] - a[:, :-2]) / (2 * dt)
    rhs = -torch.cross(w[:, 1:-1], a[:, 1:-1], dim=-1)
    return ((da - rhs).norm(dim=-1).mean() / rhs.norm(dim=-1).mean()).item()


def test_swing_turns_the_device_k_times_as_fast_and_keeps_it_a_rigid_body_reading():
    from crosshar.augment import swing

    for rate in (20.0, 200.0):
        x = _turning_device(rate=rate)
        y = swing(x, gen(5), spread=1.0, rate_hz=rate)
        k = y[..., 3:].norm(dim=(1, 2)) / x[..., 3:].norm(dim=(1, 2))  # one factor per window
        torch.testing.assert_close(y[..., 3:], k[:, None, None] * x[..., 3:])
        assert k.min() >= 0.5 - 1e-9 and k.max() <= 2.0 + 1e-9 and k.std() > 0.05
        torch.testing.assert_close(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1))  # gravity is 1 g
        assert not torch.allclose(y[..., :3], x[..., :3], atol=0.5)  # gravity's direction swings differently
        # the law holds as well as in the original (the residual is the finite differences' own error,
        # shrinking with the sample period); scaling the gyro alone breaks it
        before, after = _law_residual(x, rate), _law_residual(y, rate)
        gyro_only = _law_residual(torch.cat([x[..., :3], y[..., 3:]], dim=-1), rate)
        assert after < 1.05 * before and gyro_only > 2 * before
    assert _law_residual(_turning_device(rate=200.0), 200.0) < 0.02


# -- lever arm ------------------------------------------------------------------------------

def _rigid_body_pair(r: np.ndarray, rate: float = 50.0, seconds: float = 4.0, fine: int = 40):
    """Two sensors on one rigid body that bobs and pitches like a walking thigh, one at its origin and
    one at offset r (body frame): their windows (1, T, 6), from positions differentiated twice on a
    grid `fine` times finer than the sample rate (independent of the lever-arm formula)."""
    from scipy.spatial.transform import Rotation

    h = 1.0 / (rate * fine)
    t = np.arange(int(seconds * rate * fine) + 2 * fine) * h
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    theta = 0.6 * np.sin(2 * np.pi * 1.8 * t) + 0.1 * np.sin(2 * np.pi * 3.6 * t + 0.4)  # rad
    R = Rotation.from_rotvec(theta[:, None] * axis)
    origin = np.stack([0.2 * t, 0 * t, 0.03 * np.sin(2 * np.pi * 3.6 * t)], -1)  # walking forward, bobbing
    up = np.array([0.0, 0.0, 9.81])
    dtheta = np.gradient(theta, h)
    out = []
    for p in (origin, origin + R.apply(r)):
        a = np.gradient(np.gradient(p, h, axis=0), h, axis=0)
        out.append(np.concatenate([R.apply(a + up, inverse=True), dtheta[:, None] * axis], -1))
    sl = slice(fine, -fine, fine)  # away from the fine grid's edges, at the sample rate
    return [torch.from_numpy(o[sl][None]) for o in out]


def test_displace_gives_the_reading_of_a_sensor_moved_on_the_same_rigid_body():
    from crosshar.augment import displace

    r = np.array([0.05, -0.12, 0.15])  # 0.2 m, as hip to trouser pocket
    x, moved = _rigid_body_pair(r)
    y = displace(x, torch.from_numpy(r), rate_hz=50.0)
    lever = (moved - x)[..., :3].abs().max().item()
    assert lever > 5.0  # the offset matters: several m/s^2 at 0.2 m
    err = (y - moved)[..., :3][:, 2:-2].abs().max().item()  # central differences inside the window
    assert err < 0.03 * lever
    torch.testing.assert_close(y[..., 3:], x[..., 3:])  # the rotation is the same everywhere on the body


def test_lever_arm_draws_offsets_within_reach_and_leaves_what_it_cannot_move_alone():
    from crosshar.augment import lever_arm

    x = imu_windows()
    y1, y2 = lever_arm(x, gen(3), reach=0.3), lever_arm(x, gen(3), reach=0.3)
    assert torch.equal(y1, y2) and y1.dtype == x.dtype and not torch.allclose(y1, x)
    assert torch.equal(y1[..., 3:], x[..., 3:])
    assert torch.equal(lever_arm(x, gen(3), reach=0.0), x)
    acc = imu_windows(c=3)
    assert torch.equal(lever_arm(acc, gen(3), reach=0.3), acc)
    still = torch.cat([x[..., :3], torch.zeros_like(x[..., 3:])], dim=-1)
    assert torch.equal(lever_arm(still, gen(3), reach=0.3), still)  # no rotation, no lever arm
    from crosshar.augment import Augmenter

    names = [n for n, _ in Augmenter(AugmentConfig(lever_arm=0.3), 6).steps]
    assert names.index("lever_arm") < names.index("rotate")  # the motion first, then the device's orientation


def test_swing_leaves_still_windows_acc_only_windows_and_spread_zero_alone():
    from crosshar.augment import swing

    still = torch.cat([imu_windows(b=4)[..., :3], torch.zeros(4, 60, 3)], dim=-1)
    assert torch.equal(swing(still, gen(1), spread=1.0), still)
    x = imu_windows()
    assert torch.equal(swing(x, gen(1), spread=0.0), x)
    acc = imu_windows(c=3)
    assert torch.equal(swing(acc, gen(1), spread=1.0), acc)
    y1, y2 = swing(x, gen(2), spread=1.0), swing(x, gen(2), spread=1.0)
    assert torch.equal(y1, y2) and y1.dtype == x.dtype and not torch.allclose(y1, x)
    torch.testing.assert_close(swing(x.double(), gen(2), spread=1.0).float(), y1)


def test_augmenter_runs_the_swing_only_when_configured_and_at_the_windows_rate():
    cfg = AugmentConfig(rotation_p=0, mirror_p=0, gain_std=0, bias_acc=0, bias_gyro=0, noise_acc=0, noise_gyro=0,
                        cadence=0, body_amplitude=0, swing=1.0)
    assert [n for n, _ in Augmenter(cfg, 6, rate_hz=50.0).steps] == ["swing"]
    assert Augmenter(cfg, 6, rate_hz=50.0).steps[0][1] == (1.0, 50.0)
    assert Augmenter(cfg, 3).steps == []
    assert "swing" not in [n for n, _ in Augmenter(AugmentConfig(), 6).steps]  # off by default


# -- mirror ---------------------------------------------------------------------------------

def _rotation_law(x: torch.Tensor, rate: float = 20.0) -> float:
    """Slope of d(acc)/dt against -w x acc over all windows: +1 for a consistent rigid-body reading."""
    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from rawfmt import rotation_slope

    num = den = 0.0
    for w in x.double().numpy():
        n, d = rotation_slope(w[:, :3], w[:, 3:], rate)
        num, den = num + n, den + d
    return num / den


@pytest.mark.parametrize("plane", ["random", "device"])
def test_mirror_is_a_reflection_keeping_gravity_with_gyro_as_an_axial_vector(plane):
    x = imu_windows(b=64)
    y = mirror(x, gen(3), p=1.0, plane=plane)
    # magnitudes kept, gravity (the window mean) kept: the mirror plane is vertical
    torch.testing.assert_close(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1))
    torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))
    torch.testing.assert_close(y[..., :3].mean(1), x[..., :3].mean(1), atol=1e-4, rtol=1e-4)
    # the acc map is a reflection (det -1), and the gyro map is -1 times it (axial vector)
    m = torch.linalg.lstsq(x[0, :, :3].double(), y[0, :, :3].double()).solution.T
    mg = torch.linalg.lstsq(x[0, :, 3:].double(), y[0, :, 3:].double()).solution.T
    assert torch.linalg.det(m).item() == pytest.approx(-1.0, abs=1e-4)
    torch.testing.assert_close(mg, -m, atol=1e-4, rtol=1e-4)
    # p = 0 is the identity; p = 0.5 mirrors about half of the windows
    assert torch.equal(mirror(x, gen(3), p=0.0, plane=plane), x)
    changed = (mirror(imu_windows(b=400), gen(4), p=0.5, plane=plane) != imu_windows(b=400)).flatten(1).any(1).float().mean()
    assert 0.4 < changed.item() < 0.6


def test_device_plane_mirror_reflects_along_a_device_axis_least_aligned_with_gravity():
    """plane="device": the normal is the horizontal part of one of the two device axes farthest from
    gravity, both drawn; a window held with gravity along device x is mirrored along y or z exactly."""
    from crosshar.augment import device_plane_axes

    x = imu_windows(b=256)
    n = device_plane_axes(x, gen(0))
    u = x[..., :3].mean(1).double()
    u = u / u.norm(dim=1, keepdim=True)
    torch.testing.assert_close(n.norm(dim=1), torch.ones(256, dtype=torch.float64))
    assert (n * u).sum(1).abs().max() < 1e-9  # horizontal
    g = torch.zeros(200, 40, 6)
    g[..., 0] = 9.81  # gravity along device x, no motion
    g[:, :, 3:] = torch.randn(200, 40, 3, generator=torch.Generator().manual_seed(0))
    ng = device_plane_axes(g, gen(1))
    assert ng[:, 0].abs().max() < 1e-9
    along = ng.abs().argmax(1)
    assert set(along.tolist()) == {1, 2} and torch.allclose(ng.abs().max(1).values, torch.ones(200, dtype=torch.float64))
    y = mirror(g, gen(1), p=1.0, plane="device")
    # gyro, an axial vector: the component along the normal kept, the other two negated
    kept = (y[..., 3:] - g[..., 3:]).abs().amax(dim=1) < 1e-5  # (200, 3)
    assert (~kept[:, 0]).all() and torch.equal(kept[:, 1:].long().argmax(1) + 1, along)
    torch.testing.assert_close(y[..., :3], g[..., :3])  # acc is all gravity, in the mirror plane
    with pytest.raises(ValueError, match="mirror plane"):
        mirror(g, gen(1), p=1.0, plane="sagittal")


def test_apply_frame_transform_treats_gyro_as_axial_and_matches_rotation_for_det_plus_one():
    x = imu_windows(b=4)
    rot = random_rotation_matrices(4, gen(0))
    torch.testing.assert_close(apply_frame_transform(x, rot), apply_frame_rotation(x, rot))
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).expand(4, 3, 3)
    y = apply_frame_transform(x, flip)
    torch.testing.assert_close(y[..., :3], x[..., :3] * torch.tensor([-1.0, 1.0, 1.0]))
    torch.testing.assert_close(y[..., 3:], x[..., 3:] * torch.tensor([1.0, -1.0, -1.0]))


@pytest.mark.realdata
@pytest.mark.parametrize("plane", ["random", "device"])
def test_mirrored_real_recordings_still_obey_the_rigid_body_law(plane):
    """On real UCI windows, d(acc)/dt = -w x acc holds before and after the mirror, and fails when
    the gyro is (wrongly) reflected as a polar vector: the test can tell the two rules apart."""
    import os

    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare

    if not os.environ.get("CROSSHAR_DATA"):
        pytest.skip("CROSSHAR_DATA is not set (real-data test: point it at the raw datasets folder)")
    ws = prepare("uci", None, WindowConfig())
    still = torch.from_numpy(ws.X[::4]).double()
    before = _rotation_law(still)
    after = _rotation_law(mirror(still, gen(0), p=1.0, plane=plane))
    n = torch.eye(3, dtype=torch.float64) - 2 * torch.outer(torch.tensor([0.0, 0.6, 0.8]), torch.tensor([0.0, 0.6, 0.8]))
    polar = torch.cat([still[..., :3] @ n.T, still[..., 3:] @ n.T], dim=-1)  # gyro treated like acc: wrong
    wrong = _rotation_law(polar)
    print(f"\n[mirror, {plane} plane] rotation-law slope on real uci windows: before {before:.2f}, mirrored {after:.2f}, "
          f"gyro reflected as a polar vector {wrong:.2f}")
    assert before > 0.5 and after > 0.5
    assert abs(after - before) < 0.05
    assert wrong < -0.5


@pytest.mark.realdata
def test_swung_real_recordings_still_obey_the_rigid_body_law():
    """On real UCI windows the swing keeps the slope of d(acc)/dt against -w x acc where it was, for the
    windows turned faster (k > 1.4) and slower (k < 0.7) alike; scaling the gyro alone by the same
    factors (what gyro_amplitude does) moves it by about 1/k: the test tells the two rules apart."""
    import os

    from crosshar.augment import swing
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare

    if not os.environ.get("CROSSHAR_DATA"):
        pytest.skip("CROSSHAR_DATA is not set (real-data test: point it at the raw datasets folder)")
    ws = prepare("uci", None, WindowConfig())
    x = torch.from_numpy(ws.X[::4]).double()
    y = swing(x, gen(0), spread=1.0, rate_hz=WindowConfig().rate_hz)
    gyro_only = torch.cat([x[..., :3], y[..., 3:]], dim=-1)
    k = y[..., 3:].norm(dim=(1, 2)) / x[..., 3:].norm(dim=(1, 2)).clamp_min(1e-12)
    for name, m in (("k < 0.7", k < 0.7), ("k > 1.4", k > 1.4)):
        before, after, wrong = _rotation_law(x[m]), _rotation_law(y[m]), _rotation_law(gyro_only[m])
        print(f"\n[swing] rotation-law slope on real uci windows, {name}: before {before:.2f}, swung {after:.2f}, "
              f"gyro scaled alone {wrong:.2f}")
        assert before > 0.5 and int(m.sum()) > 50
        assert abs(after - before) < 0.1
        assert abs(wrong - before) > 0.3


def test_yaw_turns_about_gravity_only():
    x = imu_windows(b=64)
    y = yaw(x, gen(5), deg=180.0)
    torch.testing.assert_close(y[..., :3].mean(1), x[..., :3].mean(1), atol=1e-4, rtol=1e-4)  # gravity kept
    torch.testing.assert_close(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1))
    m = torch.linalg.lstsq(x[0, :, :3].double(), y[0, :, :3].double()).solution.T
    assert torch.linalg.det(m).item() == pytest.approx(1.0, abs=1e-4)  # a rotation, not a mirror
    mg = torch.linalg.lstsq(x[0, :, 3:].double(), y[0, :, 3:].double()).solution.T
    torch.testing.assert_close(mg, m, atol=1e-4, rtol=1e-4)  # the same rotation for the gyro
    # the heading angle spreads over (-deg, deg): the horizontal part of acc turns by it
    small = yaw(x, gen(5), deg=10.0)
    assert (small - x).abs().max() < (y - x).abs().max()
    torch.testing.assert_close(yaw(x, gen(5), deg=0.0), x)


# -- mount ----------------------------------------------------------------------------------

def test_mount_response_is_a_base_driven_spring_damper():
    from crosshar.augment import mount_response

    f = torch.tensor([0.0, 2.0, 4.0, 40.0], dtype=torch.float64)
    h = mount_response(f, torch.tensor([[4.0]], dtype=torch.float64), torch.tensor([[0.3]], dtype=torch.float64))
    assert h.shape == (1, 4)
    assert h[0, 0] == 1  # gravity passes
    assert abs(h[0, 2]) == pytest.approx(1 / (2 * 0.3))  # the resonance peak at the natural frequency
    assert torch.angle(h[0, 2]).item() == pytest.approx(-math.pi / 2)
    assert abs(h[0, 3]) == pytest.approx(1 / math.hypot(1 - 100, 2 * 0.3 * 10))  # falls as 1 / r^2 above


def _sine_window(freq_hz: float, t: int = 120, rate: float = 20.0, c: int = 6) -> torch.Tensor:
    time = torch.arange(t, dtype=torch.float64) / rate
    wave = torch.sin(2 * math.pi * freq_hz * time)[None, :, None]
    x = wave * torch.ones(1, 1, c, dtype=torch.float64)
    x[..., 2] += 9.81  # gravity along z
    return x


def test_mount_filters_every_channel_alike_keeps_gravity_and_is_reproducible():
    from crosshar.augment import mount

    x = imu_windows(b=16, t=120).double()
    y = mount(x, gen(3), p=1.0)
    assert torch.equal(y, mount(x, gen(3), p=1.0)) and not torch.allclose(y, x)
    torch.testing.assert_close(y.mean(dim=1), x.mean(dim=1))  # the window mean (gravity) is kept
    # one linear filter for every channel: it commutes with any rotation or reflection of the device frame
    m = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)) @ random_rotation_matrices(1, gen(4), torch.float64)[0]
    turned = apply_frame_transform(x, m.expand(16, 3, 3))
    torch.testing.assert_close(mount(turned, gen(3), p=1.0), apply_frame_transform(y, m.expand(16, 3, 3)))
    # a slow motion passes at its own amplitude; at 5 Hz some mounts ring (gain up to 1.7) and some cut (down to 0.5)
    def gain(freq_hz: float, seed: int) -> float:
        x = _sine_window(freq_hz)
        return (mount(x, gen(seed), p=1.0)[0, 20:100, 0].std() / x[0, 20:100, 0].std()).item()

    assert all(0.97 < gain(0.3, seed) < 1.03 for seed in range(10))
    mid = [gain(5.0, seed) for seed in range(30)]
    assert min(mid) < 0.8 and max(mid) > 1.2
    assert torch.equal(mount(x, gen(3), p=0.0), x)
    acc = imu_windows(c=3, t=120)
    assert mount(acc, gen(3), p=1.0).dtype == acc.dtype


def test_mount_probability_and_its_place_in_the_augmenter():
    from crosshar.augment import mount

    x = imu_windows(b=400, t=120)
    changed = ((mount(x, gen(1), p=0.25) - x).abs().amax(dim=(1, 2)) > 0).float().mean().item()
    assert 0.18 < changed < 0.32
    cfg = AugmentConfig(rotation_p=0, mirror_p=0, gain_std=0, bias_acc=0, bias_gyro=0, noise_acc=0, noise_gyro=0,
                        cadence=0, body_amplitude=0, mount=0.5)
    assert Augmenter(cfg, 3, rate_hz=50.0).steps == [("mount", (0.5, 50.0))]
    assert "mount" not in [n for n, _ in Augmenter(AugmentConfig(), 6).steps]  # off by default
    with pytest.raises(ValueError, match="mount"):
        AugmentConfig(mount=1.5)


# -- turn -----------------------------------------------------------------------------------

def test_turn_adds_one_constant_rate_about_gravity_per_window_and_leaves_acc_alone():
    from crosshar.augment import turn
    from crosshar.models.frame import world_vertical_align

    x = imu_windows(b=64, t=120)
    y = turn(x, gen(2), rate=0.5, rate_hz=20.0)
    assert torch.equal(y[..., :3], x[..., :3])
    # in the world-vertical frame the vertical rotation (channel 5) gains one W per window, the rest stays
    dx, dy = world_vertical_align(x.double(), 20.0), world_vertical_align(y.double(), 20.0)
    w = (dy[..., 5] - dx[..., 5])  # (B, T)
    drawn = 0.5 * (2 * torch.rand((64, 1), generator=gen(2)) - 1)  # the draw turn makes first: W ~ U(-0.5, 0.5)
    assert (w - drawn).abs().mean() < 0.01 and (w - drawn).abs().max() < 0.1  # (not rigid-body windows: some slack)
    assert drawn.min() < -0.3 and drawn.max() > 0.3
    torch.testing.assert_close(turn(x, gen(2), rate=0.0), x)
    assert torch.equal(turn(x[..., :3], gen(2), rate=0.5), x[..., :3])  # no gyro, nothing to turn
    steps = [n for n, _ in Augmenter(AugmentConfig(turn=0.5), 6).steps]
    assert steps.index("turn") < steps.index("rotate")  # the motion itself, before the device's orientation
    assert "turn" not in [n for n, _ in Augmenter(AugmentConfig(turn=0.5), 3).steps]
    assert "turn" not in [n for n, _ in Augmenter(AugmentConfig(), 6).steps]  # off by default


@pytest.mark.realdata
def test_turned_real_recordings_still_obey_the_rigid_body_law():
    """On real UCI windows, adding the turn about each sample's up direction keeps the slope of d(acc)/dt against
    -w x acc; adding the same rate about a fixed device axis (not gravity) breaks it: the test tells them apart."""
    import os

    from crosshar.augment import turn
    from crosshar.config import WindowConfig
    from crosshar.data.store import prepare

    if not os.environ.get("CROSSHAR_DATA"):
        pytest.skip("CROSSHAR_DATA is not set (real-data test: point it at the raw datasets folder)")
    ws = prepare("uci", None, WindowConfig())
    x = torch.from_numpy(ws.X[::4]).double()
    y = turn(x, gen(0), rate=0.5, rate_hz=WindowConfig().rate_hz)
    w = (y[..., 3:] - x[..., 3:]).norm(dim=-1).mean(1, keepdim=True)[..., None]  # (B, 1, 1): each window's added rate
    axis = torch.cat([x[..., 3:4] + w, x[..., 4:]], dim=-1)  # the same rate about device x: wrong
    before, after = _rotation_law(x), _rotation_law(y)
    wrong = _rotation_law(torch.cat([x[..., :3], axis], dim=-1))
    from crosshar.models.frame import world_vertical_align

    moved = (world_vertical_align(y, 20.0)[..., [0, 2]] - world_vertical_align(x, 20.0)[..., [0, 2]]).abs()
    print(f"\n[turn] rotation-law slope on real uci windows: before {before:.2f}, turned {after:.2f}, "
          f"same rate about device x {wrong:.2f}; world-vertical acc moved by {moved.mean():.4f} m/s^2 on average")
    assert moved.mean() < 0.02  # the body's acc, seen from the world's vertical, is what it was
    assert before > 0.5
    assert abs(after - before) < 0.05
    assert abs(wrong - before) > 0.1


def test_turn_scale_multiplies_each_windows_own_turn_and_keeps_a_straight_window_straight():
    from crosshar.augment import turn
    from crosshar.models.frame import world_vertical_align

    x = torch.zeros(256, 120, 6)
    x[..., 2], x[..., 5] = 9.81, 0.3  # turning at 0.3 rad/s about the vertical
    x[128:, :, 5] = 0.0  # and half of them not turning at all
    x = rotate(x, gen(4))  # whatever way the device is held
    y = turn(x, gen(5), rate=0.0, scale=1.0, rate_hz=20.0)
    assert torch.equal(y[..., :3], x[..., :3])
    k = world_vertical_align(y.double(), 20.0)[:128, :, 5].mean(1) / 0.3
    assert k.min() >= 0.5 - 1e-3 and k.max() <= 2.0 + 1e-3 and k.min() < 0.6 and k.max() > 1.8
    assert (k.log().mean()).abs() < 0.15  # log-uniform about 1
    torch.testing.assert_close(y[128:], x[128:])  # a straight window stays straight
    steps = dict(Augmenter(AugmentConfig(turn_scale=1.0), 6).steps)
    assert steps["turn"] == (0.0, 20.0, 1.0)
