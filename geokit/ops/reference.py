"""Pure-torch reference implementations of the loss cores that have fused Triton kernels.

These functions *are* the math of the corresponding objectives (docs/architecture.md, "Taps, heads and
losses"): the Triton kernels in :mod:`geokit.ops` are tested against them, and the loss modules in
:mod:`geokit.models.losses` call the :mod:`geokit.ops` dispatchers, which fall back to these on CPU.

Numerics: every function accumulates in at least float32 (float64 inputs stay float64, so ``gradcheck`` works) and
returns a 0-dim tensor of that dtype. Invalid elements (masked out, non-finite, or outside the domain of a ``log``)
are replaced *before* any arithmetic, so they contribute neither NaN values nor NaN gradients. When nothing is
valid the result is an exact ``0`` that is still attached to the autograd graph (all gradients are zero).
"""
from __future__ import annotations

import torch

__all__ = ['confidence_depth_loss', 'cosine_alignment_loss', 'silog_loss']


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        if t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _check_same_shape(name: str, **tensors: torch.Tensor | None) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if v is not None}
    if len(set(shapes.values())) > 1:
        listing = ', '.join(f'{k}={s}' for k, s in shapes.items())
        raise ValueError(f'{name}: all inputs must have the same shape, got {listing}. '
                         f'Resize the prediction to the target resolution (or vice versa) before the loss.')


def confidence_depth_loss(pred: torch.Tensor, conf: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                          alpha: float = 0.2, grad_weight: float = 1.0, num_scales: int = 4) -> torch.Tensor:
    """Confidence-weighted L1 depth loss with a ``-alpha*log(conf)`` regulariser and multi-scale gradient matching.

    With ``d = pred - target`` and ``N`` the number of valid pixels in the whole batch::

        reg = sum_valid(conf * |d| - alpha * log(conf)) / max(N, 1)
        for s in 0..num_scales-1 (pixels p[..., ::2**s, ::2**s]):
            gx = conf[..., :, :-1] * |d[..., :, 1:] - d[..., :, :-1]|   on horizontal pairs with both pixels valid
            gy = conf[..., :-1, :] * |d[..., 1:, :] - d[..., :-1, :]|   on vertical pairs with both pixels valid
            g_s = (sum gx + sum gy) / max(#valid pixels at scale s, 1)
        loss = reg + grad_weight * mean_s(g_s)

    A pixel is valid where ``mask`` is true, ``conf > 0`` and ``pred``, ``conf``, ``target`` are finite.

    Args:
        pred: ``(B, T, H, W)`` predicted depth (any unit, same as ``target``).
        conf: ``(B, T, H, W)`` predicted confidence, ``> 0`` (e.g. ``1 + exp(x)``).
        target: ``(B, T, H, W)`` target depth.
        mask: ``(B, T, H, W)`` bool, pixels that supervise.
        alpha: weight of the ``-log(conf)`` regulariser.
        grad_weight: weight of the gradient-matching term.
        num_scales: number of dyadic scales of the gradient term (``>= 1``).

    Returns:
        0-dim tensor (float32, or float64 for float64 inputs); ``0`` when no pixel is valid.
    """
    _check_same_shape('confidence_depth_loss', pred=pred, conf=conf, target=target, mask=mask)
    if pred.dim() < 2:
        raise ValueError(f'confidence_depth_loss expects (..., H, W) inputs, got pred shape {tuple(pred.shape)}.')
    if num_scales < 1:
        raise ValueError(f'confidence_depth_loss: num_scales must be >= 1, got {num_scales}.')
    dtype = _compute_dtype(pred, conf, target)
    pred, conf, target = pred.to(dtype), conf.to(dtype), target.to(dtype)
    valid = mask.bool() & torch.isfinite(pred) & torch.isfinite(target) & torch.isfinite(conf) & (conf > 0)
    zero = torch.zeros((), dtype=dtype, device=pred.device)
    one = torch.ones((), dtype=dtype, device=pred.device)
    d = torch.where(valid, pred, zero) - torch.where(valid, target, zero)
    c = torch.where(valid, conf, one)

    n_valid = valid.sum().clamp(min=1).to(dtype)
    reg = torch.where(valid, c * d.abs() - alpha * torch.log(c), zero).sum() / n_valid

    grad_terms = []
    for s in range(num_scales):
        step = 2 ** s
        ds, cs, ms = d[..., ::step, ::step], c[..., ::step, ::step], valid[..., ::step, ::step]
        pair_x = ms[..., :, 1:] & ms[..., :, :-1]
        pair_y = ms[..., 1:, :] & ms[..., :-1, :]
        gx = torch.where(pair_x, cs[..., :, :-1] * (ds[..., :, 1:] - ds[..., :, :-1]).abs(), zero).sum()
        gy = torch.where(pair_y, cs[..., :-1, :] * (ds[..., 1:, :] - ds[..., :-1, :]).abs(), zero).sum()
        grad_terms.append((gx + gy) / ms.sum().clamp(min=1).to(dtype))
    return reg + grad_weight * torch.stack(grad_terms).mean()


def cosine_alignment_loss(student: torch.Tensor, teacher: torch.Tensor,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``1 - cosine similarity`` between matching rows of two feature matrices.

    ``cos = <s, t> / (max(|s|, 1e-6) * max(|t|, 1e-6))``; ``loss = sum_valid(1 - cos) / max(#valid, 1)``.
    A row is valid where ``mask`` is true (all rows when ``mask`` is None) and both rows are finite.

    Args:
        student: ``(N, C)`` student features (e.g. projected MLLM tokens).
        teacher: ``(N, C)`` teacher features at the same positions.
        mask: ``(N,)`` bool or None.

    Returns:
        0-dim tensor (float32, or float64 for float64 inputs); ``0`` when no row is valid.
    """
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(f'cosine_alignment_loss expects student and teacher of the same shape (N, C), got '
                         f'student {tuple(student.shape)} and teacher {tuple(teacher.shape)}. Project the student '
                         f'to the teacher channel width and flatten positions into N.')
    if mask is not None and tuple(mask.shape) != (student.shape[0],):
        raise ValueError(f'cosine_alignment_loss: mask must have shape (N,) = ({student.shape[0]},), '
                         f'got {tuple(mask.shape)}.')
    dtype = _compute_dtype(student, teacher)
    student, teacher = student.to(dtype), teacher.to(dtype)
    valid = torch.isfinite(student).all(-1) & torch.isfinite(teacher).all(-1)
    if mask is not None:
        valid = valid & mask.bool()
    zero = torch.zeros((), dtype=dtype, device=student.device)
    s = torch.where(valid[:, None], student, zero)
    t = torch.where(valid[:, None], teacher, zero)
    # sqrt(max(|x|^2, eps^2)) == max(|x|, eps) with a finite gradient at x = 0.
    s_norm = (s * s).sum(-1).clamp(min=1e-12).sqrt()
    t_norm = (t * t).sum(-1).clamp(min=1e-12).sqrt()
    cos = (s * t).sum(-1) / (s_norm * t_norm)
    return torch.where(valid, 1 - cos, zero).sum() / valid.sum().clamp(min=1).to(dtype)


def silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               lambd: float = 0.85) -> torch.Tensor:
    """Scale-invariant log (SILog) depth loss, averaged over the samples of the batch.

    Per sample ``b``, over its valid pixels (``mask & pred > 0 & target > 0``, both finite),
    ``d = log(pred) - log(target)`` and ``v_b = sqrt(max(mean(d^2) - lambd * mean(d)^2, 1e-8))``;
    the loss is the mean of ``v_b`` over samples with at least one valid pixel (0 if none).

    Args:
        pred: ``(B, ...)`` predicted depth, e.g. ``(B, T, H, W)``.
        target: ``(B, ...)`` target depth (same unit; the loss is invariant to a global scale only for lambd=1).
        mask: ``(B, ...)`` bool, or None for all pixels.
        lambd: variance/scale-invariance trade-off in ``[0, 1]``.

    Returns:
        0-dim tensor (float32, or float64 for float64 inputs).
    """
    _check_same_shape('silog_loss', pred=pred, target=target, mask=mask)
    if pred.dim() < 1:
        raise ValueError('silog_loss expects (B, ...) inputs with a batch dimension, got a 0-dim tensor.')
    dtype = _compute_dtype(pred, target)
    pred, target = pred.to(dtype), target.to(dtype)
    valid = torch.isfinite(pred) & torch.isfinite(target) & (pred > 0) & (target > 0)
    if mask is not None:
        valid = valid & mask.bool()
    one = torch.ones((), dtype=dtype, device=pred.device)
    zero = torch.zeros((), dtype=dtype, device=pred.device)
    d = torch.log(torch.where(valid, pred, one)) - torch.log(torch.where(valid, target, one))
    d = torch.where(valid, d, zero).flatten(1)
    n = valid.flatten(1).sum(1)
    n_safe = n.clamp(min=1).to(dtype)
    mean = d.sum(1) / n_safe
    mean_sq = (d * d).sum(1) / n_safe
    v = (mean_sq - lambd * mean * mean).clamp(min=1e-8).sqrt()
    has = n > 0
    return torch.where(has, v, zero).sum() / has.sum().clamp(min=1).to(dtype)
