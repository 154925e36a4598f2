"""Metric scale for up-to-scale teachers: the teacher's depth aligned to a metric depth.

:func:`metres_per_teacher_unit` is the alignment itself; :func:`with_reference_metric_scale` applies it to a
teacher's targets given a metric reference teacher's (``GeometricMLLM(scale_teacher=...)``);
:class:`MetricScaleTeacher` gets the metric depth from a depth network.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geokit.geometry import align_depth_scale
from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

from .base import BaseTeacher, stack_frames
from .preprocess import IMAGENET_MEAN, IMAGENET_STD


def metres_per_teacher_unit(teacher_depth: torch.Tensor, metric_depth: torch.Tensor,
                            valid: torch.Tensor | None = None) -> torch.Tensor:
    """The per-video scale ``s`` with ``metric_depth ≈ s * teacher_depth`` over all frames of the video.

    Robust (IRLS towards the L1 fit, :func:`geokit.geometry.align_depth_scale`) over the pixels valid in both maps
    (finite, ``> 0``, and ``valid``), so the result is metres per teacher depth unit.

    Args:
        teacher_depth: ``(B, T, h, w)`` up-to-scale depth.
        metric_depth: ``(B, T, h, w)`` metric depth (metres) on the same pixel grid.
        valid: optional ``(B, T, h, w)`` bool mask of the pixels to use (e.g. not padding).

    Returns:
        ``(B,)`` scale; ``nan`` for a video without a pixel valid in both maps (its targets are then masked).
    """
    return align_depth_scale(teacher_depth.flatten(1), metric_depth.flatten(1),
                             None if valid is None else valid.flatten(1), robust=True, empty=float('nan'))


def with_reference_metric_scale(targets: TeacherTargets, reference: TeacherTargets) -> TeacherTargets:
    """``targets`` with ``metric_scale`` replaced by the scale aligning its depth to ``reference``'s metric depth.

    ``reference`` is a metric teacher's output (``depth`` + ``metric_scale``, e.g. ``OracleTeacher`` on SynthVSI):
    its metric depth is ``reference.depth * reference.metric_scale``. The new ``metric_scale`` is
    :func:`metres_per_teacher_unit` of ``targets.depth`` onto it, i.e. metres per *teacher* unit.

    Args:
        targets: the teacher's targets; needs ``depth (B, T, h, w)``.
        reference: the metric reference's targets; needs ``depth`` on the same grid and ``metric_scale (B,)``.

    Returns:
        A copy of ``targets`` with ``metric_scale (B,)`` float32 (``nan`` where no pixel is valid in both).

    Raises:
        ValueError: if a field is missing or the two depth maps differ in shape.
    """
    reference.require('depth', 'metric_scale', consumer='model.scale_teacher')
    targets.require('depth', consumer='metric scale alignment (model.scale_teacher)')
    metric = reference.depth.float() * reference.metric_scale.float().view(-1, 1, 1, 1)
    if metric.shape != targets.depth.shape:
        raise ValueError(f'model.scale_teacher depth {tuple(metric.shape)} and model.teacher depth '
                         f'{tuple(targets.depth.shape)} differ; give both the same image_size/mode.')
    scale = metres_per_teacher_unit(targets.depth.float(), metric)  # only pixels > 0 and finite in both count
    return dataclasses.replace(targets, metric_scale=scale)


class MetricDepthModel(nn.Module):
    """A ``transformers`` depth-estimation model (e.g. Depth Anything V2 Metric) loaded from a local directory.

    Preprocessing: resize so that the shorter side is ``input_size`` (each side rounded to a multiple of
    ``multiple_of``, bicubic), normalise with ``image_mean``/``image_std`` (ImageNet by default), as the Depth
    Anything / DPT processors do. The prediction (``predicted_depth``, metres) is resized back to the input size.

    Args:
        path: local directory saved with ``save_pretrained`` (never downloaded).
        input_size: shorter side fed to the network (518 for Depth Anything V2).
        multiple_of: 14 for ViT-14 backbones.
    """

    def __init__(self, path: str | Path, input_size: int = 518, multiple_of: int = 14,
                 image_mean: Sequence[float] = IMAGENET_MEAN, image_std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        from transformers import AutoModelForDepthEstimation

        path = Path(path).expanduser()
        if not (path / 'config.json').is_file():
            raise FileNotFoundError(f'No transformers depth model at {path} (config.json missing). Set '
                                    f'`metric_depth.path` to a local directory saved with save_pretrained, e.g. a '
                                    f'copy of depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf.')
        self.model = AutoModelForDepthEstimation.from_pretrained(str(path)).eval()
        self.input_size, self.multiple_of = input_size, multiple_of
        self.register_buffer('mean', torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)

    def _network_hw(self, height: int, width: int) -> tuple[int, int]:
        scale = self.input_size / min(height, width)
        return tuple(max(self.multiple_of, round(side * scale / self.multiple_of) * self.multiple_of)
                     for side in (height, width))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``(N, 3, H, W)`` in ``[0, 1]`` -> metric depth ``(N, H, W)`` in metres."""
        height, width = images.shape[-2:]
        x = F.interpolate(images.float(), size=self._network_hw(height, width), mode='bicubic', align_corners=False,
                          antialias=True).clamp(0, 1)
        x = ((x - self.mean) / self.std).to(next(self.model.parameters()).dtype)
        depth = self.model(pixel_values=x).predicted_depth.float()
        return F.interpolate(depth[:, None], size=(height, width), mode='bilinear', align_corners=False)[:, 0]


@TEACHERS.register_module()
class MetricScaleTeacher(BaseTeacher):
    """A geometry teacher plus ``metric_scale`` from a metric depth network.

    The metric network sees exactly the geometry teacher's images (its ``view``), so both depth maps share a pixel
    grid; ``metric_scale`` (metres per teacher unit, ``(B,)``) is the robust per-video scale
    :func:`geokit.geometry.align_depth_scale` of the teacher's depth onto the metric depth over all frames.
    A geometry teacher that already knows the scale (the oracle) keeps its exact value. A video without a pixel that
    is valid in both depth maps gets no scale and is excluded from the objectives (``sample_valid``).

    Args:
        geometry: config of the geometry teacher, e.g. ``dict(type='VGGTTeacher', ...)``.
        metric_depth: kwargs of :class:`MetricDepthModel` (``path`` required).
        frames_chunk_size: frames per metric-network call (bounds memory).
    """

    def __init__(self, geometry: dict, metric_depth: dict, frames_chunk_size: int = 8) -> None:
        super().__init__()
        self.geometry = TEACHERS.build(geometry)
        if not hasattr(self.geometry, 'view'):
            raise TypeError(f'MetricScaleTeacher needs a geometry teacher with a `view` (VGGTTeacher, OracleTeacher), '
                            f'got {type(self.geometry).__name__}.')
        self.metric_depth = MetricDepthModel(**metric_depth)
        self.frames_chunk_size = frames_chunk_size
        self.freeze()

    @torch.no_grad()
    def forward(self, frames: torch.Tensor, meta: Sequence[dict] | None = None,
                geometry: Sequence[dict | None] | None = None) -> TeacherTargets:
        frames = stack_frames(frames)
        targets = self.geometry(frames, meta, geometry)
        if targets.metric_scale is not None:
            return targets
        targets.require('depth', consumer='MetricScaleTeacher')
        device = targets.depth.device
        images = self.geometry.view.images(frames.to(device)).flatten(0, 1)
        metric = torch.cat([self.metric_depth(chunk) for chunk in images.split(self.frames_chunk_size)])
        metric = metric.reshape(targets.depth.shape)
        valid = self.geometry.view.valid_mask(*frames.shape[2:4]).to(device).expand_as(metric)
        scale = metres_per_teacher_unit(targets.depth, metric, valid)
        names = [m.get('video') or m.get('id') for m in meta] if meta else None
        return dataclasses.replace(targets, metric_scale=scale).masked_invalid(names)
