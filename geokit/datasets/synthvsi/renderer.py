"""Pure-PyTorch ray caster for SynthVSI scenes: rays x yaw-rotated boxes, vectorised over pixels and primitives.

Every object is one or a few boxes (its category's parts, see :mod:`.categories`); the room is the inside of an
axis-aligned box. A pixel's ray is ``d = R_wc K^-1 [u, v, 1]^T``; because that direction has unit z in camera
coordinates, the ray parameter of the first hit *is* the z-depth along the optical axis (OpenCV convention).
Shading is Lambertian (two directional lights + ambient) on a per-category albedo modulated by a procedural pattern
and value noise evaluated at the 3D hit point, so textures stay fixed to surfaces across frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .categories import CATEGORY_BY_NAME, PATTERNS

_EPS = 1e-6
_LIGHTS = torch.tensor([[0.35, 0.25, 0.90], [-0.5, -0.7, 0.3]])
_LIGHT_WEIGHTS = (0.55, 0.2)
_AMBIENT = 0.35
# room surfaces: floor, ceiling, walls
_FLOOR_RGB, _CEILING_RGB = (0.62, 0.50, 0.38), (0.93, 0.93, 0.92)


@dataclass
class BoxSet:
    """Primitive boxes of a scene (float32 tensors).

    Attributes:
        center: ``(P, 3)`` world metres. half: ``(P, 3)`` half extents. yaw: ``(P,)`` radians about +z.
        instance: ``(P,)`` long, object instance id (>= 1). albedo: ``(P, 3)`` in [0, 1]. pattern: ``(P,)`` long
        index into :data:`~.categories.PATTERNS`.
    """

    center: torch.Tensor
    half: torch.Tensor
    yaw: torch.Tensor
    instance: torch.Tensor
    albedo: torch.Tensor
    pattern: torch.Tensor


def scene_boxes(scene: dict) -> BoxSet:
    """Expand a scene's objects into their part boxes."""
    rows = []
    for obj in scene['objects']:
        category = CATEGORY_BY_NAME[obj['category']]
        size, center, yaw = np.array(obj['size']), np.array(obj['center']), obj['yaw']
        c, s = math.cos(yaw), math.sin(yaw)
        for (fx, fy, fz), shade in category.parts:
            lo = np.array([fx[0], fy[0], fz[0]]) - 0.5
            hi = np.array([fx[1], fy[1], fz[1]]) - 0.5
            local = (lo + hi) / 2.0 * size
            world = center + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1], local[2]])
            rows.append((world, (hi - lo) * size / 2.0, yaw, obj['instance_id'],
                         np.array(category.color) * shade, PATTERNS.index(category.pattern)))
    if not rows:
        empty = torch.zeros(0, 3)
        return BoxSet(empty, empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), empty,
                      torch.zeros(0, dtype=torch.long))
    return BoxSet(center=torch.tensor(np.stack([r[0] for r in rows]), dtype=torch.float32),
                  half=torch.tensor(np.stack([r[1] for r in rows]), dtype=torch.float32),
                  yaw=torch.tensor([r[2] for r in rows], dtype=torch.float32),
                  instance=torch.tensor([r[3] for r in rows], dtype=torch.long),
                  albedo=torch.tensor(np.stack([r[4] for r in rows]), dtype=torch.float32),
                  pattern=torch.tensor([r[5] for r in rows], dtype=torch.long))


def _safe_inverse(x: torch.Tensor) -> torch.Tensor:
    """``1 / x`` with exact zeros nudged to a tiny positive value (slab tests need finite, signed inverses)."""
    return torch.reciprocal(x.masked_fill(x == 0, _EPS))


def _rotate_z(v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``(..., 3)`` vectors by angles given as broadcastable cos/sin ``(...)`` about +z."""
    x, y = v[..., 0], v[..., 1]
    return torch.stack([cos * x - sin * y, sin * x + cos * y, v[..., 2]], dim=-1)


def _hash_noise(points: torch.Tensor, cell: float) -> torch.Tensor:
    """Deterministic value noise in [0, 1) from the integer cell of ``points (N, 3)``."""
    k = torch.floor(points / cell)
    k = torch.remainder(k, 1024.0)
    return torch.frac(torch.sin(k[:, 0] * 12.9898 + k[:, 1] * 78.233 + k[:, 2] * 37.719) * 43758.5453).abs()


def _pattern_value(local: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """Pattern modulation in [0.7, 1] at object-local (or world) points ``(N, 3)``; ``pattern (N,)``."""
    stripes = (torch.sin(local[:, 0] * (2 * math.pi / 0.12)) > 0).float()
    checker = torch.remainder(torch.floor(local / 0.15).sum(-1), 2.0)
    grain = 0.5 + 0.5 * torch.sin(local[:, 0] * 40.0 + 6.0 * _hash_noise(local, 0.2))
    options = torch.stack([torch.ones_like(stripes), 1.0 - 0.2 * stripes, 1.0 - 0.25 * checker,
                           1.0 - 0.2 * grain], dim=-1)
    return options.gather(-1, pattern[:, None]).squeeze(-1)


def _frustum_cull(boxes: BoxSet, extrinsics: torch.Tensor, intrinsics: torch.Tensor,
                  image_hw: tuple[int, int]) -> torch.Tensor:
    """Which boxes' bounding spheres touch each camera's view frustum. Returns bool ``(T, P)``."""
    height, width = image_hw
    radius = boxes.half.norm(dim=-1)                                                       # (P,)
    centers = torch.einsum('tij,pj->tpi', extrinsics[:, :, :3], boxes.center) + extrinsics[:, None, :, 3]
    fx, fy, cx, cy = (intrinsics[:, 0, 0], intrinsics[:, 1, 1], intrinsics[:, 0, 2], intrinsics[:, 1, 2])
    zero = torch.zeros_like(fx)
    normals = torch.stack([torch.stack([fx, zero, cx], -1), torch.stack([-fx, zero, width - cx], -1),
                           torch.stack([zero, fy, cy], -1), torch.stack([zero, -fy, height - cy], -1),
                           torch.stack([zero, zero, torch.ones_like(fx)], -1)], dim=1)     # (T, 5, 3)
    normals = normals / normals.norm(dim=-1, keepdim=True)
    signed = torch.einsum('tkj,tpj->tpk', normals, centers)                               # (T, P, 5)
    return (signed >= -radius[None, :, None]).all(dim=-1)


def _shade(normal: torch.Tensor) -> torch.Tensor:
    lights = _LIGHTS / _LIGHTS.norm(dim=-1, keepdim=True)
    lambert = sum(w * (normal @ light).clamp(min=0.0) for w, light in zip(_LIGHT_WEIGHTS, lights))
    return _AMBIENT + lambert


def _wall_albedo(room_size: torch.Tensor) -> torch.Tensor:
    """A pale wall colour that varies with the room (so rooms differ), deterministic in the room size."""
    phase = float(torch.frac(room_size.sum() * 0.37))
    return torch.tensor([0.78 + 0.12 * phase, 0.80, 0.86 - 0.12 * phase])


def render(boxes: BoxSet, room_size, extrinsics: torch.Tensor, intrinsics: torch.Tensor,
           image_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Render RGB, z-depth and instance ids for ``T`` cameras.

    Args:
        boxes: the scene's primitive boxes (:func:`scene_boxes`).
        room_size: ``(Lx, Ly, height)`` metres; the room is ``[0, Lx] x [0, Ly] x [0, height]``.
        extrinsics: ``(T, 3, 4)`` OpenCV camera-from-world.
        intrinsics: ``(T, 3, 3)`` pixels.
        image_hw: ``(H, W)``.

    Returns:
        ``rgb`` uint8 ``(T, H, W, 3)``, ``depth`` float32 ``(T, H, W)`` metres (z along the optical axis),
        ``instance`` int32 ``(T, H, W)`` (object instance id, 0 = room surfaces).
    """
    height, width = image_hw
    extrinsics = extrinsics.float()
    intrinsics = intrinsics.float()
    num_frames = extrinsics.shape[0]
    room = torch.as_tensor(room_size, dtype=torch.float32)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing='ij')
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3)            # (N, 3)
    rays_cam = pixels @ torch.linalg.inv(intrinsics).transpose(1, 2)                     # (T, N, 3), z = 1
    world_from_cam = extrinsics[:, :, :3].transpose(1, 2)
    origins = -(world_from_cam @ extrinsics[:, :, 3:]).squeeze(-1)                        # (T, 3)
    directions = rays_cam @ extrinsics[:, :, :3]                                          # (T, N, 3) = R^T d
    num_rays = height * width
    num_boxes = boxes.center.shape[0]
    cos, sin = torch.cos(boxes.yaw), torch.sin(boxes.yaw)
    # Local ray directions of every box are one matmul: (N, 3) @ (3, 3P), columns = each box's local axes.
    zeros, ones = torch.zeros_like(cos), torch.ones_like(cos)
    to_local = torch.stack([torch.stack([cos, sin, zeros], -1), torch.stack([-sin, cos, zeros], -1),
                            torch.stack([zeros, zeros, ones], -1)], dim=1)                # (P, 3 local, 3 world)
    visible = _frustum_cull(boxes, extrinsics, intrinsics, image_hw)                     # (T, P)
    depth_out, rgb_out, inst_out = [], [], []
    for frame in range(num_frames):
        o = origins[frame].expand(num_rays, 3)
        d = directions[frame]
        # room: the camera is inside, the surface hit is where the ray leaves the room box
        inv_d = _safe_inverse(d)
        t_exit_axes = torch.maximum((0.0 - o) * inv_d, (room - o) * inv_d)
        t_room, room_axis = t_exit_axes.min(dim=-1)
        t_best, box_best = t_room, torch.full_like(room_axis, -1)
        selected = visible[frame].nonzero().squeeze(-1)
        if len(selected):
            # slab test per box: t = (+-half - o_local) / d_local, with o_local shared by all rays of the frame
            rot = to_local[selected]
            o_local = torch.einsum('pij,pj->pi', rot, origins[frame] - boxes.center[selected]).reshape(-1)
            inv_local = _safe_inverse(d @ rot.permute(2, 0, 1).reshape(3, -1))           # (N, 3P')
            half = boxes.half[selected].reshape(-1)
            t1, t2 = (-half - o_local) * inv_local, (half - o_local) * inv_local
            t_near = torch.minimum(t1, t2).reshape(num_rays, -1, 3).amax(dim=-1)
            t_far = torch.maximum(t1, t2).reshape(num_rays, -1, 3).amin(dim=-1)
            t_box = t_near.masked_fill((t_far < t_near) | (t_near <= 1e-4), float('inf'))
            t_obj, idx = t_box.min(dim=-1)
            use_obj = t_obj < t_best
            t_best = torch.where(use_obj, t_obj, t_best)
            box_best = torch.where(use_obj, selected[idx], box_best)
        on_obj = box_best >= 0
        b = box_best.clamp(min=0)
        if num_boxes:
            cb, sb, center_b, half_b = cos[b], sin[b], boxes.center[b], boxes.half[b]
        else:  # an empty room: every ray hits a room surface
            cb, sb = torch.ones_like(t_best), torch.zeros_like(t_best)
            center_b, half_b = torch.zeros_like(d), torch.ones_like(d)
        local_o = _rotate_z(o - center_b, cb, -sb)
        local_d = _rotate_z(d, cb, -sb)
        inv = _safe_inverse(local_d)
        obj_axis = torch.minimum((-half_b - local_o) * inv, (half_b - local_o) * inv).argmax(dim=-1)
        axis = torch.where(on_obj, obj_axis, room_axis)
        ray_dir = torch.where(on_obj[:, None], local_d, d)
        normal = torch.zeros_like(d).scatter_(1, axis[:, None], -torch.sign(ray_dir.gather(1, axis[:, None])))
        normal = torch.where(on_obj[:, None], _rotate_z(normal, cb, sb), normal)
        # room surfaces: 0 = wall, 1 = floor, 2 = ceiling; normals point into the room
        room_kind = torch.where(room_axis == 2, torch.where(d[:, 2] < 0, 1, 2), 0)
        palette = torch.stack([_wall_albedo(room), torch.tensor(_FLOOR_RGB), torch.tensor(_CEILING_RGB)])
        room_pattern = torch.tensor([PATTERNS.index('plain'), PATTERNS.index('grain'), PATTERNS.index('plain')])
        if num_boxes:
            albedo = torch.where(on_obj[:, None], boxes.albedo[b], palette[room_kind])
            pattern = torch.where(on_obj, boxes.pattern[b], room_pattern[room_kind])
            instance = torch.where(on_obj, boxes.instance[b], 0)
        else:
            albedo, pattern, instance = palette[room_kind], room_pattern[room_kind], torch.zeros_like(room_kind)
        texture_points = torch.where(on_obj[:, None], local_o + t_best[:, None] * local_d + half_b,
                                     o + t_best[:, None] * d)
        noise = _hash_noise(texture_points, 0.04)
        color = albedo * (_pattern_value(texture_points, pattern) * (0.9 + 0.1 * noise))[:, None]
        color = color * _shade(normal)[:, None]
        rgb_out.append((color.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8))
        depth_out.append(t_best)
        inst_out.append(instance)
    return dict(rgb=torch.cat(rgb_out).reshape(num_frames, height, width, 3),
                depth=torch.cat(depth_out).reshape(num_frames, height, width).float(),
                instance=torch.cat(inst_out).reshape(num_frames, height, width).to(torch.int32))
