"""Shared plumbing of the Triton loss kernels: availability, interpreter detection, block sizes, input preparation.

Importing this module never imports Triton; :func:`triton_available` does, lazily. The kernel modules
(``geokit.ops.*_kernels``) import Triton at module level and are only imported by the dispatchers when a Triton
path is actually taken, so ``import geokit.ops`` works on machines without Triton.
"""
from __future__ import annotations

import functools
import os

import torch

#: Input dtypes the kernels accept (they load, then accumulate in float32).
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """Whether ``import triton`` succeeds (cached)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreter_requested() -> bool:
    """Whether ``TRITON_INTERPRET=1`` is set in the environment now."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def is_interpreted(kernel: object) -> bool:
    """Whether a ``@triton.jit`` function was built in interpreter mode (``TRITON_INTERPRET=1`` at import)."""
    return type(kernel).__name__ == 'InterpretedFunction'


def next_pow2(n: int) -> int:
    """Smallest power of two ``>= max(n, 1)``."""
    return 1 << max(int(n) - 1, 0).bit_length()


def contiguous_float(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a contiguous tensor in one of :data:`KERNEL_DTYPES` (float64 and integer inputs become float32)."""
    if t.dtype not in KERNEL_DTYPES:
        t = t.float()
    return t.contiguous()


def mask_as_uint8(mask: torch.Tensor) -> torch.Tensor:
    """A bool (or 0/1) mask as a contiguous ``uint8`` tensor without a copy when it already is contiguous bool."""
    if mask.dtype != torch.bool:
        mask = mask != 0
    return mask.contiguous().view(torch.uint8)
