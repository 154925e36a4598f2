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

from geokit.datasets.published import read_id_list
from geokit.evaluation.batch import batch_samples
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
from geokit.evaluation.vsibench import (
    DEFAULT_SCORING_MODE,
    aggregate_scores,
    format_markdown_table,
    get_scoring_mode,
    parsed_answer,
    score_prediction,
)
from geokit.evaluation.vsibench_prior import AnswerPrior
from geokit.registry import METRICS

SUMMARY_JSON = 'summary.json'
SUMMARY_MARKDOWN = 'summary.md'


@METRICS.register_module()
class VSIBenchMetric(BaseMetric):
    """Score generated answers by VSI-Bench's official rules (or another scoring ``mode``); write predictions + a table.

    Consumes the outputs of the model's ``predict`` mode: one dict per sample with ``'prediction'`` (the generated
    text) and ``'meta'`` (the dataset sample's meta: ``id``, ``question_type``, ``ground_truth``, ``options``,
    ``dataset``, ``scene_name``, ...; taken from the data batch when the output has none).

    Files in ``out_dir``:
      * ``predictions.jsonl`` — one scored record per sample (``id, dataset, scene_name, question_type,
        prediction, answer, ground_truth, score``), appended after every batch (``predictions.rank{r}.jsonl`` per
        rank under distributed testing, merged into ``predictions.jsonl`` at the end);
      * ``summary.json`` / ``summary.md`` — per-question-type, per-task and overall scores, the scoring mode and
        subset that produced them, the answer-prior baseline's scores beside the model's, and the number of distinct
        answers the model gave per question type (1 = one constant answer); with ``subset_file`` also the same for
        that subset (``summary['subsets'][subset_name]``, a second table in ``summary.md``).

    Every record and summary names its ``scoring_mode``; summaries name their ``subset`` (``'full'`` or
    ``subset_name``), and with a subset each record says whether it is in it (``in_<subset_name>``).

    Resuming: with ``resume=True`` the records already in ``out_dir`` count towards the result and a
    ``SkipScoredSampler`` in the test dataloader skips their samples, so an interrupted test continues where it
    stopped. With ``resume=False`` existing predictions files are renamed to ``*.prev`` when the metric is built
    (before the dataloader is iterated), so the sampler skips nothing.

    Args:
        out_dir: output directory; ``None`` = ``<work_dir>/vsibench`` of the running Runner.
        resume: count (and let the sampler skip) samples already scored in ``out_dir``.
        mode: scoring mode (:data:`~geokit.evaluation.vsibench.SCORING_MODES`): ``'official-2024'`` (default),
            ``'lmms-eval'``, or ``'geovr'`` (GeoVR's own parsing and aggregation, only to compare with its table).
        prior_ann_file: training annotations the answer-prior baseline is fitted on
            (:class:`~geokit.evaluation.vsibench_prior.AnswerPrior`); relative paths are relative to the test
            dataset's ``data_root``. ``None``: no baseline. A missing file is logged and the baseline left out.
        subset_file: ids of a subset to score as well, e.g. VSI-Bench's ``pruned_ids.txt`` for VSI-Bench-Debiased
            (relative to the test dataset's ``data_root``). One id per line, or annotation rows with ``id``.
        subset_name: the subset's name in the results.
        subset_rule: ``'exclude'`` (the subset is every sample *not* listed: how ``pruned_ids.txt`` defines
            Debiased) or ``'include'`` (the listed samples).
        collect_device / prefix / collect_dir: as in mmengine's ``BaseMetric``.
    Returns (from ``evaluate``): ``vsibench/overall`` and ``vsibench/<task>`` in percent, and
    ``vsibench/<subset_name>/overall`` with a subset.
    """

    default_prefix = 'vsibench'

    def __init__(self, out_dir: str | None = None, resume: bool = False, mode: str = DEFAULT_SCORING_MODE,
                 prior_ann_file: str | None = None, subset_file: str | None = None, subset_name: str = 'debiased',
                 subset_rule: str = 'exclude', collect_device: str = 'cpu', prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.scoring = get_scoring_mode(mode)
        if subset_rule not in ('exclude', 'include'):
            raise ValueError(f"test_evaluator.subset_rule={subset_rule!r}; choose 'exclude' or 'include'.")
        self.prior_ann_file, self.subset_file = prior_ann_file, subset_file
        self.subset_name, self.subset_rule = subset_name, subset_rule
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
        for output, sample in zip(data_samples, batch_samples(data_batch, len(data_samples))):
            if 'prediction' not in output:
                raise KeyError(f"VSIBenchMetric needs the model's predict outputs to hold 'prediction' (the "
                               f'generated text); got keys {sorted(output)}.')
            meta = output.get('meta') or sample.get('meta')
            if meta is None:
                raise KeyError("VSIBenchMetric needs each sample's 'meta' (id, question_type, ground_truth) in the "
                               'predict output or in the data batch; found neither.')
            prediction = str(output['prediction'])
            question_type = meta['question_type']
            records.append(dict(
                id=str(meta['id']), dataset=meta.get('dataset'), scene_name=meta.get('scene_name'),
                question_type=question_type, prediction=prediction,
                answer=parsed_answer(prediction, question_type, self.scoring),
                ground_truth=meta['ground_truth'], scoring_mode=self.scoring.name,
                score=score_prediction(prediction, meta['ground_truth'], question_type, self.scoring)))
        append_jsonl(self.own_file, records)
        self.results.extend(records)

    def _resolve(self, path: str) -> str:
        root = (self.dataset_meta or {}).get('data_root') or ''
        return path if osp.isabs(path) or not root else osp.join(root, path)

    def _prior(self) -> AnswerPrior | None:
        if self.prior_ann_file is None:
            return None
        path = self._resolve(self.prior_ann_file)
        if not osp.isfile(path):
            print_log(f'VSIBenchMetric: no answer-prior baseline, the training annotations {path} do not exist '
                      f'(set test_evaluator.prior_ann_file, or None to turn the baseline off).', logger='current',
                      level=logging.WARNING)
            return None
        return AnswerPrior.from_annotation_file(path)

    def _summarize(self, records: list[dict], subset: str, prior: AnswerPrior | None) -> dict:
        """Scores of ``records``, tagged with the scoring mode and subset, with the prior's scores beside them."""
        summary = aggregate_scores(records, self.scoring)
        summary.update(num_samples=len(records), scoring_mode=self.scoring.name,
                       scoring_mode_description=self.scoring.description, subset=subset)
        answers: dict[str, set] = {}
        for record in records:
            answers.setdefault(record['question_type'], set()).add(record.get('answer'))
        summary['distinct_answers'] = {question_type: len(values) for question_type, values in sorted(answers.items())}
        if prior is not None:
            missing = sorted({r['question_type'] for r in records if prior.predict(r['question_type']) is None})
            prior_records = [dict(question_type=r['question_type'], score=r['prior_score']) for r in records]
            summary['prior'] = dict(aggregate_scores(prior_records, self.scoring), source=prior.source,
                                    answers={t: prior.predict(t) for t in summary['counts']},
                                    missing_question_types=missing)
        return summary

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Merge with resumed records, aggregate per task, write the files; scores returned in percent."""
        records = dict(self._resumed)
        records.update((record['id'], record) for record in results)
        self._resumed = {}
        self._clear_before_next_batch = True
        prior = self._prior()
        for record in records.values():
            if record.get('scoring_mode') not in (None, self.scoring.name):
                raise ValueError(f"Resumed record {record['id']} was scored with {record['scoring_mode']!r}, this "
                                 f'metric scores with {self.scoring.name!r}; use a new out_dir or the same mode.')
            record['scoring_mode'] = self.scoring.name
            if prior is not None:
                answer = prior.predict(record['question_type'])
                record['prior_answer'] = answer
                record['prior_score'] = 0.0 if answer is None else score_prediction(
                    answer, record['ground_truth'], record['question_type'], self.scoring)
        summary = self._summarize(list(records.values()), 'full', prior)
        tables = [format_markdown_table(summary, title=f'VSI-Bench ({len(records)} samples, {self.scoring.name})')]
        metrics = {'overall': 100.0 * summary['overall']}
        metrics.update((task, 100.0 * score) for task, score in summary['tasks'].items())
        if self.subset_file is not None:
            listed = read_id_list(self._resolve(self.subset_file))
            keep = []
            for record in records.values():
                record[f'in_{self.subset_name}'] = (str(record['id']) in listed) == (self.subset_rule == 'include')
                if record[f'in_{self.subset_name}']:
                    keep.append(record)
            subset = self._summarize(keep, self.subset_name, prior)
            subset['subset_file'] = self._resolve(self.subset_file)
            summary['subsets'] = {self.subset_name: subset}
            tables.append(format_markdown_table(
                subset, title=f'VSI-Bench {self.subset_name} ({len(keep)} samples, {self.scoring.name})'))
            metrics[f'{self.subset_name}/overall'] = 100.0 * subset['overall']
        if summary['missing_tasks']:
            print_log(f'VSIBenchMetric: no samples for tasks {summary["missing_tasks"]}; overall averages the '
                      f'{len(summary["tasks"])} tasks present.', logger='current', level=logging.WARNING)
        for path in predictions_files(self.out_dir):
            if path != osp.join(self.out_dir, PREDICTIONS_FILE):
                os.remove(path)
        write_jsonl_atomic(osp.join(self.out_dir, PREDICTIONS_FILE), records.values())
        write_json_atomic(osp.join(self.out_dir, SUMMARY_JSON), summary)
        table = '\n'.join(tables)
        write_text_atomic(osp.join(self.out_dir, SUMMARY_MARKDOWN), table)
        print_log('\n' + table + f'Predictions and summary written to {self.out_dir}.', logger='current')
        return metrics
