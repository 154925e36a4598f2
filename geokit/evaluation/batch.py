"""The samples of a data batch as the metrics read them, whichever collate function built it."""
from __future__ import annotations

from typing import Any

from geokit.samples import uncollate


def batch_samples(data_batch: Any, size: int) -> list[dict]:
    """The ``size`` sample dicts of a batch (one per model output), read once per batch.

    ``data_batch`` is a list of sample dicts (geokit's contract) or mmengine's ``pseudo_collate`` output, read
    through :func:`geokit.samples.uncollate`. An absent or empty batch, or one of another size than ``size`` (the
    number of model outputs), gives ``size`` empty dicts, so every field reads as missing.
    """
    if not data_batch:  # None, or an empty list / dict
        return [{} for _ in range(size)]
    samples = uncollate(data_batch)
    return samples if len(samples) == size else [{} for _ in range(size)]
