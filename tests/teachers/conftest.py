"""Shared tiny fixtures for the teacher tests: a tiny VGGT config and a synthetic scene with exact geometry."""
from __future__ import annotations

import math

import pytest
import torch

TINY_VGGT = dict(img_size=56, image_size=56, patch_size=14, embed_dim=32, depth=2, num_heads=2,
                 patch_embed_cfg=dict(depth=1, num_heads=2), camera_head=dict(trunk_depth=1, num_heads=2),
                 dpt_head=dict(features=16, out_channels=(8, 16, 16, 16), intermediate_layer_idx=(0, 1, 1, 1)),
                 feature_layers=(0, 1))


@pytest.fixture
def tiny_vggt_cfg() -> dict:
    return dict(TINY_VGGT)


def rotation(yaw: float, pitch: float) -> torch.Tensor:
    """Camera-from-world rotation of an OpenCV camera with small yaw (about y) and pitch (about x)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return (rx @ ry).float()


def plane_scene(num_frames: int = 3, height: int = 42, width: int = 56, plane_z: float = 4.0,
                seed: int = 0) -> dict:
    """Cameras looking at the world plane ``z = plane_z`` (metres) with exact z-depth; some pixels invalid.

    Returns a sample dict with ``frames`` uint8 ``(T, H, W, 3)``, ``geometry`` (depth, extrinsics cam-from-world in
    a world frame that is not the first camera's, intrinsics) and ``meta``/``frame_indices``.
    """
    generator = torch.Generator().manual_seed(seed)
    focal = 0.8 * width
    intrinsics = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]]).float()
    v, u = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing='ij')
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.linalg.inv(intrinsics).T  # (H, W, 3), z = 1
    extrinsics, depths = [], []
    for i in range(num_frames):
        rot = rotation(0.15 * i - 0.1, 0.05 * i)
        centre = torch.tensor([0.3 * i + 0.5, -0.2 * i + 0.1, 0.2 * i]) + 0.05 * torch.randn(3, generator=generator)
        trans = -rot @ centre
        extrinsics.append(torch.cat([rot, trans[:, None]], 1))
        directions = rays @ rot  # world directions R^T r for each pixel
        depth = (plane_z - centre[2]) / directions[..., 2]
        depth[:3, :5] = 0.0  # a patch without ground truth
        depths.append(depth)
    frames = torch.randint(0, 256, (num_frames, height, width, 3), generator=generator, dtype=torch.uint8)
    return dict(frames=frames, frame_indices=torch.arange(num_frames) * 3,
                meta=dict(id=f'plane-{seed}', dataset='unit'),
                geometry=dict(depth=torch.stack(depths), extrinsics=torch.stack(extrinsics),
                              intrinsics=intrinsics.expand(num_frames, 3, 3).clone()))
