"""Coloured point clouds from depth + cameras, and camera frustums as line sets."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geokit.geometry.pose_encoding import closed_form_inverse_se3, compose_se3
from geokit.geometry.projection import camera_to_world_points, depth_to_world_points


@dataclass
class SceneGeometry:
    """What one panel of a render shows: a coloured point cloud and camera frustums.

    Attributes:
        points: ``(N, 3)`` world points. colors: ``(N, 3)`` RGB in ``[0, 1]``.
        frustum_vertices: ``(V, 3)``; frustum_edges: ``(E, 2)`` vertex indices; frustum_colors: ``(E, 3)``.
        title: panel title.
    """

    points: torch.Tensor
    colors: torch.Tensor
    frustum_vertices: torch.Tensor
    frustum_edges: torch.Tensor
    frustum_colors: torch.Tensor
    title: str = ''


def depth_colormap(depth: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Colour depth values ``(...)`` with matplotlib's ``turbo`` map (near = blue) -> ``(..., 3)`` in ``[0, 1]``."""
    from matplotlib import colormaps

    valid = (depth > 0) if valid is None else valid
    values = depth[valid] if valid.any() else depth.new_ones(1)
    low, high = torch.quantile(values.float(), 0.02), torch.quantile(values.float(), 0.98)
    normalised = ((depth - low) / (high - low).clamp(min=1e-6)).clamp(0, 1)
    return torch.as_tensor(colormaps['turbo'](normalised.numpy())[..., :3], dtype=torch.float32)


def resize_frames(frames: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 video frames -> ``(T, h, w, 3)`` uint8 (bilinear), e.g. to colour a depth map's pixels."""
    if tuple(frames.shape[1:3]) == tuple(hw):
        return frames
    resized = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=hw, mode='bilinear', align_corners=False)
    return resized.round().clamp(0, 255).byte().permute(0, 2, 3, 1)


def first_frame_extrinsics(extrinsics: torch.Tensor) -> torch.Tensor:
    """Camera-from-world ``(T, 3, 4)`` re-expressed in the frame of camera 0 (camera 0 becomes ``[I | 0]``)."""
    return compose_se3(extrinsics, closed_form_inverse_se3(extrinsics[:1]))


def depth_to_colored_points(depth: torch.Tensor, extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                            images: torch.Tensor | None = None, stride: int = 2, max_points: int | None = 200_000,
                            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject depth maps into one coloured world point cloud.

    Args:
        depth: ``(T, H, W)`` z-depth (any unit; 0, negative or non-finite = invalid).
        extrinsics: ``(T, 3, 4)`` OpenCV camera-from-world. intrinsics: ``(T, 3, 3)`` pixels for ``(H, W)``.
        images: ``(T, H, W, 3)`` uint8 RGB (or float in ``[0, 1]``) for the colours; ``None`` colours by depth.
        stride: keep every ``stride``-th pixel in each direction.
        max_points: random subset (seeded) when more valid points remain; ``None`` keeps all.
    Returns:
        ``points (N, 3)`` float32 and ``colors (N, 3)`` float32 in ``[0, 1]``.
    """
    if depth.dim() != 3 or extrinsics.shape != (depth.shape[0], 3, 4) or intrinsics.shape != (depth.shape[0], 3, 3):
        raise ValueError(f'depth_to_colored_points expects depth (T, H, W), extrinsics (T, 3, 4), intrinsics '
                         f'(T, 3, 3), got {tuple(depth.shape)}, {tuple(extrinsics.shape)}, {tuple(intrinsics.shape)}.')
    if images is not None and tuple(images.shape) != (*depth.shape, 3):
        raise ValueError(f'images must be (T, H, W, 3) matching depth {tuple(depth.shape)}, got '
                         f'{tuple(images.shape)}; resize the frames or the depth first.')
    depth = depth.float()
    points = depth_to_world_points(depth, extrinsics.float(), intrinsics.float())[:, ::stride, ::stride]
    sub_depth = depth[:, ::stride, ::stride]
    valid = (sub_depth > 0) & torch.isfinite(sub_depth) & torch.isfinite(points).all(-1)
    if images is None:
        colors = depth_colormap(sub_depth, valid)
    else:
        colors = images[:, ::stride, ::stride].float()
        colors = colors / 255.0 if images.dtype == torch.uint8 else colors
    points, colors = points[valid], colors[valid]
    if max_points is not None and points.shape[0] > max_points:
        keep = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]
        points, colors = points[keep], colors[keep]
    return points.contiguous(), colors.clamp(0, 1).contiguous()


def camera_frustums(extrinsics: torch.Tensor, intrinsics: torch.Tensor, image_hw: tuple[int, int],
                    size: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Wire-frame pyramids for cameras: apex at the camera centre, base = image corners at depth ``size``.

    Args:
        extrinsics: ``(T, 3, 4)`` camera-from-world. intrinsics: ``(T, 3, 3)`` pixels. image_hw: ``(H, W)``.
        size: depth of the base in world units.
    Returns:
        ``vertices (T * 5, 3)`` (centre then 4 corners per camera) and ``edges (T * 8, 2)`` long vertex indices.
    """
    height, width = image_hw
    num = extrinsics.shape[0]
    corners_px = extrinsics.new_tensor([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]]).float()
    rays = corners_px @ torch.linalg.inv(intrinsics.float()).transpose(-1, -2)  # (T, 4, 3), z = 1
    local = torch.cat([extrinsics.new_zeros(num, 1, 3).float(), rays * size], dim=1)  # (T, 5, 3)
    vertices = camera_to_world_points(local, extrinsics.float()).reshape(-1, 3)
    pattern = torch.tensor([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1]])
    edges = (pattern[None] + 5 * torch.arange(num)[:, None, None]).reshape(-1, 2)
    return vertices, edges


def build_scene_geometry(depth: torch.Tensor, extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                         images: torch.Tensor | None = None, title: str = '', stride: int = 2,
                         max_points: int | None = 200_000, frustum_size: float | None = None,
                         frustum_color: tuple[float, float, float] = (0.85, 0.1, 0.1),
                         relative_to_first: bool = True) -> SceneGeometry:
    """Point cloud + frustums of one reconstruction (ground truth, teacher or prediction).

    Args:
        relative_to_first: express everything in camera 0's frame (so panels of different world frames line up).
        frustum_size: base depth of the frustums; ``None`` = 8% of the median valid depth.
        Others: see :func:`depth_to_colored_points`.
    """
    if relative_to_first:
        extrinsics = first_frame_extrinsics(extrinsics.float())
    points, colors = depth_to_colored_points(depth, extrinsics, intrinsics, images, stride, max_points)
    if frustum_size is None:
        valid = depth[(depth > 0) & torch.isfinite(depth)]
        frustum_size = 0.08 * float(valid.median()) if valid.numel() else 0.3
    vertices, edges = camera_frustums(extrinsics, intrinsics, tuple(depth.shape[-2:]), frustum_size)
    edge_colors = torch.tensor(frustum_color, dtype=torch.float32).expand(edges.shape[0], 3).clone()
    edge_colors[:8] = torch.tensor([0.1, 0.7, 0.1])  # the first camera in green
    return SceneGeometry(points, colors, vertices, edges, edge_colors, title)
