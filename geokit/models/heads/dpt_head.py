"""DPT-style dense depth head over several LLM layers' video tokens (as VGGT's / DPT's, on LLM features)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geokit.registry import HEADS
from geokit.structures import TeacherTargets

from .base import BaseGeometryHead, HeadContext, check_features

DEPTH_ACTIVATIONS = {'exp': torch.exp, 'softplus': F.softplus}


class ResidualConvUnit(nn.Module):
    """ReLU-Conv3x3-ReLU-Conv3x3 with a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """DPT feature fusion: refine the skip, add it to the coarser path, refine, upsample to the next size."""

    def __init__(self, channels: int, has_skip: bool = True) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if has_skip else None
        self.unit = ResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip_unit(skip)
        x = self.unit(x)
        return self.out_conv(F.interpolate(x, size=size, mode='bilinear', align_corners=True))


@HEADS.register_module()
class DPTDepthHead(BaseGeometryHead):
    """Dense depth + confidence from 4 LLM layers' video tokens, at the teacher's resolution.

    Reassemble (per layer: LayerNorm, 1x1 conv to ``out_channels[i]``, resample to 4x / 2x / 1x / 0.5x of the
    token grid, 3x3 conv to ``features``), fuse coarse-to-fine with residual conv units, then a conv head upsampled
    to the output size. Outputs per frame: ``depth = exp(x)`` (or ``softplus``, ``depth_activation``) and
    ``conf = 1 + exp(x)`` (VGGT's ``expp1``; always > 1 so ``-alpha*log(conf)`` is bounded below by its value at 1).
    The activations run in float32.

    Output size: the teacher's depth resolution (``ctx.targets.depth``), else ``ctx.targets.image_hw``, else the
    token grid times ``default_upsample``.

    Args:
        in_channels: LLM hidden size. frames_per_token: frames per temporal group.
        features: fusion width (VGGT: 256).
        out_channels: per-layer reassemble widths (VGGT: 256, 512, 1024, 1024).
        depth_activation: ``'exp'`` or ``'softplus'``.
        default_upsample: output pixels per token when no target size is known.
        confidence: also predict ``depth_conf`` (default; VGGT's confidence-weighted loss needs it). False: depth
            only, as GeoVR's ``DenseHead`` (``models/dense_head.py``, which returns ``None`` for the confidence) --
            for :class:`~geokit.models.losses.TrimmedL1DepthLoss`; the head then gives no per-pixel uncertainty.
    """

    def __init__(self, in_channels: int, frames_per_token: int = 1, features: int = 256,
                 out_channels: Sequence[int] = (256, 512, 1024, 1024), depth_activation: str = 'exp',
                 default_upsample: int = 16, confidence: bool = True) -> None:
        super().__init__(in_channels, frames_per_token)
        if len(out_channels) != 4:
            raise ValueError(f'DPTDepthHead.out_channels needs 4 widths (one per tapped layer), got {out_channels}.')
        if depth_activation not in DEPTH_ACTIVATIONS:
            raise ValueError(f'DPTDepthHead.depth_activation must be one of {sorted(DEPTH_ACTIVATIONS)}, got '
                             f'{depth_activation!r}.')
        self.depth_activation = depth_activation
        self.default_upsample = default_upsample
        self.confidence = confidence
        self.norm = nn.LayerNorm(in_channels)
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in out_channels)
        self.resize = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], 3, stride=2, padding=1),
        ])
        self.layer_rn = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False) for c in out_channels)
        self.fusion = nn.ModuleList([FusionBlock(features, has_skip=(i != 3)) for i in range(4)])
        self.head = nn.Sequential(nn.Conv2d(features, features // 2, 3, padding=1))
        self.out = nn.Sequential(nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, (2 if confidence else 1) * frames_per_token, 1))

    def output_size(self, ctx: HeadContext, grid_hw: tuple[int, int]) -> tuple[int, int]:
        if ctx.targets is not None and ctx.targets.depth is not None:
            return tuple(ctx.targets.depth.shape[-2:])
        if ctx.targets is not None and ctx.targets.image_hw is not None:
            return tuple(ctx.targets.image_hw)
        return grid_hw[0] * self.default_upsample, grid_hw[1] * self.default_upsample

    def forward(self, features: list[torch.Tensor], ctx: HeadContext) -> dict[str, torch.Tensor]:
        """``features``: 4 tensors ``(B, T', h, w, D)`` -> ``{'depth', 'depth_conf'}`` each ``(B, T, H, W)``
        (``depth_conf`` only with ``confidence``)."""
        check_features(type(self).__name__, features, 4, 5)
        batch, groups, h, w, _ = features[0].shape
        layers = []
        for x, project, resize, rn in zip(features, self.projects, self.resize, self.layer_rn):
            x = self.norm(x).flatten(0, 1).permute(0, 3, 1, 2)              # (B*T', D, h, w)
            layers.append(rn(resize(project(x))))
        sizes = [tuple(f.shape[-2:]) for f in layers]
        path = self.fusion[3](layers[3], None, sizes[2])
        path = self.fusion[2](path, layers[2], sizes[1])
        path = self.fusion[1](path, layers[1], sizes[0])
        path = self.fusion[0](path, layers[0], (2 * sizes[0][0], 2 * sizes[0][1]))
        out_hw = self.output_size(ctx, (h, w))
        x = F.interpolate(self.head(path), size=out_hw, mode='bilinear', align_corners=True)
        x = self.out(x).float()                                              # (B*T', cF, H, W)
        x = x.unflatten(0, (batch, groups)).permute(0, 1, 3, 4, 2)           # (B, T', H, W, cF)
        x = self.split_frames(x, ctx.num_frames)                              # (B, T, H, W, c)
        depth = DEPTH_ACTIVATIONS[self.depth_activation](x[..., 0])
        if not self.confidence:
            return {'depth': depth}
        return {'depth': depth, 'depth_conf': 1 + torch.exp(x[..., 1])}

    def geometry_outputs(self, preds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: preds[key] for key in ('depth', 'depth_conf') if key in preds}

    def loss_inputs(self, preds: dict[str, torch.Tensor], targets: TeacherTargets,
                    ctx: HeadContext) -> dict[str, object]:
        targets.require('depth', consumer=type(self).__name__)
        target = targets.depth.float()
        inputs = {'pred': preds['depth'], 'target': target, 'mask': target > 0,
                  'teacher_conf': None if targets.depth_conf is None else targets.depth_conf.float()}
        if self.confidence:
            inputs['conf'] = preds['depth_conf']
        return inputs
