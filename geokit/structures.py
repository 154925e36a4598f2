"""Data contracts shared across geokit: what teachers produce and objectives consume."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch


@dataclass
class TeacherTargets:
    """Geometric targets for a batch of videos, in VGGT's conventions.

    Conventions: extrinsics are OpenCV camera-from-world, relative to the first frame of each video; the pose
    encoding is ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` (radians); depth is in teacher units and
    ``metric_scale`` converts it to metres (``metres = metric_scale * depth``).

    Attributes:
        pose_enc: ``(B, T, 9)`` pose encoding per frame.
        depth: ``(B, T, H, W)`` depth in teacher units at the teacher's resolution.
        depth_conf: ``(B, T, H, W)`` teacher confidence (> 0; larger is more confident), or ``None``.
        points: ``(B, T, H, W, 3)`` world points of the first frame's camera, in teacher units, or ``None``.
        points_conf: ``(B, T, H, W)`` confidence of ``points``, or ``None``.
        features: ``{layer: (B, T, h, w, C)}`` patch-token features of the teacher's aggregator layers.
        metric_scale: ``(B,)`` metres per teacher unit, or ``None``.
        image_hw: ``(H, W)`` of the images the teacher saw (the pose encoding's field of view refers to them).
    """

    pose_enc: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    depth_conf: torch.Tensor | None = None
    points: torch.Tensor | None = None
    points_conf: torch.Tensor | None = None
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    metric_scale: torch.Tensor | None = None
    image_hw: tuple[int, int] | None = None

    def require(self, *names: str, consumer: str = 'this objective') -> None:
        """Fail clearly when a target an objective needs was not produced by the configured teacher."""
        missing = [name for name in names if getattr(self, name) in (None, {})]
        if missing:
            raise ValueError(f'{consumer} needs teacher targets {missing}, but the configured teacher did not '
                             f'produce them. Use a teacher that fills them (see geokit.models.teachers) or drop '
                             f'the objective from the config.')

    def map_tensors(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TeacherTargets:
        """Apply ``fn`` to every tensor (including each feature map); returns a new object."""
        mapped = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = fn(value)
            elif isinstance(value, dict):
                value = {k: fn(v) for k, v in value.items()}
            mapped[f.name] = value
        return TeacherTargets(**mapped)

    def to(self, *args, **kwargs) -> TeacherTargets:
        """Move every tensor (``Tensor.to`` semantics); returns a new object."""
        return self.map_tensors(lambda t: t.to(*args, **kwargs))

    def detach(self) -> TeacherTargets:
        """Targets never carry gradients back into a teacher."""
        return self.map_tensors(torch.Tensor.detach)
