"""Batch collation for geokit samples."""
from __future__ import annotations

from collections.abc import Sequence

from geokit.registry import FUNCTIONS


@FUNCTIONS.register_module()
def list_collate(batch: Sequence[dict]) -> list[dict]:
    """Keep a batch as the list of sample dicts.

    geokit samples hold ragged values (option lists, conversations, per-video frame counts) that mmengine's
    ``pseudo_collate`` would transpose into a dict of lists; the model's data preprocessor does the real collation
    (tokenisation, padding, geometry tokens). Use ``collate_fn=dict(type='list_collate')`` in dataloader configs.
    """
    return list(batch)
