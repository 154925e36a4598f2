"""Camera pose encoding in VGGT's convention.

Conventions (used throughout geokit):

* extrinsics are OpenCV **camera-from-world** ``[R | t]`` matrices, shape ``(..., 3, 4)``
  (``x_cam = R @ x_world + t``; x right, y down, z forward);
* intrinsics are pixel-unit ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, shape ``(..., 3, 3)``, with the principal
  point assumed at the image centre ``(W / 2, H / 2)``;
* quaternions are **XYZW** (scalar last, as VGGT), standardised to ``w >= 0``. kornia uses WXYZ internally; the
  conversions here reorder;
* the pose encoding is ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` with ``fov_h = 2 * atan((H / 2) / fy)`` and
  ``fov_w = 2 * atan((W / 2) / fx)`` in radians.
"""
from __future__ import annotations

import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix, rotation_matrix_to_quaternion

__all__ = ['rotation_matrix_to_quaternion_xyzw', 'quaternion_xyzw_to_rotation_matrix',
           'extrinsics_intrinsics_to_pose_encoding', 'pose_encoding_to_extrinsics_intrinsics',
           'normalize_to_first_frame', 'closed_form_inverse_se3']


def _check_trailing(name: str, tensor: torch.Tensor, trailing: tuple[int, ...]) -> None:
    if tuple(tensor.shape[-len(trailing):]) != trailing or tensor.dim() < len(trailing):
        expected = ', '.join(['...'] + [str(s) for s in trailing])
        raise ValueError(f'{name} must have shape ({expected}), got {tuple(tensor.shape)}.')


def rotation_matrix_to_quaternion_xyzw(rotation: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` XYZW with ``w >= 0``."""
    _check_trailing('rotation', rotation, (3, 3))
    lead = rotation.shape[:-2]
    quat_wxyz = rotation_matrix_to_quaternion(rotation.reshape(-1, 3, 3), eps=1e-12)
    quat_wxyz = torch.where(quat_wxyz[:, :1] < 0, -quat_wxyz, quat_wxyz)
    return torch.cat([quat_wxyz[:, 1:], quat_wxyz[:, :1]], dim=-1).reshape(*lead, 4)


def quaternion_xyzw_to_rotation_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(..., 4)`` XYZW (normalised here, need not be unit) -> rotation matrices ``(..., 3, 3)``."""
    _check_trailing('quaternion', quaternion, (4,))
    lead = quaternion.shape[:-1]
    q = quaternion.reshape(-1, 4)
    q = q / (q * q).sum(-1, keepdim=True).clamp(min=1e-24).sqrt()
    quat_wxyz = torch.cat([q[:, 3:], q[:, :3]], dim=-1)
    return quaternion_to_rotation_matrix(quat_wxyz).reshape(*lead, 3, 3)


def extrinsics_intrinsics_to_pose_encoding(extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                                           image_hw: tuple[int, int]) -> torch.Tensor:
    """Encode cameras as ``[t (3), quaternion XYZW (4), fov_h, fov_w]``.

    Args:
        extrinsics: ``(..., 3, 4)`` camera-from-world.
        intrinsics: ``(..., 3, 3)`` in pixels (only ``fx``, ``fy`` are used).
        image_hw: ``(H, W)`` of the image the intrinsics refer to.

    Returns:
        ``(..., 9)`` pose encoding, FoV in radians.
    """
    _check_trailing('extrinsics', extrinsics, (3, 4))
    _check_trailing('intrinsics', intrinsics, (3, 3))
    if extrinsics.shape[:-2] != intrinsics.shape[:-2]:
        raise ValueError(f'extrinsics and intrinsics need the same leading shape, got {tuple(extrinsics.shape)} and '
                         f'{tuple(intrinsics.shape)}.')
    height, width = image_hw
    quat = rotation_matrix_to_quaternion_xyzw(extrinsics[..., :3, :3])
    fov_h = 2 * torch.atan((height / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((width / 2) / intrinsics[..., 0, 0])
    return torch.cat([extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1)


def pose_encoding_to_extrinsics_intrinsics(pose_enc: torch.Tensor,
                                           image_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` into cameras.

    Args:
        pose_enc: ``(..., 9)`` pose encoding (the quaternion need not be unit).
        image_hw: ``(H, W)``; the principal point is put at ``(W / 2, H / 2)``.

    Returns:
        ``extrinsics (..., 3, 4)`` camera-from-world and ``intrinsics (..., 3, 3)`` in pixels.
    """
    _check_trailing('pose_enc', pose_enc, (9,))
    height, width = image_hw
    rotation = quaternion_xyzw_to_rotation_matrix(pose_enc[..., 3:7])
    extrinsics = torch.cat([rotation, pose_enc[..., :3, None]], dim=-1)
    fy = (height / 2) / torch.tan(pose_enc[..., 7] / 2)
    fx = (width / 2) / torch.tan(pose_enc[..., 8] / 2)
    zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
    intrinsics = torch.stack([fx, zeros, zeros + width / 2,
                              zeros, fy, zeros + height / 2,
                              zeros, zeros, ones], dim=-1).reshape(*fx.shape, 3, 3)
    return extrinsics, intrinsics


def closed_form_inverse_se3(extrinsics: torch.Tensor) -> torch.Tensor:
    """Invert rigid transforms ``(..., 3, 4)`` (``[R | t] -> [R^T | -R^T t]``) without a general matrix inverse."""
    _check_trailing('extrinsics', extrinsics, (3, 4))
    rot_t = extrinsics[..., :3, :3].transpose(-1, -2)
    return torch.cat([rot_t, -rot_t @ extrinsics[..., :3, 3:]], dim=-1)


def compose_se3(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``first @ second`` for rigid transforms ``(..., 3, 4)`` (apply ``second``, then ``first``)."""
    rotation = first[..., :3, :3] @ second[..., :3, :3]
    translation = first[..., :3, :3] @ second[..., :3, 3:] + first[..., :3, 3:]
    return torch.cat([rotation, translation], dim=-1)


def normalize_to_first_frame(extrinsics: torch.Tensor) -> torch.Tensor:
    """Re-express camera-from-world extrinsics ``(B, T, 3, 4)`` in the world frame of camera 0.

    ``E'_i = E_i @ E_0^{-1}``, so frame 0 becomes ``[I | 0]``. Scale is left unchanged.
    """
    if extrinsics.dim() != 4 or tuple(extrinsics.shape[-2:]) != (3, 4):
        raise ValueError(f'normalize_to_first_frame expects extrinsics of shape (B, T, 3, 4), '
                         f'got {tuple(extrinsics.shape)}.')
    return compose_se3(extrinsics, closed_form_inverse_se3(extrinsics[:, :1]))
