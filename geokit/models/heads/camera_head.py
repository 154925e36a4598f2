"""Camera head: camera token -> VGGT pose encoding per frame."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features, mlp

FOV_ACTIVATIONS = {'softplus': F.softplus, 'relu': F.relu}


@HEADS.register_module()
class CameraHead(BaseGeometryHead):
    """MLP on the camera token of each temporal group -> ``pose_enc (B, T, 9)`` for each frame.

    The pose encoding is VGGT's ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` (first-frame-relative
    camera-from-world, radians); translation and quaternion are linear outputs, the field of view goes through
    ``fov_activation`` so it stays positive.

    GeoVR's ``CameraDec`` (``models/camera_head.py``) is ``hidden_channels=1536, hidden_layers=2,
    fov_activation='relu'``; geokit's default is one hidden layer of ``in_channels`` and ``softplus``.

    Args:
        in_channels: LLM hidden size. frames_per_token: frames per temporal group.
        hidden_channels: MLP width (default: ``in_channels``).
        hidden_layers: Linear-GELU layers before the output layer (GeoVR: 2).
        fov_activation: ``'softplus'`` (default: positive with no dead units) or ``'relu'`` (GeoVR's; a unit
            stuck below 0 predicts FoV 0 with no gradient).
    """

    def __init__(self, in_channels: int, frames_per_token: int = 1, hidden_channels: int | None = None,
                 hidden_layers: int = 1, fov_activation: str = 'softplus') -> None:
        super().__init__(in_channels, frames_per_token)
        if fov_activation not in FOV_ACTIVATIONS:
            raise ValueError(f'CameraHead.fov_activation must be one of {sorted(FOV_ACTIVATIONS)}, got '
                             f'{fov_activation!r}.')
        self.fov_activation = fov_activation
        self.mlp = mlp(in_channels, hidden_channels or in_channels, 9 * frames_per_token, hidden_layers)

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        """``features``: one ``(B, T', D)`` camera-token tensor -> ``{'pose_enc': (B, T, 9)}``."""
        check_features(type(self).__name__, features, 1, 3)
        raw = self.split_frames(self.mlp(features[0]).float(), ctx.num_frames)
        return {'pose_enc': torch.cat([raw[..., :7], FOV_ACTIVATIONS[self.fov_activation](raw[..., 7:])], dim=-1)}

    def geometry_outputs(self, preds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {'pose_enc': preds['pose_enc']}

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        targets.require('pose_enc', consumer=type(self).__name__)
        return {'pred': preds['pose_enc'], 'target': targets.pose_enc.float()}
