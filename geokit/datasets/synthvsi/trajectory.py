"""Walk-through camera trajectories: eye height 1.2-1.8 m, smooth yaw/pitch sweeping the room, FoV 50-90 deg.

Cameras follow the OpenCV convention (x right, y down, z forward). Extrinsics are camera-from-world ``[R | t]``
in the scene's world frame (z up); intrinsics are in pixels with square pixels and the principal point at
``(W / 2, H / 2)`` — pixel ``(row i, col j)`` has image coordinates ``(u, v) = (j, i)``, as in VGGT.
"""
from __future__ import annotations

import numpy as np

from .boxes import points_in_footprint

EYE_HEIGHT_RANGE = (1.2, 1.8)
FOV_RANGE_DEG = (50.0, 90.0)
WALL_CLEARANCE = 0.5
OBJECT_CLEARANCE = 0.35


def free_space_mask(points: np.ndarray, scene: dict) -> np.ndarray:
    """Whether world xy points ``(N, 2)`` are walkable: clear of walls and every object footprint."""
    lx, ly = scene['room']['size'][:2]
    ok = ((points[:, 0] >= WALL_CLEARANCE) & (points[:, 0] <= lx - WALL_CLEARANCE)
          & (points[:, 1] >= WALL_CLEARANCE) & (points[:, 1] <= ly - WALL_CLEARANCE))
    for obj in scene['objects']:
        ok &= ~points_in_footprint(points, obj['center'], obj['size'], obj['yaw'], grow=OBJECT_CLEARANCE)
    return ok


def _catmull_rom(points: np.ndarray, samples: int) -> np.ndarray:
    """A C1 curve through ``points (K, 2)``, sampled at ``samples`` parameters. Returns ``(samples, 2)``."""
    padded = np.concatenate([points[:1] * 2 - points[1:2], points, points[-1:] * 2 - points[-2:-1]])
    u = np.linspace(0.0, len(points) - 1, samples)
    seg = np.minimum(u.astype(int), len(points) - 2)
    t = (u - seg)[:, None]
    p0, p1, p2, p3 = padded[seg], padded[seg + 1], padded[seg + 2], padded[seg + 3]
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)


def _walk_path(scene: dict, rng: np.random.Generator, tries: int = 60) -> np.ndarray:
    """A dense collision-free xy path ``(400, 2)``; a single free point repeated when no walk fits."""
    lx, ly = scene['room']['size'][:2]
    grid = np.stack(np.meshgrid(np.linspace(0, lx, 48), np.linspace(0, ly, 48), indexing='ij'), -1).reshape(-1, 2)
    free = grid[free_space_mask(grid, scene)]
    if len(free) == 0:
        raise ValueError('no free floor space for the camera in this layout')
    best = np.repeat(free[int(rng.integers(len(free)))][None], 400, axis=0)
    best_length = 0.0
    for _ in range(tries):
        waypoints = free[rng.choice(len(free), size=int(rng.integers(3, 6)), replace=len(free) < 5)]
        path = _catmull_rom(waypoints, 400)
        if not free_space_mask(path, scene).all():
            continue
        length = np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
        if length > best_length:
            best, best_length = path, length
        if best_length > 0.5 * max(lx, ly):
            break
    return best


def _resample_by_arc_length(path: np.ndarray, count: int) -> np.ndarray:
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    if arc[-1] < 1e-9:
        return np.repeat(path[:1], count, axis=0)
    target = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(target, arc, path[:, k]) for k in range(2)], axis=-1)


def look_at_rotation(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """World-from-camera rotations ``(T, 3, 3)`` (columns: right, down, forward) for yaw/pitch in radians.

    ``yaw`` is the heading counter-clockwise from world +x; ``pitch`` > 0 looks up.
    """
    forward = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], -1)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=-1)


def sample_trajectory(scene: dict, num_frames: int, image_hw: tuple[int, int], rng: np.random.Generator) -> dict:
    """Sample a smooth walk-through of ``num_frames`` poses.

    Returns:
        dict with ``extrinsics (T, 3, 4)`` camera-from-world, ``intrinsics (T, 3, 3)`` pixels, ``positions (T, 3)``
        metres, ``fov_x_deg`` (horizontal field of view) and ``eye_height`` (metres); arrays are float64 numpy.
    """
    height, width = image_hw
    xy = _resample_by_arc_length(_walk_path(scene, rng), num_frames)
    u = np.linspace(0.0, 1.0, num_frames)
    eye = rng.uniform(*EYE_HEIGHT_RANGE)
    z = eye + 0.03 * np.sin(2 * np.pi * (2.0 * u + rng.random()))
    # Heading sweeps 300-420 degrees over the video (covers the room) with a gentle smooth wobble.
    sweep = np.deg2rad(rng.uniform(300.0, 420.0)) * (1 if rng.random() < 0.5 else -1)
    yaw = rng.uniform(-np.pi, np.pi) + sweep * u + 0.15 * np.sin(2 * np.pi * (u + rng.random()))
    pitch = np.deg2rad(-14.0 + 8.0 * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * u + rng.random())))
    positions = np.concatenate([xy, z[:, None]], axis=-1)
    world_from_cam = look_at_rotation(yaw, pitch)
    rotation = np.transpose(world_from_cam, (0, 2, 1))
    translation = -np.einsum('tij,tj->ti', rotation, positions)
    extrinsics = np.concatenate([rotation, translation[..., None]], axis=-1)
    fov_x = rng.uniform(*FOV_RANGE_DEG)
    focal = (width / 2.0) / np.tan(np.deg2rad(fov_x) / 2.0)
    intrinsics = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    return dict(extrinsics=extrinsics, intrinsics=np.repeat(intrinsics[None], num_frames, axis=0),
                positions=positions, fov_x_deg=float(fov_x), eye_height=float(eye))
