"""Reference pose predictors built from ground truth, to read a pose AUC@30 against.

AUC@30 takes, per frame pair, the larger of the relative rotation error and the translation-direction error
(:func:`geokit.geometry.pose_auc`). A predictor therefore scores only where both are right. Each reference below keeps
one part of the ground truth and replaces the other with a simple rule, which shows what the metric asks of a model
on a given dataset. Every function takes and returns camera-from-world extrinsics ``(B, T, 3, 4)`` (OpenCV axes: x
right, y down, z forward) and works in any world frame, since the metric compares relative poses only.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ['camera_centres', 'extrinsics_from_centres', 'yaw_about_camera_y', 'static_centres', 'forward_centres',
           'random_horizontal_centres', 'noisy_centres', 'constant_yaw_rate', 'REFERENCE_PREDICTORS']


def camera_centres(extrinsics: torch.Tensor) -> torch.Tensor:
    """Camera centres ``C = -R^T t`` ``(B, T, 3)`` of camera-from-world extrinsics ``(B, T, 3, 4)``."""
    rotation, translation = extrinsics[..., :3], extrinsics[..., 3:]
    return -(rotation.transpose(-1, -2) @ translation).squeeze(-1)


def extrinsics_from_centres(rotation: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Camera-from-world ``[R | -R C]`` ``(B, T, 3, 4)`` from rotations ``(B, T, 3, 3)`` and centres ``(B, T, 3)``."""
    return torch.cat([rotation, -(rotation @ centres.unsqueeze(-1))], dim=-1)


def yaw_about_camera_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotations ``(..., 3, 3)`` by ``angle`` (radians, ``(...)``) about the camera's y (down) axis.

    ``R = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]]``; applied as ``R @ R_cam`` to a camera-from-world rotation, a
    positive angle turns the camera towards its own -x (to the left: the scene moves right in the image), the sign of
    the quaternion's ``qy`` in a pose encoding.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([torch.stack([cos, zero, sin], -1), torch.stack([zero, one, zero], -1),
                        torch.stack([-sin, zero, cos], -1)], -2)


def static_centres(extrinsics: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ground-truth rotations, every camera at the world origin (no translation at all; exactly zero, so that the
    metric sees no direction rather than rounding noise)."""
    return extrinsics_from_centres(extrinsics[..., :3], extrinsics.new_zeros(extrinsics.shape[:-1]))


def _steps_in_frame0(extrinsics: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Centres that start at frame 0's and move one unit per frame along ``directions (B, T - 1, 3)``, given in frame
    0's camera axes."""
    frame0_to_world = extrinsics[:, 0, :, :3].transpose(-1, -2)
    steps = torch.einsum('bij,btj->bti', frame0_to_world, directions)
    start = camera_centres(extrinsics)[:, :1]
    return torch.cat([start, start + steps.cumsum(1)], dim=1)


def forward_centres(extrinsics: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ground-truth rotations, centres walking straight along frame 0's optical axis (a fixed translation prior)."""
    batch, frames = extrinsics.shape[:2]
    forward = extrinsics.new_tensor([0.0, 0.0, 1.0]).expand(batch, frames - 1, 3)
    return extrinsics_from_centres(extrinsics[..., :3], _steps_in_frame0(extrinsics, forward))


def random_horizontal_centres(extrinsics: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ground-truth rotations, centres taking unit steps in random directions of frame 0's x-z plane."""
    batch, frames = extrinsics.shape[:2]
    azimuth = torch.rand(batch, frames - 1, generator=generator, dtype=extrinsics.dtype) * 2 * torch.pi
    azimuth = azimuth.to(extrinsics.device)
    directions = torch.stack([azimuth.cos(), torch.zeros_like(azimuth), azimuth.sin()], -1)
    return extrinsics_from_centres(extrinsics[..., :3], _steps_in_frame0(extrinsics, directions))


def noisy_centres(extrinsics: torch.Tensor, generator: torch.Generator | None = None,
                  relative_noise: float = 0.2) -> torch.Tensor:
    """Ground-truth rotations, centres plus Gaussian noise of ``relative_noise`` times the video's centre spread."""
    centres = camera_centres(extrinsics)
    spread = centres.std(dim=1, keepdim=True).mean(-1, keepdim=True)
    noise = torch.randn(centres.shape, generator=generator, dtype=centres.dtype).to(centres.device)
    return extrinsics_from_centres(extrinsics[..., :3], centres + relative_noise * spread * noise)


def constant_yaw_rate(extrinsics: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ground-truth centres; frame 0's rotation turned about its own y axis by the video's mean yaw per frame.

    The best a model can do that knows only which way and how fast the video turns on average.
    """
    rotation = extrinsics[..., :3]
    relative = rotation[:, 1:] @ rotation[:, :-1].transpose(-1, -2)
    yaw = torch.atan2(relative[..., 0, 2] - relative[..., 2, 0], relative[..., 0, 0] + relative[..., 2, 2])
    rate = yaw.mean(dim=1, keepdim=True)
    angles = rate * torch.arange(extrinsics.shape[1], dtype=yaw.dtype, device=yaw.device)
    turned = yaw_about_camera_y(angles) @ rotation[:, :1]
    return extrinsics_from_centres(turned, camera_centres(extrinsics))


#: name -> predictor ``(extrinsics (B, T, 3, 4), generator) -> extrinsics (B, T, 3, 4)``
REFERENCE_PREDICTORS: dict[str, Callable[..., torch.Tensor]] = {
    'gt rotation, static centres': static_centres,
    'gt rotation, centres along frame-0 axis': forward_centres,
    'gt rotation, random horizontal steps': random_horizontal_centres,
    'gt rotation, centres + 0.2 spread noise': noisy_centres,
    'constant yaw rate (right sign), gt centres': constant_yaw_rate,
}
