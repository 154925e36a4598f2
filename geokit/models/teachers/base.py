"""The teacher interface: what every 3D teacher takes and returns.

A teacher is called by the model (or by ``tools/cache_teacher.py``) as::

    targets = teacher(frames, meta, geometry)

* ``frames``: ``torch.uint8 (B, T, H, W, 3)`` RGB, the sampled video frames (the dataset sample's ``'frames'``,
  stacked over the batch; a list of ``(T, H, W, 3)`` tensors of one shape is stacked for you).
* ``meta``: ``list[dict]`` of length ``B``, the samples' ``'meta'`` dicts. ``meta[b]['id']`` identifies the sample;
  ``meta[b]['frame_indices']`` (the sample's ``'frame_indices'``, copied in by the caller) identifies which frames
  were sampled, which the :class:`~geokit.models.teachers.cached.CachedTeacher` needs.
* ``geometry``: ``list[dict | None]`` of length ``B``, the samples' ``'geometry'`` (ground truth: ``depth (T, H, W)``
  metres, ``extrinsics (T, 3, 4)`` OpenCV cam-from-world in the scene's world frame, ``intrinsics (T, 3, 3)`` pixels)
  or ``None``. Only the oracle needs it; learned teachers ignore it.

It returns :class:`geokit.structures.TeacherTargets` in VGGT's conventions (first-frame-relative poses, depth in
teacher units, ``metric_scale`` in metres per teacher unit) at the teacher's image size ``targets.image_hw``.

Teachers are frozen: no parameter requires grad, ``train()`` keeps them in eval mode, and ``forward`` runs under
``torch.no_grad()``.

Which teacher fills which target: docs/architecture.md, "TeacherTargets".
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from geokit.structures import TeacherTargets


def stack_frames(frames: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Accept ``(B, T, H, W, 3)`` uint8 or a list of ``(T, H, W, 3)`` of equal shape; return the stacked tensor."""
    if isinstance(frames, torch.Tensor):
        tensor = frames
    else:
        shapes = {tuple(f.shape) for f in frames}
        if len(shapes) != 1:
            raise ValueError(f'a teacher batch needs videos of one shape, got {sorted(shapes)}; use batch size 1 '
                             f'or a frame sampler with a fixed number of frames and size.')
        tensor = torch.stack(list(frames))
    if tensor.dtype != torch.uint8 or tensor.ndim != 5 or tensor.shape[-1] != 3:
        raise ValueError(f'teacher frames must be uint8 (B, T, H, W, 3) RGB, got {tensor.dtype} '
                         f'{tuple(tensor.shape)}.')
    return tensor


class BaseTeacher(nn.Module, metaclass=ABCMeta):
    """A frozen 3D teacher: ``forward(frames, meta, geometry) -> TeacherTargets`` (see the module docstring)."""

    def freeze(self) -> BaseTeacher:
        """Stop gradients into the teacher and put it in eval mode."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> BaseTeacher:
        """Teachers stay in eval mode whatever the surrounding model does."""
        return super().train(False)

    @abstractmethod
    def forward(self, frames: torch.Tensor, meta: Sequence[dict], geometry: Sequence[dict | None]
                ) -> TeacherTargets:
        """Compute targets for a batch; see the module docstring for the argument contract."""
