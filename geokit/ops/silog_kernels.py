"""Fused Triton kernels for :func:`geokit.ops.reference.silog_loss` (forward and backward).

The input is viewed as ``(B, M)``. Forward: a 2-D grid ``(cdiv(M, BLOCK), B)``; each program sums ``d``, ``d^2``
and the valid count of its chunk (``d = log(pred) - log(target)``, float32) into three partials; a tiny torch
epilogue (float64 over ``B x programs`` floats) forms ``v_b`` and the mean. Backward: per sample
``dL/dd_i = A_b (d_i - lambd * mean_b)`` with ``A_b = g / (#samples * v_b * n_b)``, computed on the device from the
saved per-sample sums (no host sync), then one pass writes ``grad_pred = dL/dd / pred`` and
``grad_target = -dL/dd / target``.

Importing this module imports Triton; set ``TRITON_INTERPRET=1`` *before* importing it to run on CPU tensors.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from geokit.ops._triton_utils import contiguous_float, is_interpreted, mask_as_uint8, next_pow2

__all__ = ['INTERPRETED', 'fused_silog_loss']

_FLT_MAX = tl.constexpr(3.4028234663852886e38)


@triton.jit
def _load_log_ratio(pred_ptr, target_ptr, mask_ptr, idx, inb, HAS_MASK: tl.constexpr):
    """Validity, ``pred``, ``target`` (1 where invalid) and ``d = log(pred) - log(target)`` (0 where invalid)."""
    p = tl.load(pred_ptr + idx, mask=inb, other=1.0).to(tl.float32)
    t = tl.load(target_ptr + idx, mask=inb, other=1.0).to(tl.float32)
    valid = inb & (p > 0) & (t > 0) & (p <= _FLT_MAX) & (t <= _FLT_MAX)
    if HAS_MASK:
        valid = valid & (tl.load(mask_ptr + idx, mask=inb, other=0) != 0)
    p = tl.where(valid, p, 1.0)
    t = tl.where(valid, t, 1.0)
    return valid, p, t, tl.log(p) - tl.log(t)


@triton.jit
def _silog_fwd_kernel(pred_ptr, target_ptr, mask_ptr, part_ptr, M, HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    k = tl.program_id(0)
    b = tl.program_id(1)
    offs = k * BLOCK + tl.arange(0, BLOCK)
    inb = offs < M
    valid, _p, _t, d = _load_log_ratio(pred_ptr, target_ptr, mask_ptr, b.to(tl.int64) * M + offs, inb, HAS_MASK)
    out = part_ptr + (b * tl.num_programs(0) + k) * 3
    tl.store(out, tl.sum(d, axis=0))
    tl.store(out + 1, tl.sum(d * d, axis=0))
    tl.store(out + 2, tl.sum(valid.to(tl.float32), axis=0))


@triton.jit
def _silog_bwd_kernel(pred_ptr, target_ptr, mask_ptr, coef_ptr, gpred_ptr, gtarget_ptr, M,
                      HAS_MASK: tl.constexpr, NEED_PRED: tl.constexpr, NEED_TARGET: tl.constexpr,
                      BLOCK: tl.constexpr):
    k = tl.program_id(0)
    b = tl.program_id(1)
    offs = k * BLOCK + tl.arange(0, BLOCK)
    inb = offs < M
    idx = b.to(tl.int64) * M + offs
    valid, p, t, d = _load_log_ratio(pred_ptr, target_ptr, mask_ptr, idx, inb, HAS_MASK)
    scale = tl.load(coef_ptr + 2 * b)
    shift = tl.load(coef_ptr + 2 * b + 1)
    gd = tl.where(valid, scale * (d - shift), 0.0)
    if NEED_PRED:
        tl.store(gpred_ptr + idx, (gd / p).to(gpred_ptr.dtype.element_ty), mask=inb)
    if NEED_TARGET:
        tl.store(gtarget_ptr + idx, (-gd / t).to(gtarget_ptr.dtype.element_ty), mask=inb)


INTERPRETED: bool = is_interpreted(_silog_fwd_kernel)


def _blocks(M: int) -> tuple[int, int]:
    """``(BLOCK, num_warps)``: 4096-element chunks on a GPU, few large programs under the interpreter."""
    if INTERPRETED:
        return min(next_pow2(M), 8192), 1
    return 4096, 8


class _SILogLoss(torch.autograd.Function):

    @staticmethod
    def forward(ctx, pred: torch.Tensor, target: torch.Tensor, mask_u8: torch.Tensor | None, lambd: float,
                block: int, num_warps: int) -> torch.Tensor:
        B = pred.shape[0]
        M = pred.numel() // max(B, 1)
        chunks = triton.cdiv(M, block)
        parts = torch.zeros(B, max(chunks, 1), 3, device=pred.device, dtype=torch.float32)
        if B > 0 and chunks > 0:
            _silog_fwd_kernel[(chunks, B)](pred, target, mask_u8 if mask_u8 is not None else parts, parts, M,
                                           HAS_MASK=mask_u8 is not None, BLOCK=block, num_warps=num_warps)
        sums = parts.sum(1, dtype=torch.float64)
        n = sums[:, 2]
        n_safe = n.clamp(min=1)
        mean = sums[:, 0] / n_safe
        q = sums[:, 1] / n_safe - lambd * mean * mean
        v = q.clamp(min=1e-8).sqrt()
        has = n > 0
        n_samples = has.sum().clamp(min=1)
        loss = torch.where(has, v, torch.zeros_like(v)).sum() / n_samples
        ctx.save_for_backward(pred, target, mask_u8, n_safe, mean, q, v, has, n_samples)
        ctx.cfg = (float(lambd), B, M, chunks, block, num_warps, mask_u8 is not None)
        return loss.float()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        pred, target, mask_u8, n_safe, mean, q, v, has, n_samples = ctx.saved_tensors
        lambd, B, M, chunks, block, num_warps, has_mask = ctx.cfg
        need_pred, need_target = ctx.needs_input_grad[:2]
        active = has & (q >= 1e-8)
        scale = torch.where(active, grad_out.to(torch.float64) / (n_samples * v * n_safe), torch.zeros_like(v))
        coef = torch.stack([scale, lambd * mean], dim=1).float().contiguous()
        gpred = torch.empty_like(pred) if need_pred else None
        gtarget = torch.empty_like(target) if need_target else None
        if B > 0 and chunks > 0 and (need_pred or need_target):
            _silog_bwd_kernel[(chunks, B)](pred, target, mask_u8 if has_mask else coef, coef,
                                           gpred if need_pred else coef, gtarget if need_target else coef, M,
                                           HAS_MASK=has_mask, NEED_PRED=need_pred, NEED_TARGET=need_target,
                                           BLOCK=block, num_warps=num_warps)
        return gpred, gtarget, None, None, None, None


def fused_silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                     lambd: float = 0.85, block: int | None = None) -> torch.Tensor:
    """Triton version of :func:`geokit.ops.reference.silog_loss` (same math, float32 accumulation).

    Args:
        pred, target: ``(B, ...)`` float32/float16/bfloat16 depth on the kernel's device (float64 runs in float32).
        mask: ``(B, ...)`` bool or None (all pixels).
        lambd: variance/scale-invariance trade-off in ``[0, 1]``.
        block: elements per program (power of two); default depends on the device.

    Returns:
        0-dim float32 tensor, differentiable w.r.t. ``pred`` and ``target``.
    """
    M = pred.numel() // max(pred.shape[0], 1)
    blk, warps = _blocks(M)
    mask_u8 = None if mask is None else mask_as_uint8(mask)
    return _SILogLoss.apply(contiguous_float(pred), contiguous_float(target), mask_u8, lambd, block or blk, warps)
