"""``OracleTeacher``: exact targets from a dataset's ground-truth geometry, in VGGT's training conventions."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from geokit.geometry import depth_to_world_points, extrinsics_intrinsics_to_pose_encoding, normalize_to_first_frame
from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

from .base import BaseTeacher, stack_frames
from .preprocess import TeacherView


def normalize_scene_scale(extrinsics: torch.Tensor, depth: torch.Tensor, intrinsics: torch.Tensor,
                          min_scale: float = 1e-6, max_scale: float = 1e6
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """VGGT's training normalisation of a video's geometry.

    Poses become relative to the first camera; the scene is divided by the mean distance of the valid pixels' 3D
    points (in the first camera's frame) to its origin, ``s = sum(|X| * valid) / (#valid + 1e-3)`` clamped to
    ``[min_scale, max_scale]`` (``normalize_camera_extrinsics_and_points_batch`` in VGGT's training code).

    Args:
        extrinsics: ``(B, T, 3, 4)`` camera-from-world, any world frame, metres.
        depth: ``(B, T, H, W)`` metres; 0 and non-finite values are invalid.
        intrinsics: ``(B, T, 3, 3)`` pixels of the depth maps.
    Returns:
        ``extrinsics (B, T, 3, 4)`` first-frame-relative with translations in scene units, ``depth (B, T, H, W)`` and
        ``points (B, T, H, W, 3)`` (first-camera frame) in scene units, and ``scale (B,)`` in metres per scene unit;
        invalid pixels have depth 0 and points 0. A video without any valid pixel has no scene scale: its scale is
        NaN and its geometry is left unscaled (:meth:`TeacherTargets.masked_invalid` then excludes it).
    """
    relative = normalize_to_first_frame(extrinsics.float())
    depth = torch.where(torch.isfinite(depth), depth.float(), torch.zeros((), device=depth.device))
    valid = depth > 0
    points = depth_to_world_points(depth.float(), relative, intrinsics.float())
    distance = (points.norm(dim=-1) * valid).sum(dim=(1, 2, 3))
    has_valid = valid.flatten(1).any(1)
    scale = (distance / (valid.sum(dim=(1, 2, 3)) + 1e-3)).clamp(min_scale, max_scale)
    scale = torch.where(has_valid, scale, torch.ones_like(scale))
    relative = torch.cat([relative[..., :3], relative[..., 3:] / scale[:, None, None, None]], dim=-1)
    inv = 1.0 / scale
    points = torch.where(valid[..., None], points * inv[:, None, None, None, None], torch.zeros_like(points))
    scale = torch.where(has_valid, scale, torch.full_like(scale, float('nan')))
    return relative, depth * inv[:, None, None, None], points, scale


@TEACHERS.register_module()
class OracleTeacher(BaseTeacher):
    """Ground truth as a teacher: ``pose_enc``, ``depth``, ``points`` and exact ``metric_scale``; no features.

    The ground truth (``geometry`` of the samples) is warped to the teacher's pixel grid with the same
    :class:`~geokit.models.teachers.preprocess.TeacherView` a VGGT teacher uses (so oracle and VGGT targets are
    interchangeable), then normalised with :func:`normalize_scene_scale`. ``metric_scale`` is metres per teacher
    unit. ``depth_conf``/``points_conf`` are 1 on valid pixels and 0 where the ground truth has no depth (depth 0,
    NaN or inf); a video without any valid pixel is excluded from the objectives (``sample_valid``).

    Args:
        image_size, patch_size, mode: the teacher view (match the VGGT teacher it stands in for).
    """

    def __init__(self, image_size: int = 518, patch_size: int = 14, mode: str = 'crop') -> None:
        super().__init__()
        self.view = TeacherView(image_size=image_size, patch_size=patch_size, mode=mode)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor, meta: Sequence[dict] | None,
                geometry: Sequence[dict | None]) -> TeacherTargets:
        frames = stack_frames(frames)
        if geometry is None or len(geometry) != frames.shape[0] or any(g is None for g in geometry):
            missing = [m.get('video') or m.get('id') for m, g in zip(meta or [], geometry or []) if g is None] \
                or [m.get('id') for m in meta or []]
            raise ValueError(f'OracleTeacher needs ground-truth geometry for every sample, and {missing} have none. '
                             f'The dataset reads it from the annotation row\'s `geometry` file, else from '
                             f'geometry.safetensors next to the video, and only with `load_geometry=True`: set '
                             f'`load_geometry=True` in this dataloader\'s dataset, put the geometry file there, or '
                             f'use a teacher that needs no ground truth (VGGTTeacher, CachedTeacher).')
        height, width = frames.shape[2:4]
        depth = torch.stack([torch.as_tensor(g['depth']) for g in geometry]).float()
        extrinsics = torch.stack([torch.as_tensor(g['extrinsics']) for g in geometry]).float()
        intrinsics = torch.stack([torch.as_tensor(g['intrinsics']) for g in geometry]).float()
        if depth.shape[:2] != frames.shape[:2] or extrinsics.shape[:2] != frames.shape[:2]:
            raise ValueError(f'geometry does not match the frames: frames {tuple(frames.shape)}, depth '
                             f'{tuple(depth.shape)}, extrinsics {tuple(extrinsics.shape)}.')
        depth_hw = tuple(depth.shape[-2:])
        depth = self.view.depth(torch.where(torch.isfinite(depth), depth, torch.zeros(())))
        intrinsics = self.view.intrinsics(intrinsics, depth_hw)
        if depth_hw != (height, width):
            raise ValueError(f'ground-truth depth {depth_hw} and frames {(height, width)} differ in size; the '
                             f'dataset must return depth at frame resolution.')
        relative, depth, points, scale = normalize_scene_scale(extrinsics, depth, intrinsics)
        image_hw = tuple(depth.shape[-2:])
        valid = (depth > 0).float()
        pose_enc = extrinsics_intrinsics_to_pose_encoding(relative, intrinsics, image_hw)
        targets = TeacherTargets(pose_enc=pose_enc, depth=depth, depth_conf=valid, points=points, points_conf=valid,
                                 metric_scale=scale, image_hw=image_hw)
        return targets.masked_invalid([m.get('video') or m.get('id') for m in meta] if meta else None)
