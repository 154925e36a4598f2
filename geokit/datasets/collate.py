"""Batch collation for geokit samples.

geokit's contract (docs/architecture.md, "Sample contract"): a batch is the list of sample dicts, as
:func:`list_collate` returns it; every MLLM config's dataloader sets ``collate_fn=dict(type='geokit.list_collate')``
(geometry-only models, such as projects/tiny_teacher's, use :func:`geometry_collate`).
mmengine's ``pseudo_collate`` (its default) transposes the samples into a dict of per-sample lists; code that must
also accept that form turns it back into the list with :func:`geokit.samples.uncollate` (re-exported here), and
nowhere else.
"""
from __future__ import annotations

from collections.abc import Sequence

from geokit.registry import FUNCTIONS
from geokit.samples import uncollate

__all__ = ['geometry_collate', 'list_collate', 'uncollate']


@FUNCTIONS.register_module()
def list_collate(batch: Sequence[dict]) -> list[dict]:
    """Keep a batch as the list of sample dicts.

    geokit samples hold ragged values (option lists, conversations, per-video frame counts) that mmengine's
    ``pseudo_collate`` would transpose into a dict of lists; the model's data preprocessor does the real collation
    (tokenisation, padding, geometry tokens). Use ``collate_fn=dict(type='geokit.list_collate')`` in dataloader
    configs.
    """
    return list(batch)


@FUNCTIONS.register_module()
def geometry_collate(batch: Sequence[dict]) -> dict[str, list]:
    """Batch samples for geometry-only training (e.g. a VGGT teacher on ground truth): frames, geometry and meta.

    Returns ``{'frames': [(T, H, W, 3) uint8, ...], 'geometry': [dict | None, ...], 'meta': [dict, ...]}``, one entry
    per sample, so ``model(**batch)`` receives lists. The QA fields (conversations, options) are dropped: they are
    ragged across samples, which is why mmengine's ``pseudo_collate`` cannot batch these samples.
    """
    if not batch:
        raise ValueError('geometry_collate got an empty batch.')
    missing = [index for index, sample in enumerate(batch) if 'frames' not in sample]
    if missing:
        raise KeyError(f'geometry_collate needs `frames` in every sample; samples {missing} have none.')
    return dict(frames=[sample['frames'] for sample in batch],
                geometry=[sample.get('geometry') for sample in batch],
                meta=[sample.get('meta', {}) for sample in batch])
