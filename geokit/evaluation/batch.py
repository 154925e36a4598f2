"""Reading one sample's field back out of a data batch, whichever collate function built it."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geokit.samples import uncollate


def batch_field(data_batch: Any, key: str, index: int, size: int) -> Any:
    """Field ``key`` of sample ``index`` of a batch of ``size`` samples, or ``None`` when absent.

    ``data_batch`` is a list of sample dicts (geokit's contract) or mmengine's ``pseudo_collate`` output, read
    through :func:`geokit.samples.uncollate`. A batch of another size than ``size`` (the number of model
    outputs) gives ``None``.
    """
    if data_batch is None or (isinstance(data_batch, Mapping) and key not in data_batch):
        return None
    samples = uncollate(data_batch)
    return samples[index].get(key) if len(samples) == size else None
