"""Scale head: scale token -> positive metric scale factor per video."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features, mlp

ACTIVATIONS = {'exp': torch.exp, 'softplus': F.softplus}


@HEADS.register_module()
class ScaleHead(BaseGeometryHead):
    """MLP on the scale token -> ``scale (B,)`` > 0, metres per teacher depth unit.

    Args:
        in_channels: LLM hidden size. frames_per_token: unused (one token per video).
        hidden_channels: MLP width (default: ``in_channels``; GeoVR's ``ScaleHead`` in ``models/scale_head.py``:
            512, same LayerNorm-Linear-GELU-Linear-exp shape).
        activation: ``'exp'`` (default; the loss compares in log space) or ``'softplus'``.
    """

    def __init__(self, in_channels: int, frames_per_token: int = 1, hidden_channels: int | None = None,
                 activation: str = 'exp') -> None:
        super().__init__(in_channels, frames_per_token)
        if activation not in ACTIVATIONS:
            raise ValueError(f'ScaleHead.activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.')
        self.activation = activation
        self.mlp = mlp(in_channels, hidden_channels or in_channels, 1)

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        """``features``: one ``(B, D)`` scale-token tensor -> ``{'scale': (B,)}``."""
        check_features(type(self).__name__, features, 1, 2)
        return {'scale': ACTIVATIONS[self.activation](self.mlp(features[0]).float().squeeze(-1))}

    def geometry_outputs(self, preds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {'metric_scale': preds['scale']}

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        targets.require('metric_scale', consumer=type(self).__name__)
        return {'pred': preds['scale'], 'target': targets.metric_scale.float()}
