"""Camera head: camera token -> VGGT pose encoding per frame."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features, mlp


@HEADS.register_module()
class CameraHead(BaseGeometryHead):
    """MLP on the camera token of each temporal group -> ``pose_enc (B, T, 9)`` for each frame.

    The pose encoding is VGGT's ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` (first-frame-relative
    camera-from-world, radians); translation and quaternion are linear outputs, the field of view goes through
    ``softplus`` so it stays positive without dead units.

    Args:
        in_channels: LLM hidden size. frames_per_token: frames per temporal group.
        hidden_channels: MLP width (default: ``in_channels``).
    """

    def __init__(self, in_channels: int, frames_per_token: int = 1, hidden_channels: int | None = None) -> None:
        super().__init__(in_channels, frames_per_token)
        self.mlp = mlp(in_channels, hidden_channels or in_channels, 9 * frames_per_token)

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        """``features``: one ``(B, T', D)`` camera-token tensor -> ``{'pose_enc': (B, T, 9)}``."""
        check_features(type(self).__name__, features, 1, 3)
        raw = self.split_frames(self.mlp(features[0]).float(), ctx.num_frames)
        return {'pose_enc': torch.cat([raw[..., :7], F.softplus(raw[..., 7:])], dim=-1)}

    def geometry_outputs(self, preds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {'pose_enc': preds['pose_enc']}

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        targets.require('pose_enc', consumer=type(self).__name__)
        return {'pred': preds['pose_enc'], 'target': targets.pose_enc.float()}
