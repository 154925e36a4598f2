"""Metric scale objective: L1 between predicted and target metric scales in log space (GeoVR: ``log1p``)."""
from __future__ import annotations

import torch
from torch import nn

from geokit.registry import LOSSES

from .utils import loss_impl, warn_nothing_valid

__all__ = ['metric_scale_loss', 'MetricScaleLoss']


def metric_scale_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                      log1p: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """``mean_valid |f(pred) - f(target)|`` with ``f = log1p`` (default) or ``log``.

    Args:
        pred: ``(B,)`` (or ``(B, 1)``) predicted scale, metres per teacher depth unit.
        target: same shape, target scale; samples with a non-finite or ``<= 0`` target are ignored.
        mask: same shape, bool, or None.
        log1p: use ``log(1 + x)`` (bounded slope near 0) instead of ``log(x)``.
        eps: predictions are clamped to ``>= 0`` (log1p) or ``>= eps`` (log) so ``f`` stays finite.

    Returns:
        0-dim tensor; ``0`` when no sample is valid.
    """
    if pred.shape != target.shape or (mask is not None and mask.shape != pred.shape):
        raise ValueError(f'metric_scale_loss expects pred, target (and mask) of the same shape (B,), got pred '
                         f'{tuple(pred.shape)}, target {tuple(target.shape)}, '
                         f'mask {None if mask is None else tuple(mask.shape)}.')
    valid = torch.isfinite(pred) & torch.isfinite(target) & (target > 0)
    if mask is not None:
        valid = valid & mask.bool()
    one = torch.ones((), dtype=pred.dtype, device=pred.device)
    p = torch.where(valid, pred, one)
    t = torch.where(valid, target, one)
    if log1p:
        diff = torch.log1p(p.clamp(min=0.0)) - torch.log1p(t)
    else:
        diff = torch.log(p.clamp(min=eps)) - torch.log(t)
    return torch.where(valid, diff.abs(), torch.zeros_like(diff)).sum() / valid.sum().clamp(min=1).to(pred.dtype)


@LOSSES.register_module()
class MetricScaleLoss(nn.Module):
    """Metric scale objective (GeoVR): L1 in ``log1p`` (or ``log``) space between scale factors.

    ``forward(pred (B,), target (B,), mask (B,) | None)`` returns ``{'loss': loss_weight * metric_scale_loss}``.

    Args:
        log1p: ``log1p`` (GeoVR) or ``log``.
        loss_weight: overall weight.
        impl: ``'auto'`` | ``'torch'`` (this loss has no Triton kernel; ``'triton'`` is refused).
    """

    def __init__(self, log1p: bool = True, loss_weight: float = 1.0, impl: str = 'auto') -> None:
        super().__init__()
        self.impl = loss_impl(type(self).__name__, impl, has_kernel=False)
        self.log1p, self.loss_weight = log1p, loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        loss = metric_scale_loss(pred, target, mask, log1p=self.log1p)
        valid = torch.isfinite(pred) & torch.isfinite(target) & (target > 0)
        if not bool((valid if mask is None else valid & mask.bool()).any()):
            warn_nothing_valid(type(self).__name__, 'Check the metric-scale teacher output (metric_scale).')
        return {'loss': self.loss_weight * loss}
