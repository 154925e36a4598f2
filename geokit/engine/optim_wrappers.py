"""``AutocastOptimWrapper``: fp32 master weights, forward and backward under ``torch.autocast`` (bf16 by default).

mmengine's ``AmpOptimWrapper`` refuses to run without a GPU and always adds a loss scaler, which bf16 does not
need (it has float32's exponent range). This wrapper is the same optimizer step with the autocast context on the
model's own device type, so a paper config's precision runs unchanged on a GPU, under FSDP (parameters stay
float32 in the shards) and on a CPU (``tools/rehearse.py``).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from geokit.registry import OPTIM_WRAPPERS

AUTOCAST_DTYPES = ('bfloat16',)


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose ``optim_context`` autocasts to ``dtype`` on the model's device type.

    Args:
        dtype: compute dtype; ``'bfloat16'`` (float16 needs loss scaling: use mmengine's ``AmpOptimWrapper``).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"AutocastOptimWrapper: dtype must be one of {AUTOCAST_DTYPES}, got {dtype!r}; for "
                             f"float16 use optim_wrapper.type='AmpOptimWrapper' (it adds the loss scaler).")
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        parameter = next(model.parameters(), None)
        device_type = parameter.device.type if parameter is not None else 'cpu'
        with super().optim_context(model), torch.autocast(device_type=device_type, dtype=self.cast_dtype):
            yield
