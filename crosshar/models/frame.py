"""A gravity-aligned sensor frame: the physics of device orientation, factored out.

A phone on the waist (UCI), in a trouser pocket (MotionSense, WISDM) or on the wrist sees the same
movement in differently rotated axes. Rotating every window so that its mean acceleration (the
gravity estimate: the dynamic part averages out over 6 s) lies on +z removes the tilt part of that
rotation and keeps gravity's magnitude (+9.8 on z at rest); what remains between devices is a
rotation about the vertical (the heading), which SO(3) rotation augmentation covers. The same
matrix is applied to acc and gyro, so the pair stays a consistent rigid-body reading.

The world frame goes one step further: a phone in a trouser pocket also turns *within* the window
(the thigh pitches with every stride), so one rotation per window leaves gravity swinging through
the horizontal axes. Integrating the gyro gives the device's orientation at every sample
(`orientation`); expressing every sample in the device frame of the middle sample removes that
turning, and the gravity frame then sets +z up.

The vertical frame goes the other way: it keeps, of each sample's acc and gyro in the gravity frame,
only what no turn about gravity can change, the horizontal magnitude and the vertical component, so
heading and handedness are removed by construction rather than learnt from augmentation. The coupled
frame adds back, per sample, the two products of the horizontal acc and rotation that no turn changes.
The world-vertical frame is the vertical frame taken in the world frame: its vertical axis is the true
vertical at every sample, not the window's mean gravity direction, so a pocket that pitches with the
thigh no longer leaks g (1 - cos(pitch)) of gravity into "vertical" and g sin(pitch) into "horizontal".
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from crosshar.limits import GRAVITY


def gravity_rotation(acc: Tensor) -> Tensor:
    """Rotation matrices R (B, 3, 3) with R @ mean_acc / |mean_acc| = +z for acc (B, T, 3).

    Rodrigues' formula for the rotation taking unit vector a to e_z. Windows whose gravity points
    into the lower hemisphere are first turned 180 degrees about x (a proper rotation), so the
    formula's 1 / (1 + a_z) never divides by ~0. Exportable to ONNX (no data-dependent control flow).
    """
    g = acc.mean(dim=1)
    a = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    flip = a[:, 2:3] < 0  # (B, 1)
    sign = torch.where(flip, -torch.ones_like(a[:, :1]), torch.ones_like(a[:, :1]))
    ax, ay, az = a[:, 0:1], a[:, 1:2] * sign, a[:, 2:3] * sign  # a after the flip F = diag(1, s, s)
    k = 1.0 / (1.0 + az)
    r0 = torch.cat([1 - ax * ax * k, -ax * ay * k, -ax], dim=1)
    r1 = torch.cat([-ax * ay * k, 1 - ay * ay * k, -ay], dim=1)
    r2 = torch.cat([ax, ay, az], dim=1)
    R = torch.stack([r0, r1, r2], dim=1)  # (B, 3, 3), rotates the flipped a onto e_z
    f = torch.cat([torch.ones_like(sign), sign, sign], dim=1)  # F = diag(f): identity or 180 deg about x
    return R * f[:, None, :]  # R @ F, written as a column scaling (ONNX has no diag_embed)


def so3_exp(w: Tensor) -> Tensor:
    """(..., 3, 3) rotations exp([w]x) of rotation vectors `w` (..., 3): Rodrigues' formula, written
    with sin(a)/a and (1 - cos(a))/a^2 so that it is smooth at w = 0 and exports to ONNX."""
    a2 = (w * w).sum(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    a = torch.sqrt(a2.clamp_min(1e-24))
    small = a2 < 1e-8
    s = torch.where(small, 1 - a2 / 6, torch.sin(a) / a)  # sin(a) / a
    c = torch.where(small, 0.5 - a2 / 24, (1 - torch.cos(a)) / a2.clamp_min(1e-24))  # (1 - cos(a)) / a^2
    x, y, z = w[..., 0:1], w[..., 1:2], w[..., 2:3]
    zero = torch.zeros_like(x)
    k = torch.cat([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*w.shape[:-1], 3, 3)  # [w]x
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye + s * k + c * (k @ k)


def orientation(gyro: Tensor, dt: float) -> Tensor:
    """The device's orientation at every sample of a window, integrated from its gyro.

    Args:
        gyro: (B, T, 3) body angular rate, rad/s.
        dt: sample period, s.

    Returns:
        (B, T, 3, 3) R(t), taking vectors in the device frame at sample t to the device frame at the
        middle sample T // 2 (so R(T // 2) = I): R(t + 1) = R(t) exp([w(t) dt]x). The running product is
        a parallel prefix scan (log2 T batched products, exportable to ONNX, no loop over time).
    """
    b, t, _ = gyro.shape
    p = so3_exp(gyro[:, :-1] * dt)  # (B, T - 1, 3, 3): the step from sample i to i + 1
    shift = 1
    while shift < t - 1:  # inclusive scan: p[i] = step_0 @ ... @ step_i
        p = torch.cat([p[:, :shift], p[:, :-shift] @ p[:, shift:]], dim=1)
        shift *= 2
    eye = torch.eye(3, dtype=gyro.dtype, device=gyro.device).expand(b, 1, 3, 3)
    r = torch.cat([eye, p], dim=1)  # (B, T, 3, 3): device(t) -> device(0)
    return r[:, t // 2 : t // 2 + 1].transpose(-1, -2) @ r


def world_align(x: Tensor, rate_hz: float = 20.0) -> Tensor:
    """x: (B, T, 6) physical units -> acc and gyro in one frame fixed for the whole window: every sample
    expressed in the device frame of the middle sample (the gyro's `orientation`), then gravity-aligned.
    In a still world acc is then gravity alone, +z, however the device turned. A window without
    gyro (C = 3) has no turning to remove and gets the gravity frame."""
    if x.shape[-1] != 6:
        return gravity_align(x)
    r = orientation(x[..., 3:], 1.0 / rate_hz)  # (B, T, 3, 3)
    acc = (r @ x[..., :3, None])[..., 0]
    gyro = (r @ x[..., 3:, None])[..., 0]
    return gravity_align(torch.cat([acc, gyro], dim=-1))


def heading_turns(x: Tensor, k: int) -> Tensor:
    """The windows turned about their own gravity direction (the mean acc) by 0, 360/k, ... degrees.

    A turn about gravity changes the heading of the device and nothing else a gravity frame can see
    (in the gravity frame it is a rotation about +z); acc and gyro turn together. Exportable to ONNX.

    Args:
        x: (B, T, C) physical units, C = 3 or 6.
        k: number of turns.

    Returns:
        (k * B, T, C): turn j of window b at row j * B + b.
    """
    u = x[..., :3].mean(dim=1)
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 3)
    out = []
    for j in range(k):
        r = so3_exp(u * (2 * math.pi * j / k))  # (B, 3, 3)
        parts = [x[..., :3] @ r.transpose(1, 2)]
        if x.shape[-1] == 6:
            parts.append(x[..., 3:] @ r.transpose(1, 2))
        out.append(torch.cat(parts, dim=-1))
    return torch.cat(out, dim=0)


def gravity_align(x: Tensor) -> Tensor:
    """x: (B, T, C) physical units, C = 3 (acc) or 6 (acc, gyro) -> the same in the gravity frame."""
    R = gravity_rotation(x[..., :3])
    parts = [x[..., :3] @ R.transpose(1, 2)]
    if x.shape[-1] == 6:
        parts.append(x[..., 3:] @ R.transpose(1, 2))
    return torch.cat(parts, dim=-1)


def heading_rotation(acc_up: Tensor, eps: float = 1e-6) -> Tensor:
    """Rotations H (B, 3, 3) about +z that turn each window's main horizontal axis of motion onto +x.

    Input: acc in the gravity frame (B, T, 3), +z up. The axis is the principal eigenvector of the
    2 x 2 covariance of the horizontal acceleration (in closed form, so it exports to ONNX); its
    sign, which the eigenvector does not fix, is chosen so that the third moment of the motion
    along it is positive. Windows with no horizontal motion (e.g. sitting still) keep their axes.
    H is a proper rotation: what is left between two devices is at most a mirror image (y -> -y),
    which the mirror augmentation covers.
    """
    h = acc_up[..., :2] - acc_up[..., :2].mean(dim=1, keepdim=True)  # (B, T, 2)
    cxx, cyy, cxy = (h[..., 0] ** 2).mean(1), (h[..., 1] ** 2).mean(1), (h[..., 0] * h[..., 1]).mean(1)
    d = cxx - cyy
    r = torch.sqrt(d * d + 4 * cxy * cxy)
    # principal direction: (d + r, 2 cxy), or (2 cxy, r - d) when d < 0 (numerically the better of the two)
    vx = torch.where(d >= 0, d + r, 2 * cxy)
    vy = torch.where(d >= 0, 2 * cxy, r - d)
    n = torch.sqrt(vx * vx + vy * vy)
    ok = n > eps
    c = torch.where(ok, vx / n.clamp_min(eps), torch.ones_like(vx))
    s = torch.where(ok, vy / n.clamp_min(eps), torch.zeros_like(vy))
    skew = ((h[..., 0] * c[:, None] + h[..., 1] * s[:, None]) ** 3).mean(1)
    flip = torch.where(skew < 0, -torch.ones_like(c), torch.ones_like(c))
    c, s = c * flip, s * flip
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    # rotation by -theta about z: (c, s) -> (1, 0)
    return torch.stack([torch.stack([c, s, zero], 1), torch.stack([-s, c, zero], 1), torch.stack([zero, zero, one], 1)], 1)


def heading_align(x: Tensor) -> Tensor:
    """x: (B, T, C) physical units -> gravity frame, then turned about +z so that the main axis of
    horizontal motion is +x (`heading_rotation`): tilt and heading of the device both factored out."""
    x = gravity_align(x)
    H = heading_rotation(x[..., :3])
    parts = [x[..., :3] @ H.transpose(1, 2)]
    if x.shape[-1] == 6:
        parts.append(x[..., 3:] @ H.transpose(1, 2))
    return torch.cat(parts, dim=-1)


def vertical_align(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x: (B, T, C) physical units -> gravity frame, then each sample's vectors as (horizontal magnitude, 0,
    vertical component): acc and gyro each as what no turn of the device about gravity can change.

    Per sample, not per window: every sample's horizontal part is turned onto +x by its own rotation about
    +z, so the heading of the device and the direction of motion within the window are both gone. A mirror
    image (a reflection of one horizontal axis) leaves the acc channels unchanged and flips the sign of the
    vertical gyro only (an axial vector: turning left becomes turning right), which the mirror augmentation
    covers. Channel 1 (and 4) are zero; the shape stays (B, T, C) so heads and scaling are unchanged.
    """
    return _vertical(gravity_align(x), eps)


def _vertical(g: Tensor, eps: float) -> Tensor:
    """g: (B, T, C) in the gravity frame -> each 3-vector as (horizontal magnitude, 0, vertical component)."""
    parts = []
    for v in g.split(3, dim=-1):
        h = torch.sqrt(v[..., 0] ** 2 + v[..., 1] ** 2 + eps)
        parts.append(torch.stack([h, torch.zeros_like(h), v[..., 2]], dim=-1))
    return torch.cat(parts, dim=-1)


def world_vertical_align(x: Tensor, rate_hz: float = 20.0, eps: float = 1e-12) -> Tensor:
    """x: (B, T, C) physical units -> the world frame (`world_align`: the device's turning within the window
    removed with the integrated gyro, then gravity up), each sample's acc and gyro as (horizontal magnitude,
    0, vertical component) as in `vertical_align`. In a still world acc is (0, 0, g) at every sample however
    the device turns; a window without gyro (C = 3) gets the vertical frame."""
    return _vertical(world_align(x, rate_hz), eps)


def coupled_align(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x: (B, T, 6) physical units -> the vertical frame (`vertical_align`) with its two zero channels filled
    by what couples the horizontal acc a_h and the horizontal rotation w_h of each sample (gravity frame):

        channel 1: (a_h x w_h)_z, m/s^2 rad/s (scaled by 1 / g with the acc channels): unchanged by any turn
                   about gravity and by a mirror image (a polar and an axial vector: the sign survives);
        channel 4: (a_h . w_h) / g, g rad/s: unchanged by a turn, its sign flipped by a mirror image, as the
                   vertical gyro's is.

    The vertical frame keeps each vector's horizontal magnitude but loses how the two horizontal vectors
    lie against each other: whether the body accelerates forward while the segment pitches one way or the
    other (a knee lifting on a stair against one swinging through). These two products keep that and
    nothing of heading. A window without gyro (C = 3) gets the plain vertical frame.
    """
    if x.shape[-1] != 6:
        return vertical_align(x, eps)
    g = gravity_align(x)
    a, w = g[..., :3], g[..., 3:]
    cross = a[..., 0] * w[..., 1] - a[..., 1] * w[..., 0]
    dot = (a[..., 0] * w[..., 0] + a[..., 1] * w[..., 1]) / GRAVITY
    v = _vertical(g, eps)
    return torch.stack([v[..., 0], cross, v[..., 2], v[..., 3], dot, v[..., 5]], dim=-1)


def reverse_time(x: Tensor) -> Tensor:
    """The window played backwards, as a rigid-body reading: (B, T, C) -> (B, T, C).

    Under t -> -t acceleration, a second derivative of position, keeps its sign (acc(t) -> acc(-t))
    while the angular velocity, a first derivative of orientation, flips (w(t) -> -w(-t)); so the
    result still obeys d(acc)/dt = -w x acc and only the body's dynamics (a heel strike's sharp onset,
    a push-off's slow one, climbing against descending) can tell it from a real recording. Not an
    augmentation (a reversed upstairs is no upstairs): the arrow-of-time pretext task
    (PretrainConfig.arrow) asks the encoder which way a window runs.

    Args:
        x: (B, T, C) windows, C = 3 (acc) or 6 (acc + gyro), physical units.
    """
    if x.ndim != 3 or x.shape[-1] not in (3, 6):
        raise ValueError(f"expected windows of shape (B, T, 3) or (B, T, 6), got {tuple(x.shape)}")
    y = x.flip(1)
    if x.shape[-1] == 6:
        y = torch.cat([y[..., :3], -y[..., 3:]], dim=-1)
    return y
