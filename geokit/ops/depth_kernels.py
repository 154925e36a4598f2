"""Fused Triton kernels for :func:`geokit.ops.reference.confidence_depth_loss` (forward and backward).

One main launch computes the whole loss: the regulariser ``conf * |d| - alpha * log(conf)`` and the gradient-matching
term at every dyadic scale. Each program owns a ``(BLOCK_H, BLOCK_W)`` tile of one ``(H, W)`` image and reads its
own pixels once from DRAM. A pixel on the grid of scale ``s`` (row and column divisible by ``2**s``) also needs its
right and lower neighbours at distance ``2**s``; those are read with shifted, masked loads that mostly hit L1/L2
(they belong to the same or an adjacent tile), so all scales come out of one pass over memory. Each program writes
``2 + 2 * num_scales`` partial sums; a one-program finalize kernel sums them in float64 (deterministic, no atomics)
and writes the loss and the normalisers, so the forward is two launches and the backward one, with no torch
epilogue and no host synchronisation. The backward kernel is one more pass: per pixel it recomputes ``d`` and
visits the four neighbours at each scale (the pixel is the left/upper *or* right/lower member of a pair).

Importing this module imports Triton; set ``TRITON_INTERPRET=1`` *before* importing it to run on CPU tensors.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from geokit.ops._triton_utils import contiguous_float, is_interpreted, mask_as_uint8, next_pow2

__all__ = ['INTERPRETED', 'fused_confidence_depth_loss']

_FLT_MAX = tl.constexpr(3.4028234663852886e38)


@triton.jit
def _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs, inb):
    """Validity, ``d = pred - target`` (0 where invalid) and ``conf`` (1 where invalid) at ``offs``, in float32."""
    p = tl.load(pred_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    c = tl.load(conf_ptr + offs, mask=inb, other=1.0).to(tl.float32)
    t = tl.load(target_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    m = tl.load(mask_ptr + offs, mask=inb, other=0)
    valid = inb & (m != 0) & (tl.abs(p) <= _FLT_MAX) & (tl.abs(t) <= _FLT_MAX) & (tl.abs(c) <= _FLT_MAX) & (c > 0)
    d = tl.where(valid, p, 0.0) - tl.where(valid, t, 0.0)
    c = tl.where(valid, c, 1.0)
    return valid, d, c


@triton.jit
def _sign(x):
    return tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0))


@triton.jit
def _tile(H, W, tiles_h, tiles_w, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    pid = tl.program_id(0)
    tw = pid % tiles_w
    th = (pid // tiles_w) % tiles_h
    img = pid // (tiles_w * tiles_h)
    r = (th * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
    c = (tw * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    inb = (r < H) & (c < W)
    offs = img.to(tl.int64) * H * W + r * W + c
    return pid, r, c, inb, offs


@triton.jit
def _depth_fwd_kernel(pred_ptr, conf_ptr, target_ptr, mask_ptr, part_ptr, H, W, tiles_h, tiles_w, alpha,
                      NUM_SCALES: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    pid, r, cc, inb, offs = _tile(H, W, tiles_h, tiles_w, BLOCK_H, BLOCK_W)
    valid, d, c = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs, inb)
    reg = tl.where(valid, c * tl.abs(d) - alpha * tl.log(c), 0.0)
    out = part_ptr + pid * (2 + 2 * NUM_SCALES)
    tl.store(out, tl.sum(tl.sum(reg, axis=1), axis=0))
    tl.store(out + 1, tl.sum(tl.sum(valid.to(tl.float32), axis=1), axis=0))
    for s in tl.static_range(NUM_SCALES):
        step: tl.constexpr = 1 << s
        on = valid & ((r % step) == 0) & ((cc % step) == 0)
        vx, dx, _cx = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs + step, on & (cc + step < W))
        vy, dy, _cy = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs + step * W, on & (r + step < H))
        g = tl.where(vx, c * tl.abs(dx - d), 0.0) + tl.where(vy, c * tl.abs(dy - d), 0.0)
        tl.store(out + 2 + 2 * s, tl.sum(tl.sum(g, axis=1), axis=0))
        tl.store(out + 3 + 2 * s, tl.sum(tl.sum(on.to(tl.float32), axis=1), axis=0))


@triton.jit
def _depth_finalize_kernel(part_ptr, loss_ptr, norm_ptr, programs, grad_weight,
                           NUM_SCALES: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr):
    """One program: float64 sums of the per-program partials -> the loss and the normalisers the backward needs."""
    K: tl.constexpr = 2 + 2 * NUM_SCALES
    scales = tl.arange(0, BLOCK_S)[None, :]
    in_s = scales < NUM_SCALES
    reg = tl.zeros([BLOCK_P], dtype=tl.float64)
    cnt = tl.zeros([BLOCK_P], dtype=tl.float64)
    g = tl.zeros([BLOCK_P, BLOCK_S], dtype=tl.float64)
    n_s = tl.zeros([BLOCK_P, BLOCK_S], dtype=tl.float64)
    for p0 in range(0, programs, BLOCK_P):
        rows = p0 + tl.arange(0, BLOCK_P)
        row_ok = rows < programs
        base = part_ptr + rows.to(tl.int64) * K
        reg += tl.load(base, mask=row_ok, other=0.0).to(tl.float64)
        cnt += tl.load(base + 1, mask=row_ok, other=0.0).to(tl.float64)
        both = row_ok[:, None] & in_s
        g += tl.load(base[:, None] + 2 + 2 * scales, mask=both, other=0.0).to(tl.float64)
        n_s += tl.load(base[:, None] + 3 + 2 * scales, mask=both, other=0.0).to(tl.float64)
    n_valid = tl.maximum(tl.sum(cnt, axis=0), 1.0)
    n_scale = tl.maximum(tl.sum(n_s, axis=0), 1.0)
    s_idx = tl.arange(0, BLOCK_S)
    grad_term = tl.sum(tl.where(s_idx < NUM_SCALES, tl.sum(g, axis=0) / n_scale, 0.0), axis=0)
    loss = tl.sum(reg, axis=0) / n_valid + grad_weight * grad_term / NUM_SCALES
    tl.store(loss_ptr, loss.to(tl.float32))
    tl.store(norm_ptr, n_valid.to(tl.float32))
    tl.store(norm_ptr + 1 + s_idx, n_scale.to(tl.float32), mask=s_idx < NUM_SCALES)


@triton.jit
def _depth_bwd_kernel(pred_ptr, conf_ptr, target_ptr, mask_ptr, gout_ptr, norm_ptr, gpred_ptr, gconf_ptr,
                      gtarget_ptr, H, W, tiles_h, tiles_w, alpha, grad_weight,
                      NUM_SCALES: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
                      NEED_PRED: tl.constexpr, NEED_CONF: tl.constexpr, NEED_TARGET: tl.constexpr):
    _pid, r, cc, inb, offs = _tile(H, W, tiles_h, tiles_w, BLOCK_H, BLOCK_W)
    valid, d, c = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs, inb)
    g_out = tl.load(gout_ptr).to(tl.float32)
    w_reg = g_out / tl.load(norm_ptr)
    gd = tl.where(valid, w_reg * c * _sign(d), 0.0)
    gc = tl.where(valid, w_reg * (tl.abs(d) - alpha / c), 0.0)
    for s in tl.static_range(NUM_SCALES):
        step: tl.constexpr = 1 << s
        w_s = g_out * grad_weight / NUM_SCALES / tl.load(norm_ptr + 1 + s)
        on = valid & ((r % step) == 0) & ((cc % step) == 0)
        # This pixel as the left / upper member of a pair: it carries the confidence weight.
        vx, dx, _cx = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs + step, on & (cc + step < W))
        vy, dy, _cy = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs + step * W, on & (r + step < H))
        gc += tl.where(vx, w_s * tl.abs(dx - d), 0.0) + tl.where(vy, w_s * tl.abs(dy - d), 0.0)
        gd -= tl.where(vx, w_s * c * _sign(dx - d), 0.0) + tl.where(vy, w_s * c * _sign(dy - d), 0.0)
        # This pixel as the right / lower member: the neighbour's confidence weighs it.
        vl, dl, cl = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs - step, on & (cc >= step))
        vu, du, cu = _load_pixel(pred_ptr, conf_ptr, target_ptr, mask_ptr, offs - step * W, on & (r >= step))
        gd += tl.where(vl, w_s * cl * _sign(d - dl), 0.0) + tl.where(vu, w_s * cu * _sign(d - du), 0.0)
    if NEED_PRED:
        tl.store(gpred_ptr + offs, gd.to(gpred_ptr.dtype.element_ty), mask=inb)
    if NEED_TARGET:
        tl.store(gtarget_ptr + offs, (-gd).to(gtarget_ptr.dtype.element_ty), mask=inb)
    if NEED_CONF:
        tl.store(gconf_ptr + offs, gc.to(gconf_ptr.dtype.element_ty), mask=inb)


INTERPRETED: bool = is_interpreted(_depth_fwd_kernel)


def _blocks(H: int, W: int) -> tuple[int, int, int]:
    """``(BLOCK_H, BLOCK_W, num_warps)``: 32x32 tiles on a GPU, few large tiles under the interpreter."""
    if INTERPRETED:
        return min(next_pow2(H), 64), min(next_pow2(W), 128), 1
    return 32, 32, 4


class _ConfidenceDepthLoss(torch.autograd.Function):

    @staticmethod
    def forward(ctx, pred: torch.Tensor, conf: torch.Tensor, target: torch.Tensor, mask_u8: torch.Tensor,
                alpha: float, grad_weight: float, num_scales: int, block_h: int, block_w: int,
                num_warps: int) -> torch.Tensor:
        H, W = pred.shape[-2:]
        images = pred.numel() // max(H * W, 1)
        tiles_h, tiles_w = triton.cdiv(H, block_h), triton.cdiv(W, block_w)
        programs = images * tiles_h * tiles_w
        parts = torch.empty(programs, 2 + 2 * num_scales, device=pred.device, dtype=torch.float32)
        if programs > 0:
            _depth_fwd_kernel[(programs,)](pred, conf, target, mask_u8, parts, H, W, tiles_h, tiles_w, float(alpha),
                                           NUM_SCALES=num_scales, BLOCK_H=block_h, BLOCK_W=block_w,
                                           num_warps=num_warps)
        loss = torch.empty((), device=pred.device, dtype=torch.float32)
        norms = torch.empty(1 + num_scales, device=pred.device, dtype=torch.float32)
        _depth_finalize_kernel[(1,)](parts, loss, norms, programs, float(grad_weight), NUM_SCALES=num_scales,
                                     BLOCK_P=min(next_pow2(programs), 256), BLOCK_S=next_pow2(num_scales))
        ctx.save_for_backward(pred, conf, target, mask_u8, norms)
        ctx.cfg = (float(alpha), float(grad_weight), num_scales, H, W, tiles_h, tiles_w, programs, block_h, block_w,
                   num_warps)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        pred, conf, target, mask_u8, norms = ctx.saved_tensors
        alpha, grad_weight, num_scales, H, W, tiles_h, tiles_w, programs, block_h, block_w, num_warps = ctx.cfg
        need_pred, need_conf, need_target = ctx.needs_input_grad[:3]
        gpred = torch.empty_like(pred) if need_pred else None
        gconf = torch.empty_like(conf) if need_conf else None
        gtarget = torch.empty_like(target) if need_target else None
        if programs > 0 and (need_pred or need_conf or need_target):
            _depth_bwd_kernel[(programs,)](
                pred, conf, target, mask_u8, grad_out.contiguous(), norms, gpred if need_pred else norms,
                gconf if need_conf else norms, gtarget if need_target else norms,
                H, W, tiles_h, tiles_w, alpha, grad_weight, NUM_SCALES=num_scales, BLOCK_H=block_h, BLOCK_W=block_w,
                NEED_PRED=need_pred, NEED_CONF=need_conf, NEED_TARGET=need_target, num_warps=num_warps)
        return gpred, gconf, gtarget, None, None, None, None, None, None, None


def fused_confidence_depth_loss(pred: torch.Tensor, conf: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                                alpha: float = 0.2, grad_weight: float = 1.0, num_scales: int = 4,
                                block_h: int | None = None, block_w: int | None = None) -> torch.Tensor:
    """Triton version of :func:`geokit.ops.reference.confidence_depth_loss` (same math, float32 accumulation).

    Args:
        pred, conf, target: ``(..., H, W)`` float32/float16/bfloat16 tensors on the kernel's device (float64 is
            computed in float32).
        mask: ``(..., H, W)`` bool.
        alpha, grad_weight, num_scales: as in the reference.
        block_h, block_w: tile size (powers of two); default 32x32 on a GPU, the whole image (capped) under the
            interpreter.

    Returns:
        0-dim float32 tensor, differentiable w.r.t. ``pred``, ``conf`` and ``target``.
    """
    if num_scales < 1:
        raise ValueError(f'confidence_depth_loss: num_scales must be >= 1, got {num_scales}.')
    H, W = pred.shape[-2:]
    bh, bw, warps = _blocks(H, W)
    bh, bw = block_h or bh, block_w or bw
    return _ConfidenceDepthLoss.apply(contiguous_float(pred), contiguous_float(conf), contiguous_float(target),
                                      mask_as_uint8(mask), alpha, grad_weight, num_scales, bh, bw, warps)
