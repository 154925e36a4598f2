"""The batch contract in code (docs/architecture.md, "Sample contract"): a batch is the list of sample dicts.

Every MLLM config's dataloader sets ``collate_fn=dict(type='geokit.list_collate')`` (:mod:`geokit.datasets.collate`;
geometry-only models use its ``geometry_collate``).
mmengine's ``pseudo_collate`` (its default) transposes the samples into a dict of per-sample lists; code that must
also accept that form turns it back into the list with :func:`uncollate`, and nowhere else. This module sits on the
bottom floor (it imports nothing of geokit), so datasets, models and evaluation all read batches through it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LIST_COLLATE_FIX = "set the dataloader's collate_fn=dict(type='geokit.list_collate')"


def _is_transposed_sequence(column: list | tuple) -> bool:
    """``pseudo_collate`` transposes a value by the type of the *first* sample's value: a list, tuple or dict is
    split item by item (so the column's first entry is itself a collated list or dict), anything else (a tensor, a
    number, a string, ``None``) is kept as the list of the samples' values."""
    return bool(column) and isinstance(column[0], (list, tuple, Mapping))


def _column_lengths(value: Any) -> set[int]:
    """The lengths of every list of per-sample values in a ``pseudo_collate`` output (one per sample each)."""
    if isinstance(value, Mapping):
        return set().union(*(_column_lengths(item) for item in value.values()))
    if isinstance(value, (list, tuple)):
        if _is_transposed_sequence(value):
            return set().union(*(_column_lengths(item) for item in value))
        return {len(value)} if value else set()
    raise TypeError(f'a value of type {type(value).__name__} where pseudo_collate leaves a list of per-sample values')


def _split(value: Any, size: int) -> list:
    """One collated value back into its ``size`` per-sample values (the exact inverse of ``pseudo_collate``)."""
    if isinstance(value, Mapping):
        columns = {key: _split(item, size) for key, item in value.items()}
        return [{key: column[index] for key, column in columns.items()} for index in range(size)]
    if _is_transposed_sequence(value):
        items = [_split(item, size) for item in value]                 # item k of every sample
        return [[item[index] for item in items] for index in range(size)]
    if not value:                                                      # every sample had an empty sequence
        return [[] for _ in range(size)]
    return list(value)


def uncollate(batch: Any) -> list[dict]:
    """The list of sample dicts of a batch, from geokit's list or from mmengine's ``pseudo_collate`` dict.

    The rule is structural, mirroring how ``pseudo_collate`` builds its output: a dict holds one collated value per
    key; a list whose first entry is a list or dict is a sequence that was transposed item by item (e.g. the
    conversation turns, or a ``frame_indices`` list); any other list is the column of per-sample values. The batch
    size is the common length of those columns.

    Args:
        batch: a list of sample dicts (returned as a new list) or a ``pseudo_collate`` output dict.

    Returns:
        One dict per sample. Tuples transposed by ``pseudo_collate`` come back as lists.

    Raises:
        TypeError: if ``batch`` is neither, or the dict's columns disagree in length (it is not what
            ``pseudo_collate`` returns); the message names ``collate_fn=dict(type='geokit.list_collate')``.
    """
    if isinstance(batch, (list, tuple)):
        kinds = sorted({type(sample).__name__ for sample in batch if not isinstance(sample, Mapping)})
        if kinds:
            raise TypeError(f'A geokit batch is a list of sample dicts, but this one holds {kinds}; '
                            f'{LIST_COLLATE_FIX}.')
        return list(batch)
    if not isinstance(batch, Mapping):
        raise TypeError(f'A geokit batch is a list of sample dicts, got {type(batch).__name__}; {LIST_COLLATE_FIX}.')
    try:
        lengths = _column_lengths(batch)
    except TypeError as error:
        raise TypeError(f'This dict batch is not mmengine pseudo_collate output ({error}); {LIST_COLLATE_FIX}.') \
            from None
    if len(lengths) != 1:
        raise TypeError(f'This dict batch is not mmengine pseudo_collate output: its per-sample lists have lengths '
                        f'{sorted(lengths)}, not one batch size; {LIST_COLLATE_FIX}.')
    return _split(batch, lengths.pop())
