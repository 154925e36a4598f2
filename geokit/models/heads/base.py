"""The head interface shared by GeoVR's objectives.

A head turns hidden-state taps into predictions and says which :class:`~geokit.structures.TeacherTargets` fields
they are compared with, so :class:`~geokit.models.GeometricMLLM` runs every objective the same way::

    preds = head(features, ctx)                       # features: one tensor per tapped layer
    out = loss(**head.loss_inputs(preds, targets, ctx))

Temporal groups: Qwen-VL's ViT merges ``frames_per_token`` consecutive frames into one token group, so a token
group's head output carries ``frames_per_token`` per-frame predictions (channels are split, then the frame axis is
cut to the real number of frames ``ctx.num_frames``).

Every head's inputs, outputs and loss inputs: docs/architecture.md, "Taps, heads and losses".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from geokit.structures import TeacherTargets


@dataclass
class HeadContext:
    """What a head may need beyond its features.

    Attributes:
        num_frames: frames per video ``T`` (before temporal grouping).
        targets: the teacher's targets (``None`` in inference-style calls): output resolutions come from them.
        teacher_layers: the teacher layers the tapped LLM layers stand for (from the objective's ``tap``).
    """

    num_frames: int
    targets: TeacherTargets | None = None
    teacher_layers: tuple[int, ...] | None = None


class BaseGeometryHead(nn.Module):
    """A head of one geometric objective.

    Args:
        in_channels: LLM hidden size ``D`` (filled in by the model).
        frames_per_token: frames per temporal token group (filled in by the model from the backbone).
    """

    def __init__(self, in_channels: int, frames_per_token: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.frames_per_token = frames_per_token

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        """Keyword arguments of the objective's loss module."""
        raise NotImplementedError

    def geometry_outputs(self, preds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The predictions that are scene geometry, under :class:`~geokit.structures.TeacherTargets` names
        (``pose_enc``, ``depth``, ``depth_conf``, ``metric_scale``); heads that predict none return ``{}``."""
        return {}

    def split_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(B, T', ..., F * C)`` -> ``(B, T, ..., C)``: one slice per frame of each temporal group."""
        batch, groups = x.shape[:2]
        x = x.unflatten(-1, (self.frames_per_token, -1))           # (B, T', ..., F, C)
        x = x.movedim(-2, 2).flatten(1, 2)                         # (B, T' * F, ..., C)
        return x[:, :num_frames]


def mlp(in_channels: int, hidden_channels: int, out_channels: int, hidden_layers: int = 1) -> nn.Sequential:
    """LayerNorm - (Linear - GELU) x ``hidden_layers`` - Linear."""
    if hidden_layers < 1:
        raise ValueError(f'an MLP head needs hidden_layers >= 1, got {hidden_layers}.')
    layers: list[nn.Module] = [nn.LayerNorm(in_channels)]
    for index in range(hidden_layers):
        layers += [nn.Linear(in_channels if index == 0 else hidden_channels, hidden_channels), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(hidden_channels, out_channels))


def check_features(name: str, features: list[torch.Tensor], count: int | None, ndim: int) -> None:
    if (count is not None and len(features) != count) or any(f.dim() != ndim for f in features):
        raise ValueError(f'{name} expects {count or "some"} tapped layers of {ndim}-d features, got '
                         f'{[tuple(f.shape) for f in features]}. Check the objective\'s tap (tokens/layers).')
