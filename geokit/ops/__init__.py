"""Loss cores with fused Triton kernels and their pure-torch references (same signatures, same math).

The dispatchers below pick an implementation with ``impl``:

- ``'auto'`` (default): the Triton kernels only when every tensor is on CUDA, on a device class listed in
  :data:`TRITON_VERIFIED_DEVICES` (the GPU parity tests passed there and are recorded in ``docs/benchmarks.md``),
  Triton is installed and the inputs are float32/float16/bfloat16; the torch reference (:mod:`geokit.ops.reference`)
  otherwise (CPU, an unverified GPU, float64, no Triton).
- ``'triton'``: always the kernels. CPU tensors work only under the Triton interpreter (``TRITON_INTERPRET=1`` set
  before the kernels are first used); otherwise a ``RuntimeError`` says so. float64 inputs run in float32.
- ``'torch'``: always the reference.

Triton is imported lazily (only when a Triton path runs), so ``import geokit.ops`` works without it.
See ``docs/kernels.md`` for the kernel design and ``tools/benchmark_kernels.py`` for timings.
"""
from __future__ import annotations

import importlib
from typing import Literal

import torch

from geokit.ops import reference
from geokit.ops._triton_utils import KERNEL_DTYPES, interpreter_requested, triton_available
from geokit.ops.reference import _check_same_shape

__all__ = ['IMPLS', 'TRITON_VERIFIED_DEVICES', 'check_impl', 'confidence_depth_loss', 'cosine_alignment_loss',
           'device_class', 'silog_loss', 'reference', 'resolve_impl']

Impl = Literal['auto', 'triton', 'torch']
IMPLS = ('auto', 'triton', 'torch')

#: GPU device classes (``torch.cuda.get_device_name``) where ``pytest tests/ops -m gpu`` (compiled-kernel parity
#: with the torch reference, fp32 and bf16) passed and the run is recorded in docs/benchmarks.md. ``impl='auto'``
#: uses the Triton kernels only on these. None has been verified yet; add a name here together with its record.
TRITON_VERIFIED_DEVICES: frozenset[str] = frozenset()


def check_impl(impl: str, owner: str = 'impl') -> str:
    """Return ``impl`` if it is one of :data:`IMPLS`; raise ``ValueError`` naming ``owner`` otherwise."""
    if impl not in IMPLS:
        raise ValueError(f"{owner} must be one of {IMPLS}, got {impl!r}.")
    return impl


def device_class(device: torch.device) -> str:
    """The device class ``'auto'`` looks up in :data:`TRITON_VERIFIED_DEVICES` (``'cpu'`` for CPU tensors)."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type


def _kernel_module(name: str):
    return importlib.import_module(f'geokit.ops.{name}')


def resolve_impl(impl: str, *tensors: torch.Tensor | None, kernel_module: str) -> str:
    """Return ``'triton'`` or ``'torch'`` for the given ``impl`` and inputs; raise a clear error if impossible.

    Args:
        impl: ``'auto'``, ``'triton'`` or ``'torch'``.
        tensors: the loss inputs (``None`` entries are ignored; bool masks don't affect the choice of dtype).
        kernel_module: module under :mod:`geokit.ops` that holds the kernels (e.g. ``'depth_kernels'``).
    """
    check_impl(impl)
    if impl == 'torch':
        return 'torch'
    present = [t for t in tensors if t is not None]
    on_cuda = all(t.is_cuda for t in present)
    float_ok = all(t.dtype in KERNEL_DTYPES for t in present if t.is_floating_point())
    if impl == 'auto':
        verified = on_cuda and bool(present) and device_class(present[0].device) in TRITON_VERIFIED_DEVICES
        return 'triton' if verified and float_ok and triton_available() else 'torch'
    if not triton_available():
        raise ImportError("impl='triton' needs the `triton` package, which is not importable here. "
                          "Install it (it ships with CUDA builds of torch) or use impl='auto' / 'torch'.")
    if not on_cuda:
        devices = sorted({str(t.device) for t in present})
        if any(t.device.type != 'cpu' for t in present):
            raise RuntimeError(f"impl='triton' needs all inputs on one CUDA device (or all on CPU under "
                               f"TRITON_INTERPRET=1), got devices {devices}.")
        if not _kernel_module(kernel_module).INTERPRETED:
            hint = (' TRITON_INTERPRET=1 is set now, but the kernels were imported before it was set.'
                    if interpreter_requested() else '')
            raise RuntimeError(f"impl='triton' got CPU tensors, which the Triton kernels handle only in interpreter "
                               f"mode: set TRITON_INTERPRET=1 in the environment before geokit.ops' kernels are "
                               f"first used, move the inputs to CUDA, or use impl='auto' / 'torch'.{hint}")
    return 'triton'


def confidence_depth_loss(pred: torch.Tensor, conf: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                          alpha: float = 0.2, grad_weight: float = 1.0, num_scales: int = 4,
                          impl: Impl = 'auto') -> torch.Tensor:
    """Confidence-weighted L1 depth loss + multi-scale gradient matching; see
    :func:`geokit.ops.reference.confidence_depth_loss` for the math.

    Args:
        pred, conf, target: ``(B, T, H, W)`` (any ``(..., H, W)``) depth prediction, confidence ``> 0``, target.
        mask: ``(B, T, H, W)`` bool, pixels that supervise.
        alpha, grad_weight, num_scales: regulariser weight, gradient-term weight, number of dyadic scales.
        impl: ``'auto'`` | ``'triton'`` | ``'torch'`` (see the module docstring).

    Returns:
        0-dim float32 tensor (float64 for float64 inputs on the torch path).
    """
    if resolve_impl(impl, pred, conf, target, kernel_module='depth_kernels') == 'torch':
        return reference.confidence_depth_loss(pred, conf, target, mask, alpha, grad_weight, num_scales)
    _check_same_shape('confidence_depth_loss', pred=pred, conf=conf, target=target, mask=mask)
    if pred.dim() < 2:
        raise ValueError(f'confidence_depth_loss expects (..., H, W) inputs, got pred shape {tuple(pred.shape)}.')
    return _kernel_module('depth_kernels').fused_confidence_depth_loss(pred, conf, target, mask, alpha,
                                                                       grad_weight, num_scales)


def cosine_alignment_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None,
                          impl: Impl = 'auto') -> torch.Tensor:
    """Mean ``1 - cos`` between matching rows; see :func:`geokit.ops.reference.cosine_alignment_loss`.

    Args:
        student, teacher: ``(N, C)`` features (concatenate several layers' rows into one call to fuse them).
        mask: ``(N,)`` bool or None.
        impl: ``'auto'`` | ``'triton'`` | ``'torch'``.

    Returns:
        0-dim float32 tensor (float64 for float64 inputs on the torch path).
    """
    if resolve_impl(impl, student, teacher, kernel_module='cosine_kernels') == 'torch':
        return reference.cosine_alignment_loss(student, teacher, mask)
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(f'cosine_alignment_loss expects student and teacher of the same shape (N, C), got '
                         f'student {tuple(student.shape)} and teacher {tuple(teacher.shape)}.')
    if mask is not None and tuple(mask.shape) != (student.shape[0],):
        raise ValueError(f'cosine_alignment_loss: mask must have shape (N,) = ({student.shape[0]},), '
                         f'got {tuple(mask.shape)}.')
    return _kernel_module('cosine_kernels').fused_cosine_alignment_loss(student, teacher, mask)


def silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, lambd: float = 0.85,
               impl: Impl = 'auto') -> torch.Tensor:
    """Scale-invariant log depth loss averaged over samples; see :func:`geokit.ops.reference.silog_loss`.

    Args:
        pred, target: ``(B, ...)`` positive depth (same unit).
        mask: ``(B, ...)`` bool or None.
        lambd: variance/scale-invariance trade-off in ``[0, 1]``.
        impl: ``'auto'`` | ``'triton'`` | ``'torch'``.

    Returns:
        0-dim float32 tensor (float64 for float64 inputs on the torch path).
    """
    if resolve_impl(impl, pred, target, kernel_module='silog_kernels') == 'torch':
        return reference.silog_loss(pred, target, mask, lambd)
    _check_same_shape('silog_loss', pred=pred, target=target, mask=mask)
    if pred.dim() < 1:
        raise ValueError('silog_loss expects (B, ...) inputs with a batch dimension, got a 0-dim tensor.')
    return _kernel_module('silog_kernels').fused_silog_loss(pred, target, mask, lambd)
