"""``VSIBenchMetric``: official VSI-Bench scoring of generated answers inside mmengine's test/val loops."""
from __future__ import annotations

import logging
import os
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.dist import barrier, get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from geokit.evaluation.batch import batch_field
from geokit.evaluation.records import (
    PREDICTIONS_FILE,
    append_jsonl,
    predictions_files,
    read_records,
    resolve_out_dir,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from geokit.evaluation.vsibench import ANSWER_RULES, SCORING_RULES, aggregate_scores, format_markdown_table
from geokit.registry import METRICS

SUMMARY_JSON = 'summary.json'
SUMMARY_MARKDOWN = 'summary.md'


@METRICS.register_module()
class VSIBenchMetric(BaseMetric):
    """Score generated answers by VSI-Bench's official rules (or GeoVR's: ``rules``); write predictions and a table.

    Consumes the outputs of the model's ``predict`` mode: one dict per sample with ``'prediction'`` (the generated
    text) and ``'meta'`` (the dataset sample's meta: ``id``, ``question_type``, ``ground_truth``, ``options``,
    ``dataset``, ``scene_name``, ...; taken from the data batch when the output has none).

    Files in ``out_dir``:
      * ``predictions.jsonl`` — one scored record per sample (``id, dataset, scene_name, question_type,
        prediction, answer, ground_truth, score``), appended after every batch (``predictions.rank{r}.jsonl`` per
        rank under distributed testing, merged into ``predictions.jsonl`` at the end);
      * ``summary.json`` / ``summary.md`` — per-question-type, per-task and overall scores.

    Resuming: with ``resume=True`` the records already in ``out_dir`` count towards the result and a
    ``SkipScoredSampler`` in the test dataloader skips their samples, so an interrupted test continues where it
    stopped. With ``resume=False`` existing predictions files are renamed to ``*.prev`` when the metric is built
    (before the dataloader is iterated), so the sampler skips nothing.

    Args:
        out_dir: output directory; ``None`` = ``<work_dir>/vsibench`` of the running Runner.
        resume: count (and let the sampler skip) samples already scored in ``out_dir``.
        collect_device / prefix / collect_dir: as in mmengine's ``BaseMetric``.
        rules: ``'official'`` (default, VSI-Bench's rules) or ``'geovr'`` (GeoVR's own parsing and aggregation,
            only to compare with GeoVR's table; see :mod:`geokit.evaluation.vsibench`).
    Returns (from ``evaluate``): ``vsibench/overall`` and ``vsibench/<task>`` in percent.
    """

    default_prefix = 'vsibench'

    def __init__(self, out_dir: str | None = None, resume: bool = False, collect_device: str = 'cpu',
                 prefix: str | None = None, collect_dir: str | None = None, rules: str = 'official') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if rules not in SCORING_RULES:
            raise ValueError(f'test_evaluator.rules must be one of {sorted(SCORING_RULES)}, got {rules!r}.')
        self.rules = rules
        self.out_dir = resolve_out_dir(out_dir, 'vsibench', 'test_evaluator.out_dir')
        self.resume = resume
        self.rank, self.world_size = get_dist_info()
        self.own_file = osp.join(self.out_dir, PREDICTIONS_FILE if self.world_size == 1
                                 else f'predictions.rank{self.rank}.jsonl')
        self._resumed: dict[str, dict] = {}
        self._clear_before_next_batch = False
        if resume:
            self._resumed = read_records(self.out_dir)
            print_log(f'VSIBenchMetric: resuming with {len(self._resumed)} samples already scored in {self.out_dir}.',
                      logger='current')
        elif self.rank == 0:
            for path in predictions_files(self.out_dir):
                os.replace(path, path + '.prev')
                print_log(f'VSIBenchMetric: moved the previous {path} to {path}.prev (set '
                          f'test_evaluator.resume=True to continue a run instead).', logger='current',
                          level=logging.WARNING)
        barrier()

    def process(self, data_batch: Any, data_samples: Sequence[Mapping]) -> None:
        """Score a batch of ``predict`` outputs and append their records to the predictions file."""
        if self._clear_before_next_batch:
            for path in [self.own_file] + ([osp.join(self.out_dir, PREDICTIONS_FILE)] if self.rank == 0 else []):
                if osp.exists(path):
                    os.remove(path)
            self._clear_before_next_batch = False
        records = []
        for index, output in enumerate(data_samples):
            if 'prediction' not in output:
                raise KeyError(f"VSIBenchMetric needs the model's predict outputs to hold 'prediction' (the "
                               f'generated text); got keys {sorted(output)}.')
            meta = output.get('meta') or batch_field(data_batch, 'meta', index, len(data_samples))
            if meta is None:
                raise KeyError("VSIBenchMetric needs each sample's 'meta' (id, question_type, ground_truth) in the "
                               'predict output or in the data batch; found neither.')
            prediction = str(output['prediction'])
            records.append(dict(
                id=str(meta['id']), dataset=meta.get('dataset'), scene_name=meta.get('scene_name'),
                question_type=meta['question_type'], prediction=prediction,
                answer=ANSWER_RULES[self.rules](prediction, meta['question_type']), ground_truth=meta['ground_truth'],
                score=SCORING_RULES[self.rules](prediction, meta['ground_truth'], meta['question_type'])))
        append_jsonl(self.own_file, records)
        self.results.extend(records)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Merge with resumed records, aggregate per task, write the files; scores returned in percent."""
        records = dict(self._resumed)
        records.update((record['id'], record) for record in results)
        self._resumed = {}
        self._clear_before_next_batch = True
        summary = aggregate_scores(records.values(), self.rules)
        summary['num_samples'] = len(records)
        if summary['missing_tasks']:
            print_log(f'VSIBenchMetric: no samples for tasks {summary["missing_tasks"]}; overall averages the '
                      f'{len(summary["tasks"])} tasks present.', logger='current', level=logging.WARNING)
        for path in predictions_files(self.out_dir):
            if path != osp.join(self.out_dir, PREDICTIONS_FILE):
                os.remove(path)
        write_jsonl_atomic(osp.join(self.out_dir, PREDICTIONS_FILE), records.values())
        write_json_atomic(osp.join(self.out_dir, SUMMARY_JSON), summary)
        table = format_markdown_table(summary, title=f'VSI-Bench ({len(records)} samples)')
        write_text_atomic(osp.join(self.out_dir, SUMMARY_MARKDOWN), table)
        print_log('\n' + table + f'Predictions and summary written to {self.out_dir}.', logger='current')
        metrics = {'overall': 100.0 * summary['overall']}
        metrics.update((task, 100.0 * score) for task, score in summary['tasks'].items())
        return metrics

