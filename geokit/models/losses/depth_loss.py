"""Dense depth objectives: confidence-weighted L1 with gradient matching (VGGT), GeoVR's trimmed L1, and SILog.

The math of both cores lives in :mod:`geokit.ops` (fused Triton kernels on CUDA, the torch reference in
:mod:`geokit.ops.reference` otherwise); this file adds the supervision mask and the registered modules.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geokit.registry import LOSSES

from .utils import check_same_shape, loss_impl, masked_quantile, ops_core, positive_finite, warn_nothing_valid

__all__ = ['depth_supervision_mask', 'quantile_filtered_mean', 'depth_gradient_loss', 'trimmed_l1_depth_loss',
           'ConfidenceDepthLoss', 'TrimmedL1DepthLoss', 'ScaleInvariantDepthLoss']


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


def quantile_filtered_mean(loss: torch.Tensor, keep_quantile: float = 0.98, min_elements: int = 1000,
                           hard_max: float = 100.0) -> torch.Tensor:
    """Mean of the per-pixel losses at or below their ``keep_quantile``-quantile (GeoVR's ``filter_by_quantile``).

    With ``n`` values: if ``n <= min_elements`` all are averaged as they are. Otherwise the threshold is the
    ``k``-th smallest value of ``min(loss, hard_max)`` with ``k = ceil(keep_quantile * (n - 1)) + 1`` (at most
    ``hard_max``); values above it are dropped. If fewer than ``min_elements`` survive, all values are averaged,
    each clamped at ``hard_max``. The threshold carries no gradient. (GeoVR estimates the threshold on a random
    1M subset above 10M values; here it is always exact.)

    Args:
        loss: 1-D per-pixel losses (e.g. ``|pred - target|`` of one sample's valid pixels).

    Returns:
        0-dim mean; 0 for an empty input.
    """
    if loss.numel() == 0:
        return loss.sum()
    if loss.numel() <= min_elements:
        return loss.mean()
    k = math.ceil(keep_quantile * (loss.numel() - 1)) + 1
    threshold = min(float(torch.kthvalue(loss.detach().clamp(max=hard_max).flatten(), k).values), hard_max)
    kept = loss[loss <= threshold]
    if kept.numel() < min_elements:
        return loss.clamp(max=hard_max).mean()
    return kept.mean()


def depth_gradient_loss(diff: torch.Tensor, valid: torch.Tensor, num_scales: int = 4, clamp: float = 100.0,
                        min_pixels: int = 10) -> torch.Tensor:
    """GeoVR's confidence-free multi-scale gradient term of one sample.

    At scale ``s`` (every ``2**s``-th pixel of ``diff = pred - target``, skipped if fewer than ``min_pixels`` are
    valid): ``mean |dx|`` over valid x-neighbour pairs ``+ mean |dy|`` over valid y-neighbour pairs, each
    difference clamped at ``clamp``; the loss is the mean over the scales used (0 if none).

    Args:
        diff: ``(..., H, W)`` prediction minus target. valid: ``(..., H, W)`` bool.
    """
    total, used = diff.sum() * 0, 0
    for scale in range(num_scales):
        step = 2 ** scale
        d, m = diff[..., ::step, ::step], valid[..., ::step, ::step]
        if int(m.sum()) < min_pixels:
            continue
        term = diff.sum() * 0
        for axis in (-1, -2):
            length = d.shape[axis]
            grad = (d.narrow(axis, 1, length - 1) - d.narrow(axis, 0, length - 1)).abs().clamp(max=clamp)
            pair = m.narrow(axis, 1, length - 1) & m.narrow(axis, 0, length - 1)
            if bool(pair.any()):
                term = term + grad[pair].mean()
        total, used = total + term, used + 1
    return total / used if used else total


def trimmed_l1_depth_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                          keep_quantile: float = 0.98, min_elements: int = 1000, hard_max: float = 100.0,
                          grad_weight: float = 1.0, num_scales: int = 4) -> torch.Tensor:
    """GeoVR's depth loss (``_compute_depth_loss`` without a confidence), averaged over the samples.

    Per sample: :func:`quantile_filtered_mean` of ``|pred - target|`` over its valid pixels, plus ``grad_weight``
    times :func:`depth_gradient_loss` of ``pred - target``; then the mean over samples (each sample counts the
    same, whatever its number of valid pixels).

    Args:
        pred, target: ``(B, T, H, W)`` depth. mask: ``(B, T, H, W)`` bool or None (all pixels).
    """
    valid = torch.isfinite(pred) & torch.isfinite(target)
    if mask is not None:
        valid = valid & mask.bool()
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    diff = torch.where(valid, pred - target, zero)
    per_sample = []
    for b in range(pred.shape[0]):
        regression = quantile_filtered_mean(diff[b][valid[b]].abs(), keep_quantile, min_elements, hard_max)
        per_sample.append(regression + grad_weight * depth_gradient_loss(diff[b], valid[b], num_scales,
                                                                         clamp=hard_max))
    return torch.stack(per_sample).mean()


@LOSSES.register_module()
class TrimmedL1DepthLoss(nn.Module):
    """GeoVR's depth objective as published: L1 with the worst 2 % of pixels dropped + a gradient term, no confidence.

    GeoVR's ``DenseHead`` returns no confidence, so its ``_compute_depth_loss`` (``models/qwen3vl_geo.py``) reduces to
    :func:`trimmed_l1_depth_loss`. Pair it with ``DPTDepthHead(confidence=False)``. Trade-off against
    :class:`ConfidenceDepthLoss` (geokit's default): no learned per-pixel uncertainty, so hard pixels are only
    dropped by the quantile, not down-weighted.

    ``forward(pred (B,T,H,W), target (B,T,H,W), mask (B,T,H,W) | None, teacher_conf = ignored)`` returns
    ``{'loss': loss_weight * loss, 'depth_valid_ratio'}``.

    Args:
        keep_quantile: per-sample quantile of the L1 values kept (GeoVR: 0.98).
        min_elements, hard_max: see :func:`quantile_filtered_mean` (GeoVR: 1000, 100).
        grad_weight: weight of the gradient term (GeoVR: 1). num_scales: its dyadic scales (GeoVR: 4).
        loss_weight: overall weight.
    """

    def __init__(self, keep_quantile: float = 0.98, min_elements: int = 1000, hard_max: float = 100.0,
                 grad_weight: float = 1.0, num_scales: int = 4, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < keep_quantile <= 1.0:
            raise ValueError(f'TrimmedL1DepthLoss: keep_quantile must be in (0, 1], got {keep_quantile}.')
        self.keep_quantile, self.min_elements, self.hard_max = keep_quantile, min_elements, hard_max
        self.grad_weight, self.num_scales, self.loss_weight = grad_weight, num_scales, loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                teacher_conf: torch.Tensor | None = None, conf: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        if conf is not None:
            raise ValueError('TrimmedL1DepthLoss uses no predicted confidence (GeoVR\'s head has none); set the depth '
                             'head to DPTDepthHead(confidence=False), or use ConfidenceDepthLoss.')
        check_same_shape(type(self).__name__, pred=pred, target=target, mask=mask)
        if pred.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects (B, T, H, W) inputs, got {tuple(pred.shape)}.')
        keep = positive_finite(target, mask=mask) & torch.isfinite(pred)
        if not bool(keep.any()):
            warn_nothing_valid(type(self).__name__, 'Check the target depth (0 = invalid) and the mask.')
        loss = trimmed_l1_depth_loss(pred, target, keep, self.keep_quantile, self.min_elements, self.hard_max,
                                     self.grad_weight, self.num_scales)
        return {'loss': self.loss_weight * loss, 'depth_valid_ratio': keep.float().mean().detach()}


@LOSSES.register_module()
class ConfidenceDepthLoss(nn.Module):
    """Confidence-aware depth objective (VGGT's; geokit's default).

    GeoVR's published head has no confidence, so what GeoVR trains is :class:`TrimmedL1DepthLoss`. Trade-off: the
    learned confidence down-weights hard pixels smoothly instead of dropping the worst 2 %.

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
