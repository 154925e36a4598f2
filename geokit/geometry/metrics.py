"""Pose and depth metrics as VGGT / depth benchmarks report them.

Pose errors follow VGGT's evaluation: for every frame pair ``i < j`` the relative pose ``E_i @ E_j^{-1}`` of the
prediction is compared with the ground truth's; the rotation error is the geodesic angle between the relative
rotations, and the translation error is the angle between relative translation directions, made sign-ambiguous
(``min(err, 180 - err)``); a zero-length translation scores 90 degrees. AUC@30 is the mean of the cumulative
histogram of ``max(rot_err, trans_err)`` over the 1-degree bins ``[0,1), ..., [29, 30]``.
"""
from __future__ import annotations

import math

import torch

from .pose_encoding import closed_form_inverse_se3, compose_se3
from .scale import align_depth_scale

__all__ = ['relative_pose_errors', 'pose_auc', 'rotation_angle_deg', 'translation_angle_deg', 'depth_abs_rel',
           'depth_delta1']


def rotation_angle_deg(rot_a: torch.Tensor, rot_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle in degrees between rotations ``(..., 3, 3)``; ``atan2`` form, accurate near 0 and 180."""
    rel = rot_a.transpose(-1, -2) @ rot_b
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = torch.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                        rel[..., 1, 0] - rel[..., 0, 1]], dim=-1)
    sin = (skew * skew).sum(-1).clamp(min=1e-30).sqrt() / 2
    return torch.rad2deg(torch.atan2(sin, cos))


def translation_angle_deg(t_a: torch.Tensor, t_b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Sign-ambiguous angle in degrees (in ``[0, 90]``) between translation directions ``(..., 3)``.

    A vector shorter than ``eps`` has no direction: the error is 90 degrees.
    """
    cross = torch.linalg.cross(t_a, t_b, dim=-1)
    sin = (cross * cross).sum(-1).clamp(min=1e-30).sqrt()
    cos = (t_a * t_b).sum(-1).abs()
    angle = torch.rad2deg(torch.atan2(sin, cos))
    degenerate = (t_a.norm(dim=-1) < eps) | (t_b.norm(dim=-1) < eps)
    return torch.where(degenerate, torch.full_like(angle, 90.0), angle)


def relative_pose_errors(pred_extrinsics: torch.Tensor,
                         gt_extrinsics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative rotation / translation angular errors over all frame pairs.

    Args:
        pred_extrinsics: ``(B, T, 3, 4)`` camera-from-world.
        gt_extrinsics: ``(B, T, 3, 4)`` camera-from-world (any world frame and scale: only relative poses and
            translation directions are compared).

    Returns:
        ``rot_err_deg (B, P)`` and ``trans_err_deg (B, P)`` with ``P = T * (T - 1) / 2`` pairs ``i < j`` in
        ``torch.combinations`` order.
    """
    if pred_extrinsics.shape != gt_extrinsics.shape or pred_extrinsics.dim() != 4 or \
            tuple(pred_extrinsics.shape[-2:]) != (3, 4):
        raise ValueError(f'relative_pose_errors expects two (B, T, 3, 4) tensors of the same shape, got '
                         f'{tuple(pred_extrinsics.shape)} and {tuple(gt_extrinsics.shape)}.')
    num_frames = pred_extrinsics.shape[1]
    pairs = torch.combinations(torch.arange(num_frames, device=pred_extrinsics.device), r=2)
    if pairs.numel() == 0:
        empty = pred_extrinsics.new_zeros(pred_extrinsics.shape[0], 0)
        return empty, empty.clone()
    first, second = pairs[:, 0], pairs[:, 1]

    def relative(extr: torch.Tensor) -> torch.Tensor:
        return compose_se3(extr[:, first], closed_form_inverse_se3(extr[:, second]))

    rel_pred, rel_gt = relative(pred_extrinsics), relative(gt_extrinsics)
    rot_err = rotation_angle_deg(rel_gt[..., :3, :3], rel_pred[..., :3, :3])
    trans_err = translation_angle_deg(rel_gt[..., :3, 3], rel_pred[..., :3, 3])
    return rot_err, trans_err


def pose_auc(rot_err_deg: torch.Tensor, trans_err_deg: torch.Tensor, max_threshold: int = 30) -> float:
    """VGGT's AUC@``max_threshold``: mean over thresholds of the fraction of pairs with ``max(rot, trans)`` error
    in bins ``[0, 1), [1, 2), ..., [max_threshold - 1, max_threshold]`` accumulated (errors above are misses).

    Args:
        rot_err_deg: any shape (flattened), degrees.
        trans_err_deg: same shape, degrees.

    Returns:
        AUC in ``[0, 1]`` (NaN errors count as misses); ``nan`` for no pairs.
    """
    if rot_err_deg.shape != trans_err_deg.shape:
        raise ValueError(f'pose_auc expects errors of the same shape, got {tuple(rot_err_deg.shape)} and '
                         f'{tuple(trans_err_deg.shape)}.')
    errors = torch.maximum(rot_err_deg.flatten(), trans_err_deg.flatten()).double()
    if errors.numel() == 0:
        return math.nan
    errors = torch.nan_to_num(errors, nan=math.inf)
    in_range = (errors >= 0) & (errors <= max_threshold)
    bins = errors.clamp(0, max_threshold).floor().long().clamp(max=max_threshold - 1)
    histogram = torch.zeros(max_threshold, dtype=torch.float64, device=errors.device)
    histogram.index_add_(0, bins[in_range], torch.ones_like(errors[in_range]))
    return float((histogram / errors.numel()).cumsum(0).mean())


def _depth_inputs(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None,
                  align_scale: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if pred.shape != gt.shape or (mask is not None and mask.shape != gt.shape) or pred.dim() < 1:
        mask_shape = None if mask is None else tuple(mask.shape)
        raise ValueError(f'depth metrics expect pred, gt (and mask) of the same shape (B, ...), got pred '
                         f'{tuple(pred.shape)}, gt {tuple(gt.shape)}, mask {mask_shape}.')
    valid = torch.isfinite(gt) & (gt > 0)
    if mask is not None:
        valid = valid & mask.bool()
    if align_scale:
        scale = align_depth_scale(pred, gt, valid)
        pred = pred * scale.reshape(-1, *([1] * (pred.dim() - 1)))
    return pred.flatten(1), gt.flatten(1), valid.flatten(1)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    total = torch.where(valid, values, torch.zeros_like(values)).sum(1)
    count = valid.sum(1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def depth_abs_rel(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
                  align_scale: bool = False) -> torch.Tensor:
    """Absolute relative error ``mean(|pred - gt| / gt)`` per sample over valid pixels (``mask & gt > 0``, finite).

    Args:
        pred, gt: ``(B, ...)`` depth in the same unit. mask: ``(B, ...)`` bool or None.
        align_scale: first scale ``pred`` per sample onto ``gt`` with :func:`align_depth_scale`
            (for up-to-scale predictions).

    Returns:
        ``(B,)``; NaN for a sample without a valid pixel (average with ``nanmean``).
    """
    pred, gt, valid = _depth_inputs(pred, gt, mask, align_scale)
    gt_safe = torch.where(valid, gt, torch.ones_like(gt))
    return _masked_mean((pred - gt_safe).abs() / gt_safe, valid)


def depth_delta1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
                 align_scale: bool = False, threshold: float = 1.25) -> torch.Tensor:
    """Fraction of valid pixels with ``max(pred / gt, gt / pred) < threshold`` (``pred <= 0`` counts as a miss).

    Arguments and NaN convention as :func:`depth_abs_rel`. Returns ``(B,)`` in ``[0, 1]``.
    """
    pred, gt, valid = _depth_inputs(pred, gt, mask, align_scale)
    gt_safe = torch.where(valid, gt, torch.ones_like(gt))
    pred_pos = pred > 0
    pred_safe = torch.where(pred_pos, pred, torch.ones_like(pred))
    ratio = torch.maximum(pred_safe / gt_safe, gt_safe / pred_safe)
    hit = (ratio < threshold) & pred_pos
    return _masked_mean(hit.to(gt.dtype), valid)
