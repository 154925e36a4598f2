"""Reading one sample's field back out of a collated data batch, whichever collate function built it."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _uncollate(value: Any, index: int, size: int) -> Any:
    if isinstance(value, Mapping):
        return {key: _uncollate(item, index, size) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == size:
        return value[index]
    return value


def batch_field(data_batch: Any, key: str, index: int, size: int) -> Any:
    """Field ``key`` of sample ``index`` of a batch of ``size`` samples, or ``None`` when absent.

    Accepts a list of sample dicts (geokit's contract) and mmengine's ``pseudo_collate`` output, which turns the
    samples into a dict of per-sample lists and nested dicts (``meta``, ``geometry``) into dicts of lists.
    """
    if isinstance(data_batch, Sequence) and not isinstance(data_batch, (str, bytes)):
        sample = data_batch[index] if len(data_batch) == size else None
        return sample.get(key) if isinstance(sample, Mapping) else None
    if isinstance(data_batch, Mapping) and key in data_batch:
        return _uncollate(data_batch[key], index, size)
    return None
