"""Per-layer feature-alignment heads: LLM video tokens -> the teacher's feature space on the teacher's grid."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features, mlp

#: ``teacher_pool`` choices: 2x2 average pooling of the teacher grid, odd sizes rounded down or up, or none.
TEACHER_POOLS = (None, 'floor', 'ceil')
#: ``resize`` choices: bring the student onto the teacher grid before or after the MLP.
RESIZE_ORDERS = ('after_mlp', 'before_mlp')


def teacher_alignment_target(features: torch.Tensor, pool: str | None = None) -> torch.Tensor:
    """The teacher feature map an alignment head regresses: ``(B, T, h, w, C)`` -> ``(B, T, h', w', C)``.

    ``pool``: None, or 2x2 average pooling with odd grid sizes rounded ``'floor'`` / ``'ceil'``. (Which half of a
    VGGT token is the target is the teacher's ``feature_part``.)
    """
    if pool not in TEACHER_POOLS:
        raise ValueError(f'teacher_pool must be one of {TEACHER_POOLS}, got {pool!r}.')
    if pool is not None:
        b, t = features.shape[:2]
        pooled = F.avg_pool2d(features.flatten(0, 1).permute(0, 3, 1, 2), kernel_size=2, ceil_mode=pool == 'ceil')
        features = pooled.permute(0, 2, 3, 1).unflatten(0, (b, t))
    return features


def _resize_grid(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, T, h, w, C)`` to ``(B, T, *size, C)`` (``align_corners=False``)."""
    if tuple(x.shape[2:4]) == tuple(size):
        return x
    b, t = x.shape[:2]
    return F.interpolate(x.flatten(0, 1).permute(0, 3, 1, 2), size=tuple(size), mode='bilinear',
                         align_corners=False).permute(0, 2, 3, 1).unflatten(0, (b, t))


@HEADS.register_module()
class FeatureAlignmentHead(BaseGeometryHead):
    """One LayerNorm-Linear-GELU-Linear per tapped layer, on the teacher's token grid (bilinear resize).

    Input ``(B, T', h, w, D)`` per layer; output ``{teacher_layer: (B, T, h_t, w_t, C)}`` with ``C`` the target
    width (each token group predicts ``frames_per_token`` frames' features).

    GeoVR's ``DistillHead`` (``models/distill_head.py``) with its targets (``get_geo_features_vggt``,
    ``_compute_distill_loss`` in ``models/qwen3vl_geo.py``) is ``out_channels=1024, hidden_channels=1024,
    teacher_pool='floor', resize='before_mlp'`` with the teacher's ``feature_part='frame'`` (the frame-attention
    half of each VGGT-1B layer; geokit's default ``'both'`` also gives the global-attention half, with the
    cross-view information).

    Args:
        in_channels: LLM hidden size. frames_per_token: frames per temporal group.
        out_channels: target width ``C`` (VGGT-1B: 2048 with both halves, 1024 with one).
        num_layers: number of tapped layers (one MLP each).
        hidden_channels: MLP width (default: ``in_channels``).
        teacher_pool: 2x2 average pooling of the teacher grid: None (default: the teacher's full grid, finer
            supervision), ``'floor'`` (GeoVR: the ViT-patch-14 grid brought near the LLM's merged-28 grid) or
            ``'ceil'``.
        resize: ``'after_mlp'`` (default: the MLP runs on the LLM's own tokens, cheaper when the teacher grid is
            finer) or ``'before_mlp'`` (GeoVR: student tokens interpolated to the target grid first).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, frames_per_token: int = 1,
                 hidden_channels: int | None = None, teacher_pool: str | None = None,
                 resize: str = 'after_mlp') -> None:
        super().__init__(in_channels, frames_per_token)
        if teacher_pool not in TEACHER_POOLS or resize not in RESIZE_ORDERS:
            raise ValueError(f'FeatureAlignmentHead: teacher_pool must be one of {TEACHER_POOLS} and resize one of '
                             f'{RESIZE_ORDERS}; got {teacher_pool!r}, {resize!r}.')
        self.teacher_pool, self.resize = teacher_pool, resize
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
            target_hw = self._target_grid(layer, ctx, tuple(x.shape[2:4]))
            if self.resize == 'before_mlp':
                y = self.split_frames(head(_resize_grid(x, target_hw)), ctx.num_frames)
            else:
                y = _resize_grid(self.split_frames(head(x), ctx.num_frames), target_hw)     # (B, T, h, w, C)
            preds[f'features_{layer}'] = y
        return preds

    def _target_grid(self, layer: int, ctx: HeadContext, default: tuple[int, int]) -> tuple[int, int]:
        if ctx.targets is not None and layer in ctx.targets.features:
            h, w = ctx.targets.features[layer].shape[2:4]
            if self.teacher_pool is not None:
                rounding = math.ceil if self.teacher_pool == 'ceil' else math.floor
                h, w = rounding(h / 2), rounding(w / 2)
            return int(h), int(w)
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
        teacher = {layer: teacher_alignment_target(targets.features[layer], self.teacher_pool).to(student[layer].dtype)
                   for layer in ctx.teacher_layers}
        return {'student': student, 'teacher': teacher}
