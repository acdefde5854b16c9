"""A gravity-aligned sensor frame: the physics of device orientation, factored out.

A phone on the waist (UCI), in a trouser pocket (MotionSense, WISDM) or on the wrist sees the same
movement in differently rotated axes. Rotating every window so that its mean acceleration (the
gravity estimate: the dynamic part averages out over 6 s) lies on +z removes the tilt part of that
rotation and keeps gravity's magnitude (+9.8 on z at rest); what remains between devices is a
rotation about the vertical (the heading), which SO(3) rotation augmentation covers. The same
matrix is applied to acc and gyro, so the pair stays a consistent rigid-body reading.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
