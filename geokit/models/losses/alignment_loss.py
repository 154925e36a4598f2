"""Feature alignment objective: multi-layer alignment of student (MLLM head) features to 3D-teacher features."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geokit.registry import LOSSES

from .utils import loss_impl, ops_core, warn_nothing_valid

__all__ = ['prepare_alignment_pair', 'cosine_alignment', 'smooth_l1_alignment_loss', 'similarity_alignment_loss',
           'feature_alignment_loss', 'FeatureAlignmentLoss', 'ALIGNMENT_VARIANTS']

FeatureMaps = Mapping[int | str, torch.Tensor] | Sequence[torch.Tensor]


def prepare_alignment_pair(student: torch.Tensor, teacher: torch.Tensor, pool_teacher: bool = False
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a student map onto the teacher's token grid.

    Args:
        student: ``(B, T, hs, ws, C)`` student head output (already projected to the teacher width ``C``).
        teacher: ``(B, T, h, w, C)`` teacher features.
        pool_teacher: 2x2 average-pool the teacher first (``ceil`` for odd sizes), e.g. to match an MLLM that
            merges 2x2 patches.

    Returns:
        ``student, teacher`` both ``(B, T, h', w', C)``; the student is bilinearly resized when its grid differs.
    """
    if student.dim() != 5 or teacher.dim() != 5 or student.shape[:2] != teacher.shape[:2] or \
            student.shape[-1] != teacher.shape[-1]:
        raise ValueError(f'feature alignment expects student (B, T, hs, ws, C) and teacher (B, T, h, w, C) with the '
                         f'same B, T and C, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}. '
                         f'Set the alignment head output channels to the teacher feature width.')
    batch, frames = teacher.shape[:2]

    def to_nchw(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(0, 1).permute(0, 3, 1, 2)

    def from_nchw(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).unflatten(0, (batch, frames))

    if pool_teacher:
        teacher = from_nchw(F.avg_pool2d(to_nchw(teacher), kernel_size=2, ceil_mode=True))
    if student.shape[2:4] != teacher.shape[2:4]:
        student = from_nchw(F.interpolate(to_nchw(student), size=tuple(teacher.shape[2:4]), mode='bilinear',
                                          align_corners=False))
    return student, teacher


def _valid_rows(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    valid = torch.isfinite(student).all(-1) & torch.isfinite(teacher).all(-1)
    if mask is not None:
        mask = mask.bool()
        if mask.shape == valid.shape[:2]:
            mask = mask[:, :, None, None]
        elif mask.shape != valid.shape:
            raise ValueError(f'feature alignment mask must be (B, T) or (B, T, h, w) = {tuple(valid.shape)} on the '
                             f'(pooled) teacher grid, got {tuple(mask.shape)}.')
        valid = valid & mask
    return valid


def cosine_alignment(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor,
                     impl: str = 'auto') -> torch.Tensor:
    """Mean ``1 - cos`` over valid tokens of ``(B, T, h, w, C)`` maps (the ``geokit.ops`` core, ``impl`` as there)."""
    channels = student.shape[-1]
    return ops_core('cosine_alignment_loss')(student.reshape(-1, channels), teacher.reshape(-1, channels),
                                             valid.reshape(-1), impl=impl)


def smooth_l1_alignment_loss(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor,
                             beta: float = 1.0) -> torch.Tensor:
    """Smooth-L1 between ``(B, T, h, w, C)`` maps, averaged over valid tokens and channels; 0 if none valid."""
    zero = torch.zeros((), dtype=student.dtype, device=student.device)
    s = torch.where(valid[..., None], student, zero)
    t = torch.where(valid[..., None], teacher, zero)
    per_token = F.smooth_l1_loss(s, t, reduction='none', beta=beta).mean(-1)
    return torch.where(valid, per_token, zero).sum() / valid.sum().clamp(min=1).to(student.dtype)


def similarity_alignment_loss(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Match token-token cosine-similarity matrices per frame (relational / 3DRS-style alignment).

    For each frame, ``S = n(x) n(x)^T`` over its ``h*w`` tokens (``n`` = L2 normalisation); the loss is the mean
    squared difference of the student's and the teacher's ``S`` over pairs of valid tokens; 0 if none valid.
    """
    zero = torch.zeros((), dtype=student.dtype, device=student.device)
    rows = valid.flatten(2, 3)
    s = torch.where(rows[..., None], student.flatten(2, 3), zero)
    t = torch.where(rows[..., None], teacher.flatten(2, 3), zero)
    s = s / (s * s).sum(-1, keepdim=True).clamp(min=1e-12).sqrt()
    t = t / (t * t).sum(-1, keepdim=True).clamp(min=1e-12).sqrt()
    pairs = rows[..., :, None] & rows[..., None, :]
    diff = s @ s.transpose(-1, -2) - t @ t.transpose(-1, -2)
    return torch.where(pairs, diff * diff, zero).sum() / pairs.sum().clamp(min=1).to(student.dtype)


#: Alignment variants by name: ``fn(student, teacher, valid) -> scalar`` on ``(B, T, h, w, C)`` maps.
ALIGNMENT_VARIANTS: dict[str, Callable[..., torch.Tensor]] = {
    'cosine': cosine_alignment,
    'smooth_l1': smooth_l1_alignment_loss,
    'similarity': similarity_alignment_loss,
}


def _pair_layers(student: FeatureMaps, teacher: FeatureMaps) -> list[tuple[int | str, torch.Tensor, torch.Tensor]]:
    if isinstance(student, Mapping) != isinstance(teacher, Mapping):
        raise ValueError('feature alignment needs student and teacher features both as dicts {layer: map} or both '
                         f'as lists, got {type(student).__name__} and {type(teacher).__name__}.')
    if isinstance(student, Mapping):
        if set(student) != set(teacher):
            raise ValueError(f'student layers {list(student)} and teacher layers '
                             f'{list(teacher)} differ; set the alignment head layers to the teacher '
                             f'feature layers.')
        return [(key, student[key], teacher[key]) for key in teacher]
    if len(student) != len(teacher):
        raise ValueError(f'got {len(student)} student and {len(teacher)} teacher feature maps; they must pair up.')
    return [(index, s, t) for index, (s, t) in enumerate(zip(student, teacher))]


def feature_alignment_loss(student: FeatureMaps, teacher: FeatureMaps, mask: torch.Tensor | None = None,
                           variant: str = 'cosine', pool_teacher: bool = False,
                           layer_weights: Sequence[float] | None = None, **variant_kwargs
                           ) -> tuple[torch.Tensor, dict[int | str, torch.Tensor], bool]:
    """Weighted mean over layers of an alignment variant.

    Args:
        student: ``{layer: (B, T, hs, ws, C)}`` or a list of such maps.
        teacher: ``{layer: (B, T, h, w, C)}`` or a list, paired with ``student`` by key / position.
        mask: ``(B, T)`` valid frames, ``(B, T, h', w')`` valid tokens on the final grid, or None.
        variant: a key of :data:`ALIGNMENT_VARIANTS`.
        pool_teacher: 2x2 average pooling of the teacher (see :func:`prepare_alignment_pair`).
        layer_weights: one weight per layer (normalised to sum 1); None = equal.
        variant_kwargs: extra arguments of the variant (``beta`` for ``smooth_l1``).

    Returns:
        ``(loss, per-layer losses, any token valid)``.
    """
    if variant not in ALIGNMENT_VARIANTS:
        raise ValueError(f"unknown feature alignment variant '{variant}'; choose one of {sorted(ALIGNMENT_VARIANTS)}.")
    layers = _pair_layers(student, teacher)
    if not layers:
        raise ValueError('feature alignment got no feature maps; configure at least one layer.')
    weights = [1.0] * len(layers) if layer_weights is None else list(layer_weights)
    if len(weights) != len(layers) or sum(weights) <= 0:
        raise ValueError(f'layer_weights must have one positive-sum weight per layer ({len(layers)}), got {weights}.')
    per_layer, total, any_valid = {}, 0.0, False
    for (key, s, t), weight in zip(layers, weights):
        s, t = prepare_alignment_pair(s, t, pool_teacher)
        valid = _valid_rows(s, t, mask)
        any_valid = any_valid or bool(valid.any())
        per_layer[key] = ALIGNMENT_VARIANTS[variant](s, t, valid, **variant_kwargs)
        total = total + weight * per_layer[key]
    return total / sum(weights), per_layer, any_valid


@LOSSES.register_module()
class FeatureAlignmentLoss(nn.Module):
    """Multi-layer alignment of student head outputs to teacher (e.g. VGGT aggregator) features.

    ``forward(student, teacher, mask=None)`` with ``student``/``teacher`` as ``{layer: (B, T, h, w, C)}`` dicts (or
    lists) returns ``{'loss': loss_weight * weighted layer mean, 'align_<layer>': detached per-layer loss}``. The
    student is resized to the (optionally 2x2-pooled) teacher grid; teacher features should be detached.

    Args:
        variant: ``'cosine'`` (1 - cosine), ``'smooth_l1'`` or ``'similarity'`` (token-similarity matrices).
        pool_teacher: 2x2 average pooling of the teacher features.
        layer_weights: per-layer weights or None.
        beta: smooth-L1 transition point (``'smooth_l1'`` only).
        loss_weight: overall weight.
        impl: ``'auto'`` | ``'torch'`` | ``'triton'`` core of the ``'cosine'`` variant (see :mod:`geokit.ops`);
            the other variants are torch only.
    """

    def __init__(self, variant: str = 'cosine', pool_teacher: bool = False,
                 layer_weights: Sequence[float] | None = None, beta: float = 1.0, loss_weight: float = 1.0,
                 impl: str = 'auto') -> None:
        super().__init__()
        self.impl = loss_impl(type(self).__name__, impl, has_kernel=variant == 'cosine')
        if variant not in ALIGNMENT_VARIANTS:
            raise ValueError(f"FeatureAlignmentLoss: unknown variant '{variant}'; set `variant` to one of "
                             f'{sorted(ALIGNMENT_VARIANTS)}.')
        self.variant, self.pool_teacher, self.beta = variant, pool_teacher, beta
        self.layer_weights = None if layer_weights is None else list(layer_weights)
        self.loss_weight = loss_weight

    def forward(self, student: FeatureMaps, teacher: FeatureMaps,
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kwargs = {'beta': self.beta} if self.variant == 'smooth_l1' else {}
        if self.variant == 'cosine':
            kwargs['impl'] = self.impl
        loss, per_layer, any_valid = feature_alignment_loss(student, teacher, mask, self.variant, self.pool_teacher,
                                                            self.layer_weights, **kwargs)
        if not any_valid:
            warn_nothing_valid(type(self).__name__, 'Check the frame mask and that the features are finite.')
        return {'loss': self.loss_weight * loss, **{f'align_{k}': v.detach() for k, v in per_layer.items()}}

    def extra_repr(self) -> str:
        return f'variant={self.variant!r}, pool_teacher={self.pool_teacher}, loss_weight={self.loss_weight}'
