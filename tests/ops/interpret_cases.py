"""Parity cases: the Triton kernels (run by the Triton CPU interpreter) vs the torch references, fp32.

Not collected by a plain ``pytest tests`` run (the name does not match ``test_*.py``): ``test_interpret_parity.py``
runs this file in a subprocess with ``TRITON_INTERPRET=1``, which must be set before the kernels are imported and
must not leak into the rest of the suite. To run it by hand::

    TRITON_INTERPRET=1 python -m pytest tests/ops/interpret_cases.py -q

Shapes are small and blocks large (one or a few programs per kernel launch) so the interpreter stays fast.
Forward values and the gradients of every differentiable input must match to 1e-5 relative.
"""
from __future__ import annotations

import os

import pytest
import torch

if os.environ.get('TRITON_INTERPRET') != '1':
    raise RuntimeError('tests/ops/interpret_cases.py needs TRITON_INTERPRET=1 set before it is imported; run it '
                       'through tests/ops/test_interpret_parity.py or with `TRITON_INTERPRET=1 python -m pytest`.')

from geokit import ops  # noqa: E402
from geokit.ops import reference  # noqa: E402
from geokit.ops.cosine_kernels import INTERPRETED as COS_INTERPRETED  # noqa: E402
from geokit.ops.cosine_kernels import fused_cosine_alignment_loss  # noqa: E402
from geokit.ops.depth_kernels import INTERPRETED as DEPTH_INTERPRETED  # noqa: E402
from geokit.ops.depth_kernels import fused_confidence_depth_loss  # noqa: E402
from geokit.ops.silog_kernels import INTERPRETED as SILOG_INTERPRETED  # noqa: E402
from geokit.ops.silog_kernels import fused_silog_loss  # noqa: E402

RTOL = 1e-5


def _run(fn, inputs, requires_grad):
    """Loss and gradients of ``fn(*inputs)`` w.r.t. the inputs flagged in ``requires_grad``."""
    leaves = [x.clone().requires_grad_(flag) if isinstance(x, torch.Tensor) and flag else x
              for x, flag in zip(inputs, requires_grad)]
    loss = fn(*leaves)
    loss.backward()
    return loss.detach(), [x.grad if flag else None for x, flag in zip(leaves, requires_grad)]


def assert_parity(fused, ref, inputs, requires_grad, grad_atol=None):
    """Forward to ``RTOL`` relative; each gradient to ``RTOL`` relative element-wise plus an absolute floor of
    ``1e-6 * max|reference gradient|`` (summation-order noise on entries that cancel to ~0)."""
    loss_f, grads_f = _run(fused, inputs, requires_grad)
    loss_r, grads_r = _run(ref, inputs, requires_grad)
    assert loss_f.dtype == torch.float32 and torch.isfinite(loss_f)
    torch.testing.assert_close(loss_f, loss_r, rtol=RTOL, atol=1e-7)
    for i, (gf, gr) in enumerate(zip(grads_f, grads_r)):
        if gr is None:
            continue
        assert gf is not None and gf.shape == gr.shape and gf.dtype == gr.dtype, f'input {i}'
        assert torch.isfinite(gf).all(), f'non-finite gradient for input {i}'
        atol = grad_atol if grad_atol is not None else 1e-6 * float(gr.abs().max()) + 1e-12
        torch.testing.assert_close(gf, gr, rtol=RTOL, atol=atol, msg=lambda m, i=i: f'grad of input {i}: {m}')
    return loss_f, grads_f


def test_kernels_are_interpreted():
    assert DEPTH_INTERPRETED and COS_INTERPRETED and SILOG_INTERPRETED


# ----------------------------------------------------------------------------------------------- depth (contract a)

def _depth_inputs(shape, seed, p_valid=0.7):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(shape, generator=g) * 4 + 0.2
    target = torch.rand(shape, generator=g) * 4 + 0.2
    conf = 1 + torch.rand(shape, generator=g) * 3
    mask = torch.rand(shape, generator=g) < p_valid
    # Garbage where the mask is off, plus pixels the validity rule itself rejects (conf <= 0, non-finite).
    pred[~mask] = float('nan')
    target.view(-1)[::7] = torch.where(mask.view(-1)[::7], target.view(-1)[::7], torch.tensor(float('inf')))
    conf.view(-1)[3::11] = 0.0
    conf.view(-1)[5::13] = -1.0
    pred.view(-1)[2::17] = float('inf')
    return pred, conf, target, mask


@pytest.mark.parametrize('shape,blocks,kwargs', [
    ((1, 2, 13, 19), (None, None), {}),                                                 # one tile per image
    ((1, 1, 21, 37), (16, 32), dict(alpha=0.5, grad_weight=2.0, num_scales=3)),         # 2x2 tiles, edges
    ((1, 2, 13, 11), (None, None), dict(num_scales=5)),                                 # 2**4 > H: 1-pixel grid
    ((1, 1, 9, 10), (None, None), dict(num_scales=1, alpha=0.0)),
])
def test_depth_parity(shape, blocks, kwargs):
    inputs = _depth_inputs(shape, seed=sum(shape))
    fused = lambda p, c, t, m: fused_confidence_depth_loss(p, c, t, m, block_h=blocks[0], block_w=blocks[1],
                                                           **kwargs)
    ref = lambda p, c, t, m: reference.confidence_depth_loss(p, c, t, m, **kwargs)
    assert_parity(fused, ref, inputs, (True, True, True, False))


def test_depth_partial_requires_grad_and_dispatcher():
    inputs = _depth_inputs((1, 2, 12, 16), seed=3)
    fused = lambda p, c, t, m: ops.confidence_depth_loss(p, c, t, m, impl='triton')
    assert_parity(fused, reference.confidence_depth_loss, inputs, (True, False, False, False))
    assert_parity(fused, reference.confidence_depth_loss, inputs, (False, True, False, False))


def test_depth_all_invalid():
    pred, conf, target, mask = _depth_inputs((1, 2, 8, 8), seed=4)
    mask = torch.zeros_like(mask)
    loss, grads = assert_parity(fused_confidence_depth_loss, reference.confidence_depth_loss,
                                (pred, conf, target, mask), (True, True, True, False))
    assert loss.item() == 0.0
    assert all(bool((g == 0).all()) for g in grads if g is not None)


# -------------------------------------------------------------------------------------------- cosine (contract b)

def _cos_inputs(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(n, c, generator=g)
    teacher = torch.randn(n, c, generator=g) + 0.3 * student
    mask = torch.rand(n, generator=g) < 0.75
    student[1, 3] = float('inf')
    teacher[4, 0] = float('nan')
    return student, teacher, mask


@pytest.mark.parametrize('use_mask', [True, False])
@pytest.mark.parametrize('n,c,blocks', [(37, 70, (None, None)), (50, 96, (16, 32))])  # 1 program / 4x3 chunks
def test_cosine_parity(n, c, blocks, use_mask):
    student, teacher, mask = _cos_inputs(n, c, seed=n + c)
    fused = lambda s, t, m: fused_cosine_alignment_loss(s, t, m, block_n=blocks[0], block_c=blocks[1])
    assert_parity(fused, reference.cosine_alignment_loss, (student, teacher, mask if use_mask else None),
                  (True, True, False))


def test_cosine_zero_rows_and_dispatcher():
    student, teacher, mask = _cos_inputs(24, 40, seed=7)
    student[5] = 0.0          # |s| < 1e-6: the clamp is active, d|s|/ds = 0
    teacher[6] = 0.0
    student[7] = 1e-8
    fused = lambda s, t, m: ops.cosine_alignment_loss(s, t, m, impl='triton')
    # Gradients of the zero rows are ~1e6 times larger than the rest: compare small entries on their own scale.
    assert_parity(fused, reference.cosine_alignment_loss, (student, teacher, mask), (True, True, False),
                  grad_atol=1e-9)


def test_cosine_all_invalid():
    student, teacher, _ = _cos_inputs(16, 24, seed=8)
    mask = torch.zeros(16, dtype=torch.bool)
    loss, grads = assert_parity(fused_cosine_alignment_loss, reference.cosine_alignment_loss,
                                (student, teacher, mask), (True, True, False))
    assert loss.item() == 0.0 and all(bool((g == 0).all()) for g in grads if g is not None)


# --------------------------------------------------------------------------------------------- silog (contract c)

def _silog_inputs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(shape, generator=g) * 3 + 0.1
    target = torch.rand(shape, generator=g) * 3 + 0.1
    mask = torch.rand(shape, generator=g) < 0.7
    mask[1] = False                                   # a sample with no valid pixel is left out of the mean
    pred.view(-1)[::9] = -1.0
    target.view(-1)[4::13] = 0.0
    pred.view(-1)[6::29] = float('nan')
    target.view(-1)[2::31] = float('inf')
    return pred, target, mask


@pytest.mark.parametrize('use_mask', [True, False])
@pytest.mark.parametrize('shape,block,lambd', [((3, 2, 9, 11), None, 0.85), ((3, 4, 10, 12), 128, 0.5)])
def test_silog_parity(shape, block, lambd, use_mask):
    pred, target, mask = _silog_inputs(shape, seed=shape[1])
    fused = lambda p, t, m: fused_silog_loss(p, t, m, lambd=lambd, block=block)
    ref = lambda p, t, m: reference.silog_loss(p, t, m, lambd=lambd)
    assert_parity(fused, ref, (pred, target, mask if use_mask else None), (True, True, False))


def test_silog_clamped_variance_and_dispatcher():
    g = torch.Generator().manual_seed(9)
    target = torch.rand(2, 3, 8, 8, generator=g) + 0.5
    pred = target * (1 + 0.1 * torch.rand(2, 3, 8, 8, generator=g))
    pred[0] = target[0]            # d == 0 exactly: the variance clamp at 1e-8 is active and the gradient is 0
    mask = torch.rand(2, 3, 8, 8, generator=g) < 0.8
    fused = lambda p, t, m: ops.silog_loss(p, t, m, lambd=1.0, impl='triton')
    ref = lambda p, t, m: reference.silog_loss(p, t, m, lambd=1.0)
    assert_parity(fused, ref, (pred, target, mask), (True, True, False))


def test_silog_all_invalid():
    pred, target, mask = _silog_inputs((2, 1, 6, 7), seed=10)
    mask = torch.zeros_like(mask)
    loss, grads = assert_parity(fused_silog_loss, reference.silog_loss, (pred, target, mask), (True, True, False))
    assert loss.item() == 0.0 and all(bool((g == 0).all()) for g in grads if g is not None)
