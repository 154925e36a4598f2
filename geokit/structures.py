"""Data contracts shared across geokit: what teachers produce and objectives consume.

The fields, shapes, units and which teacher fills what: docs/architecture.md, "TeacherTargets".
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import torch
from mmengine.logging import print_log

#: sample names already reported by :meth:`TeacherTargets.masked_invalid` (one warning per file)
_WARNED: set[str] = set()


def _warn_once(name: str, problem: str, excluded: bool) -> None:
    if name in _WARNED:
        return
    _WARNED.add(name)
    action = 'excluded from the geometric objectives' if excluded else 'the invalid pixels are masked'
    print_log(f'Invalid teacher / ground-truth values in {name}: {problem}; {action}. (Reported once per file.)',
              logger='current', level=logging.WARNING)


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
        sample_valid: ``(B,)`` bool, or ``None`` (all valid): ``False`` excludes a sample from every geometric
            objective (no valid ground-truth pixel, or a target that is not finite); set by :meth:`masked_invalid`.

    Invalid pixels carry depth 0 and confidence 0 (``depth_conf``/``points_conf``); objectives mask them.
    """

    pose_enc: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    depth_conf: torch.Tensor | None = None
    points: torch.Tensor | None = None
    points_conf: torch.Tensor | None = None
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    metric_scale: torch.Tensor | None = None
    image_hw: tuple[int, int] | None = None
    sample_valid: torch.Tensor | None = None

    def require(self, *names: str, consumer: str = 'this objective') -> None:
        """Fail clearly when a target an objective needs was not produced by the configured teacher."""
        missing = [name for name in names if getattr(self, name) in (None, {})]
        if missing:
            raise ValueError(f'{consumer} needs teacher targets {missing}, but the configured teacher did not '
                             f'produce them. Use a teacher that fills them (see geokit.models.teachers) or drop '
                             f'the objective from the config.')

    def masked_invalid(self, sample_names: Sequence[str] | None = None) -> TeacherTargets:
        """Targets in which every value an objective can see is finite.

        Non-finite depth (NaN, inf) becomes an invalid pixel (depth 0, ``depth_conf`` 0), likewise non-finite points
        (``points_conf`` 0) and confidences (0). A sample whose pose encoding, metric scale or features are not
        finite (or not positive, for the scale), or which has no valid depth pixel at all, is excluded from the
        objectives (``sample_valid`` False; its values are replaced by finite placeholders). Each masked or excluded
        sample is reported once per name (``sample_names``, e.g. the video files) with a logged warning.
        """
        names = list(sample_names) if sample_names is not None else None
        batch = next((t.shape[0] for t in (self.pose_enc, self.depth, self.metric_scale, self.points)
                      if t is not None), None)
        if batch is None:
            return self
        problems: list[list[str]] = [[] for _ in range(batch)]
        valid = torch.ones(batch, dtype=torch.bool) if self.sample_valid is None else \
            self.sample_valid.bool().cpu().clone()
        updates: dict = {}

        def count(mask: torch.Tensor) -> torch.Tensor:
            return mask.flatten(1).sum(1).cpu()

        if self.depth is not None:
            bad = ~torch.isfinite(self.depth)
            conf = self.depth_conf
            if conf is not None:
                bad_conf = ~torch.isfinite(conf)
                conf = torch.where(bad | bad_conf, torch.zeros_like(conf), conf)
            elif bad.any():
                conf = (~bad).to(self.depth.dtype)
            for i, n in enumerate(count(bad).tolist()):
                if n:
                    problems[i].append(f'{n} non-finite depth pixels masked')
            depth = torch.where(bad, torch.zeros_like(self.depth), self.depth)
            usable = (depth > 0) if conf is None else (depth > 0) & (conf > 0)
            for i, n in enumerate(count(usable).tolist()):
                if not n and valid[i]:
                    valid[i] = False
                    problems[i].append('no valid depth pixel')
            updates.update(depth=depth, depth_conf=conf)
        if self.points is not None:
            bad = ~torch.isfinite(self.points).all(-1)
            conf = self.points_conf
            if conf is not None:
                conf = torch.where(bad | ~torch.isfinite(conf), torch.zeros_like(conf), conf)
            for i, n in enumerate(count(bad).tolist()):
                if n:
                    problems[i].append(f'{n} non-finite points masked')
            updates.update(points=torch.where(bad[..., None], torch.zeros_like(self.points), self.points),
                           points_conf=conf)
        per_sample = {'pose_enc': self.pose_enc, 'metric_scale': self.metric_scale}
        per_sample.update({f'features[{layer}]': value for layer, value in self.features.items()})
        for name, value in per_sample.items():
            if value is None:
                continue
            good = torch.isfinite(value) if value.dim() > 1 else torch.isfinite(value) & (value > 0)
            good_sample = good.reshape(batch, -1).all(1).cpu()
            for i in (~good_sample).nonzero().flatten().tolist():
                if valid[i]:
                    problems[i].append(f'{name} not finite' + (' or not positive' if value.dim() == 1 else ''))
                valid[i] = False
            placeholder = torch.ones_like(value) if value.dim() == 1 else torch.zeros_like(value)
            fixed = torch.where(good, value, placeholder)
            if name.startswith('features['):
                updates.setdefault('features', dict(self.features))[int(name[9:-1])] = fixed
            else:
                updates[name] = fixed
        for i, found in enumerate(problems):
            if found:
                _warn_once(names[i] if names else f'sample {i} of a batch', '; '.join(found),
                           excluded=not bool(valid[i]))
        device = next(t.device for t in (self.pose_enc, self.depth, self.metric_scale, self.points) if t is not None)
        return dataclasses.replace(self, **updates, sample_valid=valid.to(device))

    def check_finite(self, sample_names: Sequence[str] | None = None, consumer: str = 'an objective') -> None:
        """The guard before the objectives: every target of a valid sample is finite.

        Raises:
            ValueError: naming the sample and the target (teacher output that :meth:`masked_invalid` did not see).
        """
        valid = self.sample_valid
        for f in fields(self):
            value = getattr(self, f.name)
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for layer, tensor in items:
                if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                    continue
                good = torch.isfinite(tensor).reshape(tensor.shape[0], -1).all(1)
                if valid is not None:
                    good = good | ~valid.to(good.device)
                if not bool(good.all()):
                    i = int((~good).nonzero()[0])
                    name = sample_names[i] if sample_names is not None else f'sample {i}'
                    target = f.name if layer is None else f'{f.name}[{layer}]'
                    raise ValueError(f'{consumer}: teacher target {target} of {name} is not finite. Mask invalid '
                                     f'values with TeacherTargets.masked_invalid() where the targets are made.')

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
