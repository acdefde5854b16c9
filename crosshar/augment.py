"""Physics-based augmentation of IMU windows: pure tensor functions with an explicit generator.

Every function takes a batch `x: (B, T, C)` in physical units (C = 6: acc_x, acc_y, acc_z in m/s^2
*including gravity*, gyro_x, gyro_y, gyro_z in rad/s; or C = 3: acc only) and a `torch.Generator`
from which all of its randomness is drawn, so the same generator state gives the same output.
Each one models one thing that differs between recordings of the same activity (how the phone is
held, the sensor chip, the walking speed), which is what changes from one dataset to another.

CrossHAR (Hong et al., IMWUT 2024) augments by copying the whole dataset with 6 axis permutations
or 5 random SO(3) rotations *before* the train/validation split, which leaks copies of one window
across the split. Here the same physics is drawn afresh for every training batch instead, and the
rotations act on acc and gyro with one matrix, since both sensors share the device frame.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from crosshar.config import AugmentConfig
from crosshar.models.frame import orientation, so3_exp
from crosshar.models.views import replay_weights
from crosshar.registry import AUGMENTATIONS

__all__ = [
    "rotate", "mirror", "yaw", "permute_axes", "tilt", "gain_bias", "noise", "time_warp", "replay", "swing", "lever_arm",
    "displace", "turn", "mount", "mount_response", "MOUNT_HZ", "MOUNT_DAMPING", "Augmenter",
    "random_rotation_matrices", "proper_axis_permutations", "apply_frame_rotation", "apply_frame_transform",
    "horizontal_axes", "device_plane_axes", "tstcc_views",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _check_window(x: Tensor) -> None:
    if x.ndim != 3 or x.shape[-1] not in (3, 6):
        raise ValueError(f"expected windows of shape (B, T, 3) or (B, T, 6), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor, got {x.dtype}")


def _rand(shape: tuple[int, ...], g: torch.Generator, x: Tensor) -> Tensor:
    """U(0, 1) drawn from `g` (on the generator's device), returned on x's device and dtype."""
    return torch.rand(shape, generator=g, device=g.device).to(device=x.device, dtype=x.dtype)


def _randn(shape: tuple[int, ...], g: torch.Generator, x: Tensor) -> Tensor:
    """N(0, 1) drawn from `g` (on the generator's device), returned on x's device and dtype."""
    return torch.randn(shape, generator=g, device=g.device).to(device=x.device, dtype=x.dtype)


def _per_channel(x: Tensor, acc_value: float, gyro_value: float) -> Tensor:
    """(C,) tensor holding `acc_value` on acc channels and `gyro_value` on gyro channels."""
    values = [acc_value] * 3 + [gyro_value] * (x.shape[-1] - 3)
    return torch.tensor(values, device=x.device, dtype=x.dtype)


def apply_frame_rotation(x: Tensor, rot: Tensor) -> Tensor:
    """Express every 3-axis sensor of `x` in a rotated device frame.

    Args:
        x: (B, T, C) with C = 3 (acc) or 6 (acc, gyro).
        rot: (B, 3, 3) one rotation matrix per window.

    Returns:
        (B, T, C): v' = R v for acc and for gyro at every time step, with the same R for both,
        because both sensors are mounted in the same rigid device frame.
    """
    b, t, c = x.shape
    v = x.reshape(b, t, c // 3, 3)
    return torch.einsum("bij,btsj->btsi", rot.to(x.dtype), v).reshape(b, t, c)


def apply_frame_transform(x: Tensor, m: Tensor) -> Tensor:
    """Express `x` in a frame changed by an orthogonal matrix `m`, proper (rotation) or not (mirror).

    Acceleration is a polar vector: a' = M a. The gyroscope measures an axial vector (a
    pseudovector, like a cross product), which picks up the determinant: w' = det(M) M w. For a
    rotation (det +1) both rules coincide with `apply_frame_rotation`; for a reflection (det -1)
    the gyro turns the other way, as the mirror image of a turning body does. Only with this rule
    does the transformed window still obey the rigid-body law d(acc)/dt = -w x acc.

    Args:
        x: (B, T, C) with C = 3 (acc) or 6 (acc, gyro).
        m: (B, 3, 3) orthogonal matrices.

    Returns:
        (B, T, C) in the new frame.
    """
    b, t, c = x.shape
    m = m.to(x.dtype)
    acc = torch.einsum("bij,btj->bti", m, x[..., :3])
    if c == 3:
        return acc
    det = torch.linalg.det(m.to(torch.float64)).to(x.dtype)[:, None, None]
    gyro = det * torch.einsum("bij,btj->bti", m, x[..., 3:])
    return torch.cat([acc, gyro], dim=-1)


def horizontal_axes(x: Tensor, g: torch.Generator) -> Tensor:
    """(B, 3) float64 unit vectors perpendicular to each window's mean acceleration, random heading.

    The mean acceleration over a window approximates gravity (the dynamic part averages out), so
    these axes are horizontal in the world. Windows with no gravity estimate (mean ~ 0) get a
    uniformly random axis.
    """
    b = x.shape[0]
    r = torch.randn((b, 3), generator=g, device=g.device, dtype=torch.float64).to(x.device)
    grav = x[:, :, :3].mean(dim=1).to(torch.float64)
    grav_norm = grav.norm(dim=1, keepdim=True)
    has_grav = grav_norm > 1e-3
    axis = torch.where(has_grav, torch.linalg.cross(grav / grav_norm.clamp_min(1e-12), r), r)
    axis_norm = axis.norm(dim=1, keepdim=True)
    axis = torch.where(axis_norm > 1e-9, axis, r)  # r (almost) parallel to gravity: probability ~ 0
    return axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)


def device_plane_axes(x: Tensor, g: torch.Generator) -> Tensor:
    """(B, 3) float64 unit horizontal vectors, each the horizontal part of a device axis: of the two device
    axes least aligned with the window's mean acceleration (gravity), one drawn with equal odds.

    A phone worn flat against the body has the body's left-right axis along one of its own axes (the
    screen's normal on a belt at the side, its short edge in a front pocket), so the mirror image of the
    body is, in the device frame, a reflection through a device-fixed plane: unlike `horizontal_axes`,
    the heading of the recording relative to the device is kept. Windows with no gravity estimate use
    the drawn device axis itself.
    """
    b = x.shape[0]
    grav = x[:, :, :3].mean(dim=1).to(torch.float64)
    u = grav / grav.norm(dim=1, keepdim=True).clamp_min(1e-12)
    two = u.abs().argsort(dim=1)[:, :2]  # (B, 2) the axes least aligned with gravity
    pick = (torch.rand((b,), generator=g, device=g.device).to(x.device) < 0.5).long()
    e = torch.nn.functional.one_hot(two.gather(1, pick[:, None])[:, 0], 3).to(torch.float64)
    n = e - (e * u).sum(dim=1, keepdim=True) * u
    n = torch.where(grav.norm(dim=1, keepdim=True) > 1e-3, n, e)
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)


def random_rotation_matrices(n: int, g: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
    """(n, 3, 3) rotations drawn uniformly (Haar measure) from SO(3).

    A 4-vector of independent standard normals, normalised, is uniform on the unit sphere S^3,
    i.e. a uniform unit quaternion; q and -q give the same rotation, so the induced matrix is
    uniform over SO(3) (Shoemake 1992). Computed in float64 and cast, to stay orthogonal to
    float32 precision.
    """
    q = torch.randn((n, 4), generator=g, device=g.device, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).reshape(n, 3, 3)
    return rot.to(dtype)


def proper_axis_permutations() -> Tensor:
    """(24, 3, 3) signed permutation matrices with det = +1: the rotation group of the cube.

    Of the 48 signed permutations of (x, y, z), only the 24 with determinant +1 are rotations; the
    other 24 are reflections (a mirrored phone), which no real device can produce.
    """
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3, dtype=torch.float64)
            for row, (col, s) in enumerate(zip(perm, signs)):
                m[row, col] = s
            if torch.linalg.det(m) > 0:
                mats.append(m)
    return torch.stack(mats)


_CUBE_ROTATIONS = proper_axis_permutations()


def _bernoulli_choose(rot: Tensor, p: float, g: torch.Generator) -> Tensor:
    """Replace each rotation by the identity with probability 1 - p."""
    keep = torch.rand((rot.shape[0],), generator=g, device=g.device).to(rot.device) < p
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device).expand_as(rot)
    return torch.where(keep[:, None, None], rot, eye)


# ---------------------------------------------------------------------------------------------
# augmentations
# ---------------------------------------------------------------------------------------------

@AUGMENTATIONS.register("rotate")
def rotate(x: Tensor, g: torch.Generator, p: float = 1.0) -> Tensor:
    """Random device orientation: one uniform SO(3) rotation per window.

    Physics: the same motion recorded by a phone held in another orientation gives readings in a
    rotated frame. Acc (gravity included) and gyro are rotated by the *same* matrix at every time
    step, so the angle between gravity and the rotation axis of the body, and the magnitudes of
    both vectors, are preserved.

    Args:
        x: (B, T, C) windows, C = 3 or 6.
        g: generator for all randomness.
        p: probability that a window is rotated (the others keep the identity).

    Returns:
        (B, T, C) rotated windows, same dtype.
    """
    _check_window(x)
    rot = random_rotation_matrices(x.shape[0], g, torch.float64).to(x.device)
    rot = _bernoulli_choose(rot, p, g)
    return apply_frame_rotation(x, rot)


@AUGMENTATIONS.register("permute_axes")
def permute_axes(x: Tensor, g: torch.Generator, p: float = 1.0) -> Tensor:
    """Signed axis permutation restricted to proper rotations (the 24 rotations of the cube).

    Physics: a phone put in a pocket or on a belt in one of the 24 "axis-aligned" ways (screen in
    or out, top up or down, ...). CrossHAR permutes x, y, z without signs, which includes
    reflections (det = -1) that no real device can produce; here every matrix has det = +1, and
    acc and gyro get the same one.

    Args:
        x: (B, T, C) windows, C = 3 or 6.
        g: generator for all randomness.
        p: probability that a window is permuted (the others keep the identity).
    """
    _check_window(x)
    idx = torch.randint(0, 24, (x.shape[0],), generator=g, device=g.device).cpu()
    rot = _CUBE_ROTATIONS[idx].to(x.device)
    rot = _bernoulli_choose(rot, p, g)
    return apply_frame_rotation(x, rot)


@AUGMENTATIONS.register("mirror")
def mirror(x: Tensor, g: torch.Generator, p: float = 0.5, plane: str = "random") -> Tensor:
    """Left/right mirror image: a reflection of the device frame through a vertical plane.

    Physics: the same activity recorded on the other side of the body (left vs right pocket, belt
    clip on the other hip, the other wrist) is, to first order, the mirror image of the recording, and
    so is the same activity done in a mirror-image place: a stairwell that turns the other way. That
    is what the datasets differ by (results/turning.md: UCI's upstairs windows turn counterclockwise
    about the vertical in 100 % of cases, MotionSense's in 5 %, downstairs the opposite), and a mirror
    image reverses every turn's sense.
    A reflection M = I - 2 n n^T (det -1) through the plane that contains gravity (n horizontal,
    random heading) maps acc as a polar vector (a' = M a, gravity unchanged) and the gyro as an
    axial vector (w' = det(M) M w = -M w). No rotation (det +1) can produce this, so SO(3)
    augmentation alone leaves the model free to rely on the handedness of the source dataset.
    Time reversal is *not* offered: it would turn upstairs into a physically different motion.

    Args:
        x: (B, T, C) windows, C = 3 or 6, physical units.
        g: generator for all randomness.
        p: probability that a window is mirrored (the others are unchanged).
        plane: "random": the plane's heading uniform (`horizontal_axes`); "device": its normal the horizontal
            part of a device axis (`device_plane_axes`), the heading relative to the device kept.

    Returns:
        (B, T, C) windows, same dtype.
    """
    _check_window(x)
    if plane not in AugmentConfig.MIRROR_PLANES:
        raise ValueError(f"mirror plane must be one of {', '.join(AugmentConfig.MIRROR_PLANES)}, got {plane!r}")
    n = horizontal_axes(x, g) if plane == "random" else device_plane_axes(x, g)  # (B, 3) float64
    m = torch.eye(3, dtype=torch.float64, device=x.device) - 2 * n[:, :, None] * n[:, None, :]
    keep = torch.rand((x.shape[0],), generator=g, device=g.device).to(x.device) < p
    m = torch.where(keep[:, None, None], m, torch.eye(3, dtype=m.dtype, device=m.device).expand_as(m))
    return apply_frame_transform(x, m)


@AUGMENTATIONS.register("yaw")
def yaw(x: Tensor, g: torch.Generator, deg: float = 180.0) -> Tensor:
    """Random heading: rotation about the window's gravity direction by U(-deg, deg) degrees.

    Physics: the gravity-aligned frame fixes "up" but not which way the device faces around it,
    and that heading differs between a belt clip, a trouser pocket and a wrist, so a model that
    sees one dataset's headings only can mistake another's for a different activity. Turning acc
    and gyro together about the mean acceleration keeps gravity, magnitudes and the rigid-body law,
    unlike a full SO(3) rotation, which also hides which way is up.

    Args:
        x: (B, T, C) windows, C = 3 or 6.
        g: generator for all randomness.
        deg: half-width of the heading range in degrees (180: any heading).
    """
    _check_window(x)
    grav = x[:, :, :3].mean(dim=1).to(torch.float64)
    norm = grav.norm(dim=1, keepdim=True)
    fallback = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=x.device).expand_as(grav)
    axis = torch.where(norm > 1e-3, grav / norm.clamp_min(1e-12), fallback)
    angle = (2 * torch.rand((x.shape[0],), generator=g, device=g.device, dtype=torch.float64) - 1).to(x.device)
    return apply_frame_rotation(x, so3_exp(axis * (angle * math.radians(deg))[:, None]))


@AUGMENTATIONS.register("tilt")
def tilt(x: Tensor, g: torch.Generator, deg: float = 5.0) -> Tensor:
    """Small tilt of the device: rotation by N(0, deg) degrees about a random horizontal axis.

    Physics: the phone sits a little differently in the pocket or on the belt. "Horizontal" is
    taken perpendicular to the window's mean acceleration, which approximates gravity, so the
    tilt changes how gravity splits across the axes (a random axis would partly spin about
    gravity, which changes nothing a tilt changes). When the mean is near zero, the axis is
    uniformly random. It is a rotation of acc and gyro together, so magnitudes are preserved.

    Args:
        x: (B, T, C) windows, C = 3 or 6.
        g: generator for all randomness.
        deg: standard deviation of the tilt angle in degrees.
    """
    _check_window(x)
    axis = horizontal_axes(x, g)
    angle = torch.randn((x.shape[0],), generator=g, device=g.device, dtype=torch.float64).to(x.device)
    angle = angle * math.radians(deg)
    return apply_frame_rotation(x, so3_exp(axis * angle[:, None]))


@AUGMENTATIONS.register("gain_bias")
def gain_bias(
    x: Tensor, g: torch.Generator, gain_std: float = 0.1, bias_acc: float = 0.2, bias_gyro: float = 0.02
) -> Tensor:
    """Sensor calibration: per-axis gain 1 + N(0, gain_std) and bias N(0, bias_*).

    Physics: cheap MEMS sensors differ from chip to chip in scale factor and zero offset, and
    both are constant over a 6 s window. Drawn independently per window and per axis.

    Args:
        x: (B, T, C) windows, C = 3 or 6 (with C = 3, `bias_gyro` is unused).
        g: generator for all randomness.
        gain_std: standard deviation of the relative gain error.
        bias_acc: bias standard deviation of acc (m/s^2).
        bias_gyro: bias standard deviation of gyro (rad/s).
    """
    _check_window(x)
    b, _, c = x.shape
    gain = 1 + gain_std * _randn((b, 1, c), g, x)
    bias = _per_channel(x, bias_acc, bias_gyro) * _randn((b, 1, c), g, x)
    return x * gain + bias


@AUGMENTATIONS.register("noise")
def noise(x: Tensor, g: torch.Generator, noise_acc: float = 0.05, noise_gyro: float = 0.01) -> Tensor:
    """Additive white sensor noise N(0, noise_*), independent per sample and axis.

    Physics: thermal and quantisation noise of the sensor, which differs between phone models.

    Args:
        x: (B, T, C) windows, C = 3 or 6 (with C = 3, `noise_gyro` is unused).
        g: generator for all randomness.
        noise_acc: noise standard deviation of acc (m/s^2).
        noise_gyro: noise standard deviation of gyro (rad/s).
    """
    _check_window(x)
    return x + _per_channel(x, noise_acc, noise_gyro) * _randn(tuple(x.shape), g, x)


@AUGMENTATIONS.register("body_amplitude")
def body_amplitude(x: Tensor, g: torch.Generator, spread: float = 0.5, gyro_spread: float = 0.0) -> Tensor:
    """Scale the motion, not gravity: the same activity measured at another body position.

    A phone in a trouser pocket swings with the thigh and sees roughly twice the dynamic
    acceleration and rotation rate of a phone on the waist; gravity is 1 g wherever it sits. Per
    window, acc = mean + s * (acc - mean) and gyro = s * r * gyro, with s log-uniform in
    [1 / (1 + spread), 1 + spread] and r log-uniform in [1 / (1 + gyro_spread), 1 + gyro_spread]; the
    window mean (the gravity estimate) is untouched. r is the lever arm: how much a position rotates
    for the same linear motion (walking: gyro std / vertical acc std is 0.34 s on a waist belt, 0.45 in
    a thigh pocket, 0.61 for WISDM's pocket; results/body_position.md).

    Args:
        x: (B, T, C) physical units.
        spread: 0 disables s; 0.5 gives factors in [0.67, 1.5].
        gyro_spread: 0 disables r (and draws nothing, so the stream of s is the same either way).
    """
    _check_window(x)
    if spread <= 0 and (gyro_spread <= 0 or x.shape[-1] != 6):
        return x

    def draw(a: float) -> Tensor:  # (B, 1, 1) log-uniform in [1 / (1 + a), 1 + a]
        lo = -torch.log1p(torch.tensor(a)).item()
        return torch.exp(lo + (-2 * lo) * _rand((x.shape[0], 1, 1), g, x))

    s = draw(spread) if spread > 0 else torch.ones((x.shape[0], 1, 1), dtype=x.dtype, device=x.device)
    acc = x[..., :3]
    mean = acc.mean(dim=1, keepdim=True)
    parts = [mean + s * (acc - mean)]
    if x.shape[-1] == 6:
        parts.append(s * (draw(gyro_spread) if gyro_spread > 0 else 1.0) * x[..., 3:])
    return torch.cat(parts, dim=-1)


@AUGMENTATIONS.register("swing")
def swing(x: Tensor, g: torch.Generator, spread: float = 1.0, rate_hz: float = 20.0) -> Tensor:
    """Scale how far the device turns within the window: a body segment that swings more or less.

    A phone in a trouser pocket pitches with the thigh (walking: 2.8x the rotation of a waist belt,
    results/body_position.md), so gravity's share of each axis swings with every stride; a waist
    recording has no such swing. The window's own rotation, R(t) integrated from its gyro, is
    replaced by a rotation k times as fast: Q(t) with body rate k w(t), both referred to the middle
    sample. The readings of that device are acc' = Q(t)^T R(t) acc (gravity and the motion's
    acceleration seen from the new orientation) and gyro' = k gyro, with k log-uniform in
    [1 / (1 + spread), 1 + spread]. A still window (w = 0) is unchanged whatever k, so no label
    changes meaning; for a still world (acc = gravity) the result obeys d(acc')/dt = -gyro' x acc'
    as a real recording does. The extra rotation's lever-arm acceleration is not modelled.

    Args:
        x: (B, T, 6) physical units (a 3-channel window has no gyro to integrate and is returned).
        g: generator for all randomness.
        spread: 0 disables; 1.0 gives k in [0.5, 2].
        rate_hz: the windows' sample rate.

    Returns:
        (B, T, C) windows, same dtype.
    """
    _check_window(x)
    if spread <= 0 or x.shape[-1] != 6:
        return x
    lo = -math.log1p(spread)
    k = torch.exp(lo + (-2 * lo) * _rand((x.shape[0], 1, 1), g, x)).to(torch.float64)  # (B, 1, 1)
    gyro = x[..., 3:].to(torch.float64)
    dt = 1.0 / rate_hz
    rel = orientation(k * gyro, dt).transpose(-1, -2) @ orientation(gyro, dt)  # Q^T R, (B, T, 3, 3)
    acc = (rel @ x[..., :3].to(torch.float64)[..., None])[..., 0]
    return torch.cat([acc, k * gyro], dim=-1).to(x.dtype)


def displace(x: Tensor, r: Tensor, rate_hz: float = 20.0) -> Tensor:
    """The same recording from a sensor moved by `r` on the same rigid body segment.

    A point at offset r (device frame, metres) from the sensor accelerates by a + alpha x r +
    w x (w x r) (tangential and centripetal terms; alpha = dw/dt, the body rates w and alpha in the
    device frame), and gravity and the rotation are the same there. So acc' = acc + alpha x r +
    w x (w x r) and gyro' = gyro, with alpha estimated from the gyro by central differences.

    Args:
        x: (B, T, 6) physical units.
        r: (B, 3) or (3,) offsets in metres, device frame.
        rate_hz: the windows' sample rate (for alpha).

    Returns:
        (B, T, 6), same dtype.
    """
    gyro = x[..., 3:].to(torch.float64)
    r = torch.as_tensor(r, dtype=torch.float64, device=x.device).expand(x.shape[0], 3)[:, None, :]  # (B, 1, 3)
    alpha = torch.gradient(gyro, spacing=1.0 / rate_hz, dim=1)[0]
    extra = torch.linalg.cross(alpha, r.expand_as(alpha)) + torch.linalg.cross(gyro, torch.linalg.cross(gyro, r.expand_as(gyro)))
    return torch.cat([x[..., :3] + extra.to(x.dtype), x[..., 3:]], dim=-1)


@AUGMENTATIONS.register("lever_arm")
def lever_arm(x: Tensor, g: torch.Generator, reach: float = 0.3, rate_hz: float = 20.0) -> Tensor:
    """Move the sensor on its body segment: a pocket lower or higher on the thigh, a belt further round.

    A phone's place on a turning segment adds the tangential and centripetal accelerations of its
    offset from wherever the recording was made (`displace`): walking, a thigh turning at ~2 rad/s
    (results/body_position.md) adds several m/s^2 at 0.2 m. The offset r is drawn per window, in
    a uniformly random direction of the device frame, with |r| ~ U(0, reach) metres.

    Args:
        x: (B, T, 6) physical units (a 3-channel window has no gyro and is returned).
        g: generator for all randomness.
        reach: the largest offset in metres (0 disables).
        rate_hz: the windows' sample rate.
    """
    _check_window(x)
    if reach <= 0 or x.shape[-1] != 6:
        return x
    d = _randn((x.shape[0], 3), g, x)
    r = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12) * (reach * _rand((x.shape[0], 1), g, x))
    return displace(x, r, rate_hz)


@AUGMENTATIONS.register("turn")
def turn(x: Tensor, g: torch.Generator, rate: float = 0.5, rate_hz: float = 20.0, scale: float = 0.0) -> Tensor:
    """The same activity done while turning: the whole body (and the device with it) turns about gravity at a
    further constant rate W ~ U(-rate, rate) rad/s, a corridor's bend, a stairwell's landing, or none of them.

    Why: in the datasets the stairs are stairwells. Every UCI stairs window turns about 100 degrees in its 6 s
    and every MotionSense one about 170, walking 4-15 degrees, and the sense of the turn gives the class away
    within a dataset (UCI upstairs 100 % counterclockwise, downstairs 0 %; MotionSense 5 % and 93 %:
    results/turning.md), so a head learns "turning" for stairs and its sense for up or down. The mirror image
    randomises the sense; this randomises the amount, so the class must come from the steps themselves.
    Physics: turning the body about the vertical changes nothing the device measures in its own frame but its
    rotation, which gains W about the vertical: gyro' = gyro + W u(t), with u(t) the up direction in the device
    frame at each sample (the window's gravity, carried through the device's own turning by its integrated
    gyro, `orientation`); acc is unchanged, and since u is gravity's direction the result still obeys
    d(acc)/dt = -gyro' x acc for gravity. The centripetal acceleration of the bend (speed x W, at most about
    0.6 m/s^2 at 1.2 m/s and 0.5 rad/s) is not modelled: the device frame does not say which way is forward.
    Measured (rate 0.5 in finetuning): every row lost 2.6-8.3 points (results/matrix-turn/): the amount of
    turning is a cue the datasets share. `scale` spans it instead of erasing it: the window's own mean turn
    rate about gravity is multiplied by k, log-uniform in [1 / (1 + scale), 1 + scale] (a stairwell's landings
    tighter or wider; a straight corridor stays straight), i.e. W also gains (k - 1) x that rate.

    Args:
        x: (B, T, 6) physical units (a 3-channel window has no gyro and is returned).
        g: generator for all randomness.
        rate: the largest added turn rate, rad/s (0: none; 0.5 is about 170 degrees in a 6 s window).
        rate_hz: the windows' sample rate.
        scale: spread of the factor k on the window's own turn rate (0: none; 1 gives k in [0.5, 2]).

    Returns:
        (B, T, C) windows, same dtype.
    """
    _check_window(x)
    if (rate <= 0 and scale <= 0) or x.shape[-1] != 6:
        return x
    w = (rate * (2 * _rand((x.shape[0], 1, 1), g, x) - 1)).to(torch.float64)  # (B, 1, 1)
    acc, gyro = x[..., :3].to(torch.float64), x[..., 3:].to(torch.float64)
    r = orientation(gyro, 1.0 / rate_hz)  # (B, T, 3, 3): device(t) -> device(middle)
    up = (r @ acc[..., None])[..., 0].mean(dim=1, keepdim=True)  # (B, 1, 3): gravity in the middle frame
    up = up / up.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    u = (r.transpose(-1, -2) @ up[..., None].expand(-1, x.shape[1], -1, -1))[..., 0]  # (B, T, 3) up in device(t)
    if scale > 0:
        lo = -math.log1p(scale)
        k = torch.exp(lo + (-2 * lo) * _rand((x.shape[0], 1, 1), g, x)).to(torch.float64)  # (B, 1, 1)
        w = w + (k - 1) * (gyro * u).sum(-1, keepdim=True).mean(dim=1, keepdim=True)  # the window's own turn rate
    return torch.cat([x[..., :3], (gyro + w * u).to(x.dtype)], dim=-1)


MOUNT_HZ = (3.0, 10.0)  # the mount's natural frequency, log-uniform in this range (capped at the Nyquist frequency)
MOUNT_DAMPING = (0.3, 1.0)  # its damping ratio, uniform: a resonance peak of up to 1 / (2 x 0.3) = 1.7x down to none


def mount_response(freq_hz: Tensor, natural_hz: Tensor, damping: Tensor) -> Tensor:
    """Frequency response of a mass on a spring and damper driven at its base: 1 / (1 - r^2 + 2j zeta r)
    with r = f / f_n. Gain 1 at 0 Hz (gravity and slow motion pass), 1 / (2 zeta) at f_n, falling as
    1 / r^2 above it; the phase lags by up to 180 degrees.

    Args:
        freq_hz: (F,) frequencies.
        natural_hz: (B, 1) natural frequencies f_n.
        damping: (B, 1) damping ratios zeta.

    Returns:
        (B, F) complex gains.
    """
    r = freq_hz[None, :] / natural_hz
    return 1.0 / torch.complex(1.0 - r * r, 2.0 * damping * r)


@AUGMENTATIONS.register("mount")
def mount(x: Tensor, g: torch.Generator, p: float = 0.5, rate_hz: float = 20.0) -> Tensor:
    """Record the motion through another mount: a belt clip, a tight or a loose pocket, a hand.

    The phone is not the body: it sits on fabric or a clip that acts as a spring and damper between
    them, so the device moves as the body's motion filtered by a second-order system (`mount_response`),
    a loose mount ringing near its natural frequency and cutting what lies above it, a rigid one passing
    everything. With probability p per window, the natural frequency is drawn log-uniform in `MOUNT_HZ`
    (capped at half the sample rate) and the damping ratio uniform in `MOUNT_DAMPING`, and every channel
    (acc and gyro, which describe one rigid device) is filtered with that one response, so the
    augmentation commutes with any rotation or reflection of the device frame; the window mean (the
    gravity estimate) is kept exactly. Filtering is done by FFT over the window padded by reflection at
    both ends, which keeps the edges free of wrap-around. A modelling assumption, not a measured mount:
    the ranges are chosen to leave the gait's step frequency (~1.8 Hz, results/cadence.md) nearly
    untouched. Measured: results/matrix-mount/ and results/matrix-worldvert/.

    Args:
        x: (B, T, C) physical units, C = 3 or 6.
        g: generator for all randomness.
        p: probability per window (0 disables).
        rate_hz: the windows' sample rate.

    Returns:
        (B, T, C) windows, same dtype.
    """
    _check_window(x)
    if p <= 0:
        return x
    b, t, _ = x.shape
    lo, hi = math.log(MOUNT_HZ[0]), math.log(min(MOUNT_HZ[1], rate_hz / 2))
    natural = torch.exp(lo + (hi - lo) * _rand((b, 1), g, x)).to(torch.float64)
    damping = (MOUNT_DAMPING[0] + (MOUNT_DAMPING[1] - MOUNT_DAMPING[0]) * _rand((b, 1), g, x)).to(torch.float64)
    on = _rand((b, 1, 1), g, x) < p
    xd = x.to(torch.float64)
    mean = xd.mean(dim=1, keepdim=True)
    pad = t // 2
    motion = torch.nn.functional.pad((xd - mean).transpose(1, 2), (pad, pad), mode="reflect")  # (B, C, T + 2 pad)
    n = motion.shape[-1]
    h = mount_response(torch.fft.rfftfreq(n, d=1.0 / rate_hz, dtype=torch.float64, device=x.device), natural, damping)
    out = torch.fft.irfft(torch.fft.rfft(motion, dim=-1) * h[:, None, :], n=n, dim=-1)[..., pad:pad + t]
    out = out - out.mean(dim=-1, keepdim=True)  # what the phase lag carries across the window's ends
    return torch.where(on, (out.transpose(1, 2) + mean).to(x.dtype), x)


@AUGMENTATIONS.register("time_warp")
def time_warp(x: Tensor, g: torch.Generator, cadence: float = 0.1) -> Tensor:
    """Cadence change: replay each window s times faster, s ~ U(1 - cadence, 1 + cadence).

    Physics: the same person walking faster or slower (step frequency varies by about +-10 %
    within and across people). Output step i reads the input at time i * s by linear
    interpolation, keeping the length T. With s > 1 this reads beyond the last sample; such
    positions are *reflected* at the end (t -> 2 (T - 1) - t), which keeps the signal continuous
    and its values realistic, where clamping would create an unphysical flat tail. Amplitudes are
    not rescaled (a faster gait also moves harder; that is left to gain_bias).

    Args:
        x: (B, T, C) windows.
        g: generator for all randomness.
        cadence: half-width of the speed range, in [0, 1).
    """
    _check_window(x)
    if not 0 <= cadence < 1:
        raise ValueError(f"cadence must be in [0, 1), got {cadence}")
    speed = 1 + cadence * (2 * torch.rand((x.shape[0], 1), generator=g, device=g.device, dtype=torch.float64) - 1)
    return replay(x, speed)


def replay(x: Tensor, speed: Tensor | float) -> Tensor:
    """Each window replayed `speed` times as fast (time_warp's resampling, with a given speed).

    Args:
        x: (B, T, C) windows.
        speed: a float, or (B, 1) float64 speeds, > 0.

    Returns:
        (B, T, C): step i reads the input at time i * speed (linear interpolation, `replay_weights`), positions
        past the last sample reflected back from it.
    """
    b, t, c = x.shape
    i0, i1, w = (a.to(x.device).expand(b, t) for a in replay_weights(t, speed))
    w = w.to(x.dtype)[:, :, None]
    x0 = x.gather(1, i0[:, :, None].expand(b, t, c))
    x1 = x.gather(1, i1[:, :, None].expand(b, t, c))
    return x0 * (1 - w) + x1 * w


# ---------------------------------------------------------------------------------------------
# CrossHAR's contrastive views (TS-TCC): not physical, kept for the paper's recipe only
# ---------------------------------------------------------------------------------------------

def tstcc_views(x: Tensor, g: torch.Generator, scale_mean: float = 2.0, scale_std: float = 1.1,
                max_segments: int = 5, jitter: float = 0.8) -> tuple[Tensor, Tensor]:
    """CrossHAR's weak and strong views (TS-TCC, Eldele et al. 2021), for the `paper` recipe.

    Weak: every channel multiplied by a factor ~ N(scale_mean, scale_std). Strong: the window cut
    into 2..max_segments pieces at random points, the pieces shuffled, plus Gaussian jitter of
    `jitter` times each channel's standard deviation in the window. Neither is a physical model of
    another recording (a shuffled window is no motion anyone makes, and per-channel scaling breaks
    the acc/gyro rotation law); crosshar's own recipe uses two physically augmented views instead.

    Args:
        x: (B, T, C) windows.
        g: generator for all randomness.

    Returns:
        (weak, strong), each (B, T, C).
    """
    _check_window(x)
    b, t, c = x.shape
    weak = x * (scale_mean + scale_std * _randn((b, 1, c), g, x))
    n_seg = torch.randint(2, max_segments + 1, (b,), generator=g, device=g.device).cpu()
    order = []
    for i in range(b):
        cuts = torch.sort(torch.randperm(t - 1, generator=g, device=g.device)[: int(n_seg[i]) - 1].cpu() + 1).values
        pieces = torch.tensor_split(torch.arange(t), cuts)
        perm = torch.randperm(len(pieces), generator=g, device=g.device).cpu()
        order.append(torch.cat([pieces[j] for j in perm]))
    idx = torch.stack(order).to(x.device)  # (B, T)
    strong = x.gather(1, idx[:, :, None].expand(b, t, c))
    strong = strong + jitter * x.std(dim=1, keepdim=True) * _randn(tuple(x.shape), g, x)
    return weak, strong


# ---------------------------------------------------------------------------------------------
# composition
# ---------------------------------------------------------------------------------------------

def enabled_steps(cfg: AugmentConfig, gyro: bool = True, rate_hz: float = 20.0) -> list[tuple[str, tuple]]:
    """(registered augmentation, its arguments after (x, g)) for every operation `cfg` enables, in
    physical order; a zero disables an operation, and without gyro its gyro-only parts (`rate_hz`:
    the windows' sample rate)."""
    steps = [
        ("time_warp", cfg.cadence > 0, (cfg.cadence,)),
        ("body_amplitude", cfg.body_amplitude > 0 or (gyro and cfg.gyro_amplitude > 0),
         (cfg.body_amplitude, cfg.gyro_amplitude)),
        ("swing", gyro and cfg.swing > 0, (cfg.swing, rate_hz)),
        ("lever_arm", gyro and cfg.lever_arm > 0, (cfg.lever_arm, rate_hz)),
        ("turn", gyro and (cfg.turn > 0 or cfg.turn_scale > 0), (cfg.turn, rate_hz, cfg.turn_scale)),
        ("mount", cfg.mount > 0, (cfg.mount, rate_hz)),
        ("rotate", cfg.rotation_p > 0, (cfg.rotation_p,)),
        ("permute_axes", cfg.axis_permute_p > 0, (cfg.axis_permute_p,)),
        ("mirror", cfg.mirror_p > 0, (cfg.mirror_p, cfg.mirror_plane)),
        ("yaw", cfg.yaw_deg > 0, (cfg.yaw_deg,)),
        ("tilt", cfg.tilt_deg > 0, (cfg.tilt_deg,)),
        ("gain_bias", cfg.gain_std > 0 or cfg.bias_acc > 0 or (gyro and cfg.bias_gyro > 0),
         (cfg.gain_std, cfg.bias_acc, cfg.bias_gyro)),
        ("noise", cfg.noise_acc > 0 or (gyro and cfg.noise_gyro > 0), (cfg.noise_acc, cfg.noise_gyro)),
    ]
    return [(name, args) for name, on, args in steps if on]


class Augmenter:
    """All enabled augmentations of an AugmentConfig, composed in physical order, each called
    through the augmentation registry (`enabled_steps`).

    Order: time warp, body-position amplitude, swing, lever arm and turn (the motion itself), the mount the device
    moves through, device orientation and
    side of the body (rotation, axis permutation, mirror, heading, tilt),
    sensor calibration (gain and bias, in the device frame), sensor noise. A zero in the config
    disables an operation, so an all-zero AugmentConfig gives the identity. With 3 channels the
    gyro parts are skipped.

    Args:
        cfg: AugmentConfig.
        n_channels: 3 (acc) or 6 (acc + gyro); checked against every batch.
        rate_hz: the windows' sample rate (the swing integrates the gyro).

    Example:
        >>> aug = Augmenter(AugmentConfig(), n_channels=6)
        >>> v1, v2 = aug.two_views(x, torch.Generator().manual_seed(0))  # doctest: +SKIP
    """

    def __init__(self, cfg: AugmentConfig, n_channels: int = 6, rate_hz: float = 20.0):
        if n_channels not in (3, 6):
            raise ValueError(f"n_channels must be 3 or 6, got {n_channels}")
        self.cfg = cfg
        self.n_channels = n_channels
        self.rate_hz = rate_hz
        self.steps = enabled_steps(cfg, gyro=n_channels == 6, rate_hz=rate_hz)

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        """x: (B, T, C) physical units -> (B, T, C) augmented, same dtype and device."""
        _check_window(x)
        if x.shape[-1] != self.n_channels:
            raise ValueError(f"Augmenter built for {self.n_channels} channels, got {x.shape[-1]}")
        for name, args in self.steps:
            x = AUGMENTATIONS.get(name)(x, g, *args)
        return x

    def two_views(self, x: Tensor, g: torch.Generator, kind: str = "physical") -> tuple[Tensor, Tensor]:
        """Two views of the same windows for contrastive learning: two independent physical
        augmentations ("physical"), or one physical augmentation then CrossHAR's weak and strong
        TS-TCC views of it ("tstcc", see `tstcc_views`)."""
        if kind == "tstcc":
            return tstcc_views(self(x, g), g)
        if kind != "physical":
            raise ValueError(f"views must be 'physical' or 'tstcc', got {kind!r}")
        return self(x, g), self(x, g)

    def __repr__(self) -> str:
        return f"Augmenter({self.cfg!r}, n_channels={self.n_channels}, rate_hz={self.rate_hz})"
