"""Voxel keys of 3D points, for coverage-based frame selection (e.g. greedy max-coverage samplers)."""
from __future__ import annotations

import torch

__all__ = ['voxelize_points', 'frame_voxel_sets']

_BITS = 21
_OFFSET = 1 << (_BITS - 1)


def voxelize_points(points: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """Integer voxel key of each point.

    The voxel index ``floor(p / voxel_size)`` per axis (``[-2**20, 2**20)`` voxels per axis) is packed into one
    int64 (21 bits per axis), so equal keys mean the same voxel.

    Args:
        points: ``(N, 3)`` finite points (any unit; ``voxel_size`` in the same unit).
        voxel_size: edge length, ``> 0``.

    Returns:
        ``(N,)`` long keys.
    """
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f'voxelize_points expects points of shape (N, 3), got {tuple(points.shape)}.')
    if voxel_size <= 0:
        raise ValueError(f'voxel_size must be > 0, got {voxel_size}.')
    index = torch.floor(points.double() / voxel_size).long()
    if index.numel() and (index.min() < -_OFFSET or index.max() >= _OFFSET):
        raise ValueError(f'points span more than 2**{_BITS} voxels per axis at voxel_size={voxel_size}; '
                         f'increase voxel_size or drop far-away points.')
    index = index + _OFFSET
    return (index[:, 0] << (2 * _BITS)) | (index[:, 1] << _BITS) | index[:, 2]


def frame_voxel_sets(points: torch.Tensor, mask: torch.Tensor | None, voxel_size: float) -> list[torch.Tensor]:
    """Unique voxel keys seen by each frame.

    Args:
        points: ``(T, H, W, 3)`` world points per pixel.
        mask: ``(T, H, W)`` bool (e.g. confident pixels) or None; non-finite points are always dropped.
        voxel_size: voxel edge in the unit of ``points``.

    Returns:
        ``T`` sorted long tensors of unique keys (see :func:`voxelize_points`).
    """
    if points.dim() != 4 or points.shape[-1] != 3 or (mask is not None and mask.shape != points.shape[:-1]):
        raise ValueError(f'frame_voxel_sets expects points (T, H, W, 3) and mask (T, H, W), got '
                         f'{tuple(points.shape)} and {None if mask is None else tuple(mask.shape)}.')
    valid = torch.isfinite(points).all(-1)
    if mask is not None:
        valid = valid & mask.bool()
    return [torch.unique(voxelize_points(frame[keep], voxel_size)) for frame, keep in zip(points, valid)]
