"""Per-layer feature-alignment heads: LLM video tokens -> the teacher's feature space on the teacher's grid."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features, mlp


@HEADS.register_module()
class FeatureAlignmentHead(BaseGeometryHead):
    """One LayerNorm-Linear-GELU-Linear per tapped layer; outputs resized (bilinear) to the teacher's token grid.

    Input ``(B, T', h, w, D)`` per layer; output ``{teacher_layer: (B, T, h_t, w_t, C)}`` with ``C`` the teacher
    feature width (each token group predicts ``frames_per_token`` frames' features).

    Args:
        in_channels: LLM hidden size. frames_per_token: frames per temporal group.
        out_channels: teacher feature width ``C`` (VGGT-1B: 2048 with both halves, 1024 with one).
        num_layers: number of tapped layers (one MLP each).
        hidden_channels: MLP width (default: ``in_channels``).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, frames_per_token: int = 1,
                 hidden_channels: int | None = None) -> None:
        super().__init__(in_channels, frames_per_token)
        self.out_channels = out_channels
        self.mlps = nn.ModuleList(mlp(in_channels, hidden_channels or in_channels, out_channels * frames_per_token)
                                  for _ in range(num_layers))

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        check_features(type(self).__name__, features, len(self.mlps), 5)
        if ctx.teacher_layers is None or len(ctx.teacher_layers) != len(features):
            raise ValueError(f'FeatureAlignmentHead needs the teacher layer of every tapped layer: give the '
                             f'objective tap=dict(tokens="video", teacher_layers=[...], teacher_num_layers=N), got '
                             f'teacher_layers={ctx.teacher_layers}.')
        preds = {}
        for layer, x, head in zip(ctx.teacher_layers, features, self.mlps):
            y = self.split_frames(head(x), ctx.num_frames)                        # (B, T, h, w, C)
            target_hw = self._target_grid(layer, ctx, y.shape[2:4])
            if tuple(y.shape[2:4]) != target_hw:
                b, t = y.shape[:2]
                y = F.interpolate(y.flatten(0, 1).permute(0, 3, 1, 2), size=target_hw, mode='bilinear',
                                  align_corners=False).permute(0, 2, 3, 1).unflatten(0, (b, t))
            preds[f'features_{layer}'] = y
        return preds

    @staticmethod
    def _target_grid(layer: int, ctx: HeadContext, default: tuple[int, int]) -> tuple[int, int]:
        if ctx.targets is not None and layer in ctx.targets.features:
            return tuple(ctx.targets.features[layer].shape[2:4])
        return tuple(default)

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        targets.require('features', consumer=type(self).__name__)
        missing = [layer for layer in ctx.teacher_layers if layer not in targets.features]
        if missing:
            raise ValueError(f'FeatureAlignmentHead: the teacher produced features for layers '
                             f'{sorted(targets.features)} but the objective taps teacher layers {missing}. Set the '
                             f"teacher's feature_layers to include {list(ctx.teacher_layers)}.")
        student = {layer: preds[f'features_{layer}'] for layer in ctx.teacher_layers}
        teacher = {layer: targets.features[layer].to(student[layer].dtype) for layer in ctx.teacher_layers}
        return {'student': student, 'teacher': teacher}
