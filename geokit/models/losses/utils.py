"""Shared helpers of the loss modules: the ``geokit.ops`` core resolver, validity masks, quantiles, warnings."""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from mmengine.logging import print_log

from geokit.ops import reference

_WARN_EVERY = 100
_warn_counts: dict[str, int] = {}


def ops_core(name: str) -> Callable[..., torch.Tensor]:
    """The ``geokit.ops`` dispatcher ``name`` (Triton on CUDA, torch otherwise), or its torch reference.

    The dispatchers are defined by the kernels package; the reference is the same math (see
    :mod:`geokit.ops.reference`), so both give the same loss.
    """
    import geokit.ops as ops
    return getattr(ops, name, None) or getattr(reference, name)


def loss_impl(owner: str, impl: str, has_kernel: bool = True) -> str:
    """Check a loss module's ``impl`` (``'auto'`` | ``'torch'`` | ``'triton'``, see :mod:`geokit.ops`).

    ``has_kernel=False``: the loss has no Triton kernel, so ``'triton'`` is refused (``'auto'`` is the torch path).
    """
    from geokit.ops import check_impl
    check_impl(impl, f'{owner}: impl')
    if impl == 'triton' and not has_kernel:
        raise ValueError(f"{owner} has no Triton kernel; set impl='auto' or 'torch'.")
    return impl


def warn_nothing_valid(owner: str, hint: str) -> None:
    """Log (first time, then every 100th time per owner) that a loss had no valid element and returned 0."""
    count = _warn_counts.get(owner, 0)
    _warn_counts[owner] = count + 1
    if count % _WARN_EVERY == 0:
        print_log(f'{owner}: no valid element in this batch, the loss is 0 (seen {count + 1} time(s)). {hint}',
                  logger='current', level=logging.WARNING)


def positive_finite(*tensors: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask of elements that are finite and ``> 0`` in every tensor (and true in ``mask``)."""
    valid = torch.ones_like(tensors[0], dtype=torch.bool)
    for tensor in tensors:
        valid = valid & torch.isfinite(tensor) & (tensor > 0)
    return valid if mask is None else valid & mask.bool()


def check_same_shape(owner: str, **tensors: torch.Tensor | None) -> None:
    """Raise ``ValueError`` listing every shape when the given tensors do not all have the same shape."""
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if v is not None}
    if len(set(shapes.values())) > 1:
        listing = ', '.join(f'{k}={s}' for k, s in shapes.items())
        raise ValueError(f'{owner}: inputs must have the same shape, got {listing}.')


def masked_quantile(values: torch.Tensor, valid: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``q``-quantile (lower) of ``values (B, N)`` over ``valid (B, N)``; ``+inf`` for an empty row."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f'quantile must be in [0, 1], got {q}.')
    filled = torch.where(valid, values, torch.full_like(values, float('inf')))
    ordered = filled.sort(dim=1).values
    count = valid.sum(1)
    index = ((count - 1).clamp(min=0).to(torch.float64) * q).floor().long()
    picked = ordered.gather(1, index[:, None])[:, 0]
    return torch.where(count > 0, picked, torch.full_like(picked, float('inf')))
