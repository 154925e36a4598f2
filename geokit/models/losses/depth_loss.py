"""Dense depth objectives: confidence-weighted L1 with gradient matching (GeoVR/VGGT) and SILog.

The math of both cores lives in :mod:`geokit.ops` (fused Triton kernels on CUDA, the torch reference in
:mod:`geokit.ops.reference` otherwise); this file adds the supervision mask and the registered modules.
"""
from __future__ import annotations

import torch
from torch import nn

from geokit.registry import LOSSES

from .utils import check_same_shape, loss_impl, masked_quantile, ops_core, positive_finite, warn_nothing_valid

__all__ = ['depth_supervision_mask', 'ConfidenceDepthLoss', 'ScaleInvariantDepthLoss']


def depth_supervision_mask(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                           teacher_conf: torch.Tensor | None = None, teacher_conf_quantile: float | None = None,
                           teacher_conf_threshold: float | None = None,
                           trim_quantile: float | None = None) -> torch.Tensor:
    """Pixels that supervise a depth prediction.

    Starts from ``mask & target > 0`` (finite, and ``pred`` finite), then per sample optionally keeps only pixels
    whose teacher confidence is ``>= teacher_conf_threshold`` and ``>=`` its ``teacher_conf_quantile``-quantile
    (e.g. ``0.2`` drops the 20% least confident teacher pixels), and finally drops the residual outliers: pixels
    whose ``|pred - target|`` is above the per-sample ``trim_quantile``-quantile (e.g. ``0.98`` drops the worst 2%).
    No gradient flows through the mask.

    Args:
        pred: ``(B, T, H, W)`` predicted depth.
        target: ``(B, T, H, W)`` target depth.
        mask: ``(B, T, H, W)`` bool or None.
        teacher_conf: ``(B, T, H, W)`` teacher confidence (larger = more confident) or None.
        teacher_conf_quantile, teacher_conf_threshold, trim_quantile: filters, None to disable.

    Returns:
        ``(B, T, H, W)`` bool.
    """
    check_same_shape('depth_supervision_mask', pred=pred, target=target, mask=mask, teacher_conf=teacher_conf)
    valid = positive_finite(target, mask=mask) & torch.isfinite(pred)
    batch = pred.shape[0]
    if teacher_conf is not None and (teacher_conf_quantile is not None or teacher_conf_threshold is not None):
        conf = teacher_conf.detach()
        valid = valid & torch.isfinite(conf)
        if teacher_conf_threshold is not None:
            valid = valid & (conf >= teacher_conf_threshold)
        if teacher_conf_quantile is not None:
            cut = masked_quantile(conf.reshape(batch, -1), valid.reshape(batch, -1), teacher_conf_quantile)
            valid = valid & (conf >= cut.reshape(-1, *([1] * (conf.dim() - 1))))
    if trim_quantile is not None:
        residual = (pred.detach() - target.detach()).abs()
        cut = masked_quantile(residual.reshape(batch, -1), valid.reshape(batch, -1), trim_quantile)
        valid = valid & (residual <= cut.reshape(-1, *([1] * (residual.dim() - 1))))
    return valid


@LOSSES.register_module()
class ConfidenceDepthLoss(nn.Module):
    """Confidence-aware depth objective (VGGT / GeoVR).

    ``loss_weight * confidence_depth_loss(pred, conf, target, mask')`` where ``mask'`` is
    :func:`depth_supervision_mask` (validity, teacher-confidence filtering, residual trimming) and the core is
    ``sum(conf*|d| - alpha*log(conf)) / N + grad_weight * mean_s(gradient matching at scale s)`` (see
    :func:`geokit.ops.reference.confidence_depth_loss`).

    ``forward(pred (B,T,H,W), conf (B,T,H,W) > 0, target (B,T,H,W), mask (B,T,H,W) | None,
    teacher_conf (B,T,H,W) | None)`` returns ``{'loss': weighted loss, 'depth_valid_ratio': fraction of pixels kept}``.

    Args:
        alpha: weight of ``-log(conf)``.
        grad_weight: weight of the multi-scale gradient term.
        num_scales: dyadic scales of the gradient term.
        teacher_conf_quantile: drop the teacher's least confident pixels below this per-sample quantile (None: off).
        teacher_conf_threshold: drop pixels with teacher confidence below this (None: off).
        trim_quantile: drop pixels whose residual is above this per-sample quantile (None: off).
        loss_weight: overall weight.
        impl: the core's implementation, ``'auto'`` | ``'torch'`` | ``'triton'`` (see :mod:`geokit.ops`).
    """

    def __init__(self, alpha: float = 0.2, grad_weight: float = 1.0, num_scales: int = 4,
                 teacher_conf_quantile: float | None = None, teacher_conf_threshold: float | None = None,
                 trim_quantile: float | None = None, loss_weight: float = 1.0, impl: str = 'auto') -> None:
        super().__init__()
        self.impl = loss_impl(type(self).__name__, impl)
        self.alpha, self.grad_weight, self.num_scales = alpha, grad_weight, num_scales
        self.teacher_conf_quantile = teacher_conf_quantile
        self.teacher_conf_threshold = teacher_conf_threshold
        self.trim_quantile = trim_quantile
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, conf: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None, teacher_conf: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_same_shape(type(self).__name__, pred=pred, conf=conf, target=target, mask=mask,
                         teacher_conf=teacher_conf)
        if pred.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects (B, T, H, W) inputs, got {tuple(pred.shape)}. '
                             f'Resize the predicted depth to the target resolution first.')
        keep = depth_supervision_mask(pred, target, mask, teacher_conf, self.teacher_conf_quantile,
                                      self.teacher_conf_threshold, self.trim_quantile)
        keep = keep & torch.isfinite(conf) & (conf > 0)
        if not bool(keep.any()):
            warn_nothing_valid(type(self).__name__, 'Check the target depth (0 = invalid) and the masks / filters.')
        loss = ops_core('confidence_depth_loss')(pred, conf, target, keep, alpha=self.alpha,
                                                 grad_weight=self.grad_weight, num_scales=self.num_scales,
                                                 impl=self.impl)
        return {'loss': self.loss_weight * loss, 'depth_valid_ratio': keep.float().mean().detach()}


@LOSSES.register_module()
class ScaleInvariantDepthLoss(nn.Module):
    """Scale-invariant log depth loss (SILog, Eigen et al.), averaged over the samples of the batch.

    ``forward(pred (B, ...), target (B, ...), mask (B, ...) | None)`` returns ``{'loss': loss_weight * silog}``;
    see :func:`geokit.ops.reference.silog_loss` (``lambd=1`` is fully scale-invariant, ``0`` is log-RMSE).

    Args:
        lambd: variance weight in ``[0, 1]``.
        loss_weight: overall weight.
        impl: the core's implementation, ``'auto'`` | ``'torch'`` | ``'triton'`` (see :mod:`geokit.ops`).
    """

    def __init__(self, lambd: float = 0.85, loss_weight: float = 1.0, impl: str = 'auto') -> None:
        super().__init__()
        self.impl = loss_impl(type(self).__name__, impl)
        if not 0.0 <= lambd <= 1.0:
            raise ValueError(f'ScaleInvariantDepthLoss: lambd must be in [0, 1], got {lambd}.')
        self.lambd, self.loss_weight = lambd, loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_same_shape(type(self).__name__, pred=pred, target=target, mask=mask)
        if not bool(positive_finite(pred, target, mask=mask).any()):
            warn_nothing_valid(type(self).__name__, 'Check the target depth (0 = invalid) and the mask.')
        if mask is None:
            mask = torch.ones_like(pred, dtype=torch.bool)
        loss = ops_core('silog_loss')(pred, target, mask, lambd=self.lambd, impl=self.impl)
        return {'loss': self.loss_weight * loss}
