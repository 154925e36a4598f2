"""Unprojection of depth maps and projection of points (pinhole, OpenCV camera-from-world, pixel intrinsics).

Pixel ``(u, v)`` = (column, row) with pixel centres at integer coordinates (as kornia's and VGGT's meshgrids).
"""
from __future__ import annotations

import torch
from kornia.geometry.depth import depth_to_3d_v2

from .pose_encoding import closed_form_inverse_se3

__all__ = ['depth_to_camera_points', 'depth_to_world_points', 'project_points', 'camera_to_world_points']


def _check_depth_camera(depth: torch.Tensor, intrinsics: torch.Tensor) -> None:
    if depth.dim() < 2 or tuple(intrinsics.shape[-2:]) != (3, 3) or depth.shape[:-2] != intrinsics.shape[:-2]:
        raise ValueError(f'depth (..., H, W) and intrinsics (..., 3, 3) must share leading dims, got depth '
                         f'{tuple(depth.shape)} and intrinsics {tuple(intrinsics.shape)}.')


def depth_to_camera_points(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Unproject z-depth ``(..., H, W)`` with intrinsics ``(..., 3, 3)`` to camera-frame points ``(..., H, W, 3)``.

    Point of pixel ``(u, v)``: ``depth * K^{-1} [u, v, 1]``; units follow ``depth``.
    """
    _check_depth_camera(depth, intrinsics)
    lead, (height, width) = depth.shape[:-2], depth.shape[-2:]
    points = depth_to_3d_v2(depth.reshape(-1, height, width), intrinsics.reshape(-1, 3, 3))
    return points.reshape(*lead, height, width, 3)


def camera_to_world_points(points_cam: torch.Tensor, extrinsics: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(..., N, 3)`` -> world points with camera-from-world ``extrinsics (..., 3, 4)``."""
    world_from_cam = closed_form_inverse_se3(extrinsics)
    return points_cam @ world_from_cam[..., :3, :3].transpose(-1, -2) + world_from_cam[..., None, :3, 3]


def depth_to_world_points(depth: torch.Tensor, extrinsics: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Unproject depth ``(..., H, W)`` to world points ``(..., H, W, 3)``.

    Args:
        depth: ``(..., H, W)`` z-depth.
        extrinsics: ``(..., 3, 4)`` camera-from-world.
        intrinsics: ``(..., 3, 3)`` pixels.
    """
    _check_depth_camera(depth, intrinsics)
    if extrinsics.shape[:-2] != depth.shape[:-2] or tuple(extrinsics.shape[-2:]) != (3, 4):
        raise ValueError(f'extrinsics must have shape (..., 3, 4) with the leading dims of depth '
                         f'{tuple(depth.shape)}, got {tuple(extrinsics.shape)}.')
    height, width = depth.shape[-2:]
    points = depth_to_camera_points(depth, intrinsics).flatten(-3, -2)
    return camera_to_world_points(points, extrinsics).unflatten(-2, (height, width))


def project_points(points_world: torch.Tensor, extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                   eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points ``(..., N, 3)`` into cameras.

    Args:
        points_world: ``(..., N, 3)``.
        extrinsics: ``(..., 3, 4)`` camera-from-world.
        intrinsics: ``(..., 3, 3)`` pixels.
        eps: depths with ``|z| < eps`` are divided by ``eps`` (sign kept) so uv stays finite.

    Returns:
        ``uv (..., N, 2)`` pixel coordinates and ``depth (..., N)`` camera z (``<= 0``: behind the camera).
    """
    if points_world.shape[-1] != 3 or tuple(extrinsics.shape[-2:]) != (3, 4) or \
            tuple(intrinsics.shape[-2:]) != (3, 3):
        raise ValueError(f'project_points expects points (..., N, 3), extrinsics (..., 3, 4), intrinsics '
                         f'(..., 3, 3), got {tuple(points_world.shape)}, {tuple(extrinsics.shape)}, '
                         f'{tuple(intrinsics.shape)}.')
    cam = points_world @ extrinsics[..., :3, :3].transpose(-1, -2) + extrinsics[..., None, :3, 3]
    z = cam[..., 2]
    z_safe = torch.where(z.abs() < eps, torch.where(z < 0, -eps, eps) + torch.zeros_like(z), z)
    pix = cam @ intrinsics.transpose(-1, -2)
    return pix[..., :2] / z_safe[..., None], z
