"""Camera pose objective: L1 on VGGT pose encodings ``[t (3), quaternion XYZW (4), fov_h, fov_w]``."""
from __future__ import annotations

import torch
from torch import nn

from geokit.registry import LOSSES

from .utils import loss_impl, warn_nothing_valid

__all__ = ['camera_pose_loss', 'CameraPoseLoss']


def camera_pose_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                     weight_t: float = 1.0, weight_q: float = 1.0, weight_fov: float = 0.5,
                     sign_invariant: bool = False, translation_clamp: float | None = None
                     ) -> dict[str, torch.Tensor]:
    """Per-part L1 between pose encodings.

    Each part is the mean absolute error over valid frames and the part's components: ``pose_t`` over the 3
    translation values, ``pose_q`` over the 4 quaternion values (with ``sign_invariant``, per frame the smaller of
    ``|p - q|`` and ``|p + q|``, since ``q`` and ``-q`` are the same rotation), ``pose_fov`` over the 2 FoVs.
    ``loss = weight_t * pose_t + weight_q * pose_q + weight_fov * pose_fov``. With ``translation_clamp`` every
    translation component's error is clamped at that value first (GeoVR: 100), so one wild teacher translation
    cannot dominate a batch.

    Args:
        pred: ``(..., 9)`` predicted pose encoding, e.g. ``(B, T, 9)``.
        target: ``(..., 9)`` target pose encoding (e.g. the teacher's, relative to the first frame).
        mask: ``(...)`` bool, frames that supervise (None: all). Frames with a non-finite value are dropped.
        weight_t, weight_q, weight_fov: part weights (GeoVR: 1, 1, 0.5).
        sign_invariant: treat ``q`` and ``-q`` as equal.
        translation_clamp: upper bound of each translation component's absolute error, or None (no clamp).

    Returns:
        ``{'loss': weighted sum, 'pose_t', 'pose_q', 'pose_fov'}`` 0-dim tensors (parts not detached); all ``0`` when
        no frame is valid.
    """
    if pred.shape != target.shape or pred.shape[-1:] != (9,) or (mask is not None and mask.shape != pred.shape[:-1]):
        raise ValueError(f'camera_pose_loss expects pred and target of shape (..., 9) and mask (...), got pred '
                         f'{tuple(pred.shape)}, target {tuple(target.shape)}, '
                         f'mask {None if mask is None else tuple(mask.shape)}.')
    valid = torch.isfinite(pred).all(-1) & torch.isfinite(target).all(-1)
    if mask is not None:
        valid = valid & mask.bool()
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    p = torch.where(valid[..., None], pred, zero)
    t = torch.where(valid[..., None], target, zero)
    err = (p - t).abs()
    if translation_clamp is not None:
        err = torch.cat([err[..., :3].clamp(max=translation_clamp), err[..., 3:]], dim=-1)
    err_q = err[..., 3:7].sum(-1)
    if sign_invariant:
        err_q = torch.minimum(err_q, (p[..., 3:7] + t[..., 3:7]).abs().sum(-1))
    count = valid.sum().clamp(min=1).to(pred.dtype)
    parts = {
        'pose_t': err[..., :3].sum() / (3 * count),
        'pose_q': err_q.sum() / (4 * count),
        'pose_fov': err[..., 7:].sum() / (2 * count),
    }
    loss = weight_t * parts['pose_t'] + weight_q * parts['pose_q'] + weight_fov * parts['pose_fov']
    return {'loss': loss, **parts}


@LOSSES.register_module()
class CameraPoseLoss(nn.Module):
    """Camera pose objective (GeoVR): L1 on translation / quaternion / FoV of the pose encoding.

    ``forward(pred (B, T, 9), target (B, T, 9), mask (B, T) | None)`` returns a dict: ``'loss'`` is
    ``loss_weight * (weight_t * pose_t + weight_q * pose_q + weight_fov * pose_fov)`` (differentiable, to be
    optimised) and ``'pose_t'``, ``'pose_q'``, ``'pose_fov'`` are the unweighted parts, detached, for logging (their
    names contain no ``'loss'`` so mmengine's ``parse_losses`` never sums them).

    Args:
        weight_t, weight_q, weight_fov: part weights (GeoVR: 1, 1, 0.5).
        sign_invariant: compare quaternions up to sign.
        translation_clamp: clamp each translation error at this value (GeoVR's ``_compute_camera_loss``: 100;
            default None: no clamp, every error keeps its gradient, at the risk of one outlier dominating).
        loss_weight: overall weight.
        impl: ``'auto'`` | ``'torch'`` (this loss has no Triton kernel; ``'triton'`` is refused).
    """

    def __init__(self, weight_t: float = 1.0, weight_q: float = 1.0, weight_fov: float = 0.5,
                 sign_invariant: bool = False, loss_weight: float = 1.0,
                 translation_clamp: float | None = None, impl: str = 'auto') -> None:
        super().__init__()
        self.translation_clamp = translation_clamp
        self.impl = loss_impl(type(self).__name__, impl, has_kernel=False)
        self.weight_t, self.weight_q, self.weight_fov = weight_t, weight_q, weight_fov
        self.sign_invariant = sign_invariant
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = camera_pose_loss(pred, target, mask, self.weight_t, self.weight_q, self.weight_fov,
                               self.sign_invariant, self.translation_clamp)
        valid = torch.isfinite(pred).all(-1) & torch.isfinite(target).all(-1)
        if not bool((valid if mask is None else valid & mask.bool()).any()):
            warn_nothing_valid(type(self).__name__, 'Check the teacher pose encodings and the frame mask.')
        return {'loss': self.loss_weight * out['loss'], **{k: v.detach() for k, v in out.items() if k != 'loss'}}

    def extra_repr(self) -> str:
        return (f'weight_t={self.weight_t}, weight_q={self.weight_q}, weight_fov={self.weight_fov}, '
                f'sign_invariant={self.sign_invariant}, translation_clamp={self.translation_clamp}, '
                f'loss_weight={self.loss_weight}')
