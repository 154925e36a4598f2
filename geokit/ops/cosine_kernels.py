"""Fused Triton kernels for :func:`geokit.ops.reference.cosine_alignment_loss` (forward and backward).

Each program owns ``BLOCK_N`` rows and streams them in ``BLOCK_C``-wide chunks, accumulating ``<s, t>``, ``|s|^2``
and ``|t|^2`` (plus a non-finite count) in float32 registers. It writes four floats per row (the row's backward
coefficients) and two per program (partial loss sum and valid count); a tiny torch epilogue forms the loss. The
backward kernel is one more streaming pass: ``grad_s = -w (a t - b s)``, ``grad_t = -w (a s - c t)`` with the
stored per-row ``a = 1/(|s||t|)``, ``b = cos/|s|^2``, ``c = cos/|t|^2``, so the whole loss costs two reads of each
input plus one write of each gradient.

Importing this module imports Triton; set ``TRITON_INTERPRET=1`` *before* importing it to run on CPU tensors.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from geokit.ops._triton_utils import contiguous_float, is_interpreted, mask_as_uint8, next_pow2

__all__ = ['INTERPRETED', 'fused_cosine_alignment_loss']

_FLT_MAX = tl.constexpr(3.4028234663852886e38)
_EPS_SQ = tl.constexpr(1e-12)  # (1e-6)**2: max(|x|, 1e-6) == sqrt(max(|x|^2, 1e-12))


@triton.jit
def _cos_fwd_kernel(s_ptr, t_ptr, mask_ptr, row_ptr, part_ptr, N, C,
                    HAS_MASK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    rin = rows < N
    base = rows.to(tl.int64)[:, None] * C
    dot = tl.zeros([BLOCK_N], dtype=tl.float32)
    ss = tl.zeros([BLOCK_N], dtype=tl.float32)
    tt = tl.zeros([BLOCK_N], dtype=tl.float32)
    bad = tl.zeros([BLOCK_N], dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)[None, :]
        inb = rin[:, None] & (cols < C)
        s = tl.load(s_ptr + base + cols, mask=inb, other=0.0).to(tl.float32)
        t = tl.load(t_ptr + base + cols, mask=inb, other=0.0).to(tl.float32)
        finite = (tl.abs(s) <= _FLT_MAX) & (tl.abs(t) <= _FLT_MAX)
        bad += tl.sum((inb & ~finite).to(tl.float32), axis=1)
        s = tl.where(finite, s, 0.0)
        t = tl.where(finite, t, 0.0)
        dot += tl.sum(s * t, axis=1)
        ss += tl.sum(s * s, axis=1)
        tt += tl.sum(t * t, axis=1)
    valid = rin & (bad == 0)
    if HAS_MASK:
        valid = valid & (tl.load(mask_ptr + rows, mask=rin, other=0) != 0)
    inv_s = 1.0 / tl.sqrt(tl.maximum(ss, _EPS_SQ))
    inv_t = 1.0 / tl.sqrt(tl.maximum(tt, _EPS_SQ))
    cos = dot * inv_s * inv_t
    row = row_ptr + rows.to(tl.int64) * 4
    tl.store(row, valid.to(tl.float32), mask=rin)
    tl.store(row + 1, tl.where(valid, inv_s * inv_t, 0.0), mask=rin)
    tl.store(row + 2, tl.where(valid & (ss >= _EPS_SQ), cos * inv_s * inv_s, 0.0), mask=rin)
    tl.store(row + 3, tl.where(valid & (tt >= _EPS_SQ), cos * inv_t * inv_t, 0.0), mask=rin)
    tl.store(part_ptr + pid * 2, tl.sum(tl.where(valid, 1.0 - cos, 0.0), axis=0))
    tl.store(part_ptr + pid * 2 + 1, tl.sum(valid.to(tl.float32), axis=0))


@triton.jit
def _cos_bwd_kernel(s_ptr, t_ptr, row_ptr, w_ptr, gs_ptr, gt_ptr, N, C,
                    NEED_S: tl.constexpr, NEED_T: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    rin = rows < N
    base = rows.to(tl.int64)[:, None] * C
    row = row_ptr + rows.to(tl.int64) * 4
    w = -tl.load(w_ptr)
    valid = (tl.load(row, mask=rin, other=0.0) != 0)[:, None]
    a = (w * tl.load(row + 1, mask=rin, other=0.0))[:, None]
    b = (w * tl.load(row + 2, mask=rin, other=0.0))[:, None]
    c = (w * tl.load(row + 3, mask=rin, other=0.0))[:, None]
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)[None, :]
        inb = rin[:, None] & (cols < C)
        s = tl.where(valid, tl.load(s_ptr + base + cols, mask=inb, other=0.0).to(tl.float32), 0.0)
        t = tl.where(valid, tl.load(t_ptr + base + cols, mask=inb, other=0.0).to(tl.float32), 0.0)
        if NEED_S:
            gs = a * t - b * s
            tl.store(gs_ptr + base + cols, gs.to(gs_ptr.dtype.element_ty), mask=inb)
        if NEED_T:
            gt = a * s - c * t
            tl.store(gt_ptr + base + cols, gt.to(gt_ptr.dtype.element_ty), mask=inb)


INTERPRETED: bool = is_interpreted(_cos_fwd_kernel)


def _blocks(N: int, C: int) -> tuple[int, int, int]:
    """``(BLOCK_N, BLOCK_C, num_warps)``: ~4K-element tiles on a GPU, few large programs under the interpreter."""
    if INTERPRETED:
        return min(next_pow2(N), 64), min(next_pow2(C), 256), 1
    block_c = min(next_pow2(C), 1024)
    return max(4096 // block_c, 1), block_c, 8


class _CosineAlignmentLoss(torch.autograd.Function):

    @staticmethod
    def forward(ctx, student: torch.Tensor, teacher: torch.Tensor, mask_u8: torch.Tensor | None, block_n: int,
                block_c: int, num_warps: int) -> torch.Tensor:
        N, C = student.shape
        programs = triton.cdiv(N, block_n)
        parts = torch.zeros(programs, 2, device=student.device, dtype=torch.float32)
        rows = torch.empty(N, 4, device=student.device, dtype=torch.float32)
        if programs > 0:
            _cos_fwd_kernel[(programs,)](student, teacher, mask_u8 if mask_u8 is not None else parts, rows, parts,
                                         N, C, HAS_MASK=mask_u8 is not None, BLOCK_N=block_n, BLOCK_C=block_c,
                                         num_warps=num_warps)
        sums = parts.sum(0, dtype=torch.float64)
        n_valid = sums[1].clamp(min=1)
        ctx.save_for_backward(student, teacher, rows, n_valid)
        ctx.cfg = (N, C, programs, block_n, block_c, num_warps)
        return (sums[0] / n_valid).float()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        student, teacher, rows, n_valid = ctx.saved_tensors
        N, C, programs, block_n, block_c, num_warps = ctx.cfg
        need_s, need_t = ctx.needs_input_grad[:2]
        weight = (grad_out.to(torch.float64) / n_valid).float().reshape(1)
        gs = torch.empty_like(student) if need_s else None
        gt = torch.empty_like(teacher) if need_t else None
        if programs > 0 and (need_s or need_t):
            _cos_bwd_kernel[(programs,)](student, teacher, rows, weight, gs if need_s else weight,
                                         gt if need_t else weight, N, C, NEED_S=need_s, NEED_T=need_t,
                                         BLOCK_N=block_n, BLOCK_C=block_c, num_warps=num_warps)
        return gs, gt, None, None, None, None


def fused_cosine_alignment_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None,
                                block_n: int | None = None, block_c: int | None = None) -> torch.Tensor:
    """Triton version of :func:`geokit.ops.reference.cosine_alignment_loss` (same math, float32 accumulation).

    Args:
        student, teacher: ``(N, C)`` float32/float16/bfloat16 on the kernel's device (float64 runs in float32).
        mask: ``(N,)`` bool or None (all rows).
        block_n, block_c: rows per program and channel chunk (powers of two); defaults depend on the device.

    Returns:
        0-dim float32 tensor, differentiable w.r.t. ``student`` and ``teacher``.
    """
    N, C = student.shape
    bn, bc, warps = _blocks(N, C)
    mask_u8 = None if mask is None else mask_as_uint8(mask)
    return _CosineAlignmentLoss.apply(contiguous_float(student), contiguous_float(teacher), mask_u8,
                                      block_n or bn, block_c or bc, warps)
