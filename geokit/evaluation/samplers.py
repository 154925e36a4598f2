"""``SkipScoredSampler``: a test sampler that leaves out the samples an earlier, interrupted run already scored."""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping

import torch
from mmengine.dataset import DefaultSampler
from mmengine.logging import print_log

from geokit.evaluation.records import read_records, resolve_out_dir
from geokit.registry import DATA_SAMPLERS


def sample_id(dataset, index: int) -> str:
    """The ``id`` of sample ``index`` without loading its video.

    Uses the raw annotation of mmengine-style datasets (``get_data_info(index)['id']`` or ``[...]['meta']['id']``);
    datasets without ``get_data_info`` are indexed in full (slow: decodes the video).
    Raises:
        KeyError: the dataset's samples carry no ``id``.
    """
    info = dataset.get_data_info(index) if hasattr(dataset, 'get_data_info') else dataset[index]
    if isinstance(info, Mapping):
        if 'id' in info:
            return str(info['id'])
        meta = info.get('meta')
        if isinstance(meta, Mapping) and 'id' in meta:
            return str(meta['id'])
    raise KeyError(f'SkipScoredSampler needs an `id` per sample, but {type(dataset).__name__}[{index}] has none '
                   f'(looked at get_data_info(i)["id"] and ["meta"]["id"]). Use a DefaultSampler for this dataset.')


@DATA_SAMPLERS.register_module()
class SkipScoredSampler(DefaultSampler):
    """``DefaultSampler`` over the samples whose ids are not yet in the predictions of ``predictions_dir``.

    Pair it with ``VSIBenchMetric(resume=True)`` (same directory) to continue an interrupted test: the metric keeps
    and counts the earlier records, the sampler skips their samples. With ``resume=False`` the metric sets the old
    predictions aside when it is built, so this sampler then yields every sample. The set of scored ids is read
    each time the sampler is iterated (after the evaluator is built) and sharded across ranks like
    ``DefaultSampler``.

    Args:
        dataset: the test dataset (samples need an ``id``, see :func:`sample_id`).
        predictions_dir: the metric's ``out_dir``; ``None`` = ``<work_dir>/vsibench`` of the running Runner.
        shuffle / seed / round_up: as in ``DefaultSampler`` (testing usually keeps ``shuffle=False``).
    """

    def __init__(self, dataset, predictions_dir: str | None = None, shuffle: bool = False, seed: int | None = None,
                 round_up: bool = False) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        self.predictions_dir = predictions_dir
        self._indices: list[int] | None = None

    def remaining_indices(self) -> list[int]:
        """Indices of the samples not yet scored (in dataset order)."""
        out_dir = resolve_out_dir(self.predictions_dir, 'vsibench', 'test_dataloader.sampler.predictions_dir')
        scored = set(read_records(out_dir))
        if not scored:
            return list(range(len(self.dataset)))
        indices = [index for index in range(len(self.dataset)) if sample_id(self.dataset, index) not in scored]
        skipped = len(self.dataset) - len(indices)
        print_log(f'SkipScoredSampler: {skipped} of {len(self.dataset)} samples already scored in {out_dir}; '
                  f'{len(indices)} left.', logger='current', level=logging.INFO if skipped else logging.DEBUG)
        return indices

    def _rank_indices(self, indices: list[int]) -> list[int]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
        if self.round_up and indices:
            total = math.ceil(len(indices) / self.world_size) * self.world_size
            indices = (indices * math.ceil(total / len(indices)))[:total]
        return indices[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        self._indices = self._rank_indices(self.remaining_indices())
        self.num_samples = len(self._indices)
        return iter(self._indices)

    def __len__(self) -> int:
        if self._indices is None:
            self._indices = self._rank_indices(self.remaining_indices())
        return len(self._indices)
