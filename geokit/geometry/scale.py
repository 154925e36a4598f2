"""Scale alignment of two depth maps (e.g. teacher-unit depth to metric depth)."""
from __future__ import annotations

import torch

__all__ = ['align_depth_scale']


def align_depth_scale(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                      robust: bool = True, num_iters: int = 10, delta: float = 1e-3,
                      empty: float = 1.0) -> torch.Tensor:
    """Per-sample scale ``s`` with ``target ≈ s * source``.

    Least squares ``s = sum(w * x * y) / sum(w * x^2)`` over valid pixels (``mask``, both finite, both ``> 0``).
    With ``robust=True`` the least-squares estimate is refined by iteratively re-weighted least squares towards the
    L1 solution (weights ``1 / max(|y - s x|, delta * median(y))``), which ignores outliers. Differentiable (the
    iterations are unrolled).

    Args:
        source: ``(B, ...)`` depth to be scaled.
        target: ``(B, ...)`` reference depth.
        mask: ``(B, ...)`` bool, or None for all pixels.
        robust: refine by IRLS (L1) instead of plain least squares.
        num_iters: IRLS iterations.
        delta: relative floor of the residual in the IRLS weights.
        empty: the scale of a sample without a valid pixel (``float('nan')`` where a target is made, so that the
            sample is masked rather than trained towards an arbitrary value).

    Returns:
        ``(B,)`` scale; ``empty`` for samples without a valid pixel.
    """
    if source.shape != target.shape or (mask is not None and mask.shape != source.shape) or source.dim() < 1:
        raise ValueError(f'align_depth_scale expects source, target (and mask) of the same shape (B, ...), got '
                         f'source {tuple(source.shape)}, target {tuple(target.shape)}, '
                         f'mask {None if mask is None else tuple(mask.shape)}.')
    valid = torch.isfinite(source) & torch.isfinite(target) & (source > 0) & (target > 0)
    if mask is not None:
        valid = valid & mask.bool()
    zero = torch.zeros((), dtype=source.dtype, device=source.device)
    x = torch.where(valid, source, zero).flatten(1)
    y = torch.where(valid, target, zero).flatten(1)
    valid = valid.flatten(1)
    has = valid.any(1)

    def weighted_ls(weight: torch.Tensor) -> torch.Tensor:
        den = (weight * x * x).sum(1)
        return (weight * x * y).sum(1) / torch.where(has, den, torch.ones_like(den))

    scale = weighted_ls(valid.to(source.dtype))
    if robust:
        y_scale = torch.stack([row[v].median() if v.any() else row.new_ones(()) for row, v in zip(y.detach(), valid)])
        floor = (delta * y_scale)[:, None]
        for _ in range(num_iters):
            residual = (y - scale[:, None] * x).abs()
            weight = torch.where(valid, 1 / torch.maximum(residual, floor), zero)
            scale = weighted_ls(weight)
    return torch.where(has, scale, torch.full_like(scale, empty))
