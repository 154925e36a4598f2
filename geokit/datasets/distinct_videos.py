"""The distinct videos of a dataset: QA datasets repeat a video once per question about it."""
from __future__ import annotations

from collections.abc import Hashable, Sequence


def _video_key(dataset: Sequence, index: int) -> Hashable:
    """``meta['video']`` of item ``index``, read from ``get_data_info`` (no decoding) where the dataset has it,
    else from the decoded sample; the index itself when the item names no video (it is then its own video)."""
    if hasattr(dataset, 'get_data_info'):
        meta = dataset.get_data_info(index).get('meta') or {}
    else:
        meta = dataset[index].get('meta') or {}
    video = meta.get('video')
    return ('index', index) if video is None else ('video', str(video))


def distinct_videos(dataset: Sequence, max_videos: int | None = None) -> list[int]:
    """The index of the first item of each distinct video of ``dataset``, in dataset order.

    Videos are told apart by ``meta['video']`` (the path geokit's video datasets put there). mmengine datasets are
    read through ``get_data_info(i)`` without decoding any video; other sequences of sample dicts are indexed (and
    so decoded). An item without ``meta['video']`` counts as a video of its own.

    Args:
        dataset: a geokit dataset, or any sequence of sample dicts with ``meta``.
        max_videos: stop after this many videos (``None``: all).
    Raises:
        ValueError: ``max_videos < 1``.
    """
    if max_videos is not None and max_videos < 1:
        raise ValueError(f'max_videos must be >= 1 or None, got {max_videos}.')
    seen, indices = set(), []
    for index in range(len(dataset)):
        key = _video_key(dataset, index)
        if key in seen:
            continue
        seen.add(key)
        indices.append(index)
        if max_videos is not None and len(indices) >= max_videos:
            break
    return indices
