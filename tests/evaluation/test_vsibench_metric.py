"""VSIBenchMetric + SkipScoredSampler inside mmengine's test loop, on real SynthVSI test items."""
import json
import os.path as osp

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseDataPreprocessor, BaseModel

from geokit.engine import GeoKitRunner
from geokit.evaluation import SkipScoredSampler, VSIBenchMetric, aggregate_scores, score_prediction
from geokit.evaluation.vsibench import TASKS


def list_collate(samples):
    """The contract's batch: the list of sample dicts (mmengine's pseudo_collate transposes nested lists)."""
    return list(samples)


class SamplesPreprocessor(BaseDataPreprocessor):
    def forward(self, data, training=False):
        return {'samples': data}


class ScriptedModel(BaseModel):
    """Answers each question from a function of its meta; records the ids it was asked; can fail on a batch."""

    def __init__(self, answer_fn, fail_at_batch=None):
        super().__init__(data_preprocessor=SamplesPreprocessor())
        self.answer_fn, self.fail_at_batch = answer_fn, fail_at_batch
        self.seen, self.batches = [], 0
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, samples, mode='tensor'):
        assert mode == 'predict'
        frames, meta = [s['frames'] for s in samples], [s['meta'] for s in samples]
        if self.batches == self.fail_at_batch:
            raise KeyboardInterrupt('simulated interruption')
        self.batches += 1
        self.seen += [m['id'] for m in meta]
        assert all(f.dtype == torch.uint8 and f.shape[-1] == 3 for f in frames)
        return [dict(prediction=self.answer_fn(m), meta=m) for m in meta]


def right_answer(meta):
    return meta['ground_truth'] + '.' if meta['options'] else meta['ground_truth']


def wrong_answer(meta):
    return 'Z' if meta['options'] else 'many'


def mixed_answer(meta):  # right on even ids; numeric answers off by 25 % (score 0.6) on odd ids
    if int(meta['id']) % 2 == 0:
        return right_answer(meta)
    return 'Z' if meta['options'] else str(float(meta['ground_truth']) * 1.25)


def make_runner(root, work_dir, model, resume=False, out_dir=None):
    cfg = dict(
        model=model, work_dir=str(work_dir), default_scope='geokit', experiment_name=osp.basename(str(work_dir)),
        test_dataloader=dict(
            batch_size=4, num_workers=0, collate_fn=list_collate,
            sampler=dict(type='SkipScoredSampler', predictions_dir=out_dir),
            dataset=dict(type='VSIBenchDataset', data_root=root, ann_file=osp.join(root, 'test.jsonl'),
                         serialize_data=False,
                         frame_sampler=dict(type='UniformSampler', num_frames=4))),
        test_evaluator=dict(type='VSIBenchMetric', out_dir=out_dir, resume=resume),
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        log_level='WARNING')
    return GeoKitRunner(**cfg)


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def expected_scores(items, answer_fn):
    return {str(i['id']): score_prediction(answer_fn(dict(i, ground_truth=str(i['ground_truth']))),
                                           i['ground_truth'], i['question_type']) for i in items}


def test_end_to_end_scores_and_files(synthvsi_root, tmp_path):
    """The metric in mmengine's test loop over real SynthVSI items; outputs default to <work_dir>/vsibench."""
    items = read_jsonl(osp.join(synthvsi_root, 'test.jsonl'))
    metrics = make_runner(synthvsi_root, tmp_path / 'mixed', ScriptedModel(mixed_answer)).test()
    out_dir = tmp_path / 'mixed' / 'vsibench'

    records = read_jsonl(out_dir / 'predictions.jsonl')
    assert sorted(r['id'] for r in records) == sorted(str(i['id']) for i in items)
    expected = expected_scores(items, mixed_answer)
    for record in records:
        assert record['score'] == pytest.approx(expected[record['id']])
        if int(record['id']) % 2 == 1 and record['question_type'] in ('object_counting', 'room_size_estimation'):
            assert record['score'] == pytest.approx(0.6)  # 25 % off

    summary = json.load(open(out_dir / 'summary.json'))
    reference = aggregate_scores([dict(question_type=i['question_type'], score=expected[str(i['id'])])
                                  for i in items])
    assert summary['overall'] == pytest.approx(reference['overall'])
    assert metrics['vsibench/overall'] == pytest.approx(100 * reference['overall'])
    present = {task for task in TASKS if f'vsibench/{task}' in metrics}
    assert present == set(reference['tasks']) and summary['num_samples'] == len(items)
    assert '| Overall |' in open(out_dir / 'summary.md').read()


@pytest.mark.parametrize('answer_fn, overall', [(right_answer, 100.0), (wrong_answer, 0.0)])
def test_all_right_and_all_wrong(synthvsi_root, tmp_path, answer_fn, overall):
    items = read_jsonl(osp.join(synthvsi_root, 'test.jsonl'))
    metric = VSIBenchMetric(out_dir=str(tmp_path))
    metas = [dict(i, ground_truth=str(i['ground_truth'])) for i in items]
    metric.process([dict(meta=m) for m in metas], [dict(prediction=answer_fn(m)) for m in metas])
    assert metric.evaluate(len(items))['vsibench/overall'] == pytest.approx(overall)


def test_resume_skips_scored_samples(synthvsi_root, tmp_path):
    items = read_jsonl(osp.join(synthvsi_root, 'test.jsonl'))
    out_dir = str(tmp_path / 'out')
    interrupted = ScriptedModel(mixed_answer, fail_at_batch=2)
    with pytest.raises(KeyboardInterrupt):
        make_runner(synthvsi_root, tmp_path / 'run1', interrupted, out_dir=out_dir).test()
    assert len(read_jsonl(osp.join(out_dir, 'predictions.jsonl'))) == 8  # two batches of 4 were kept

    resumed = ScriptedModel(mixed_answer)
    runner = make_runner(synthvsi_root, tmp_path / 'run2', resumed, resume=True, out_dir=out_dir)
    metrics = runner.test()
    assert set(resumed.seen).isdisjoint(interrupted.seen) and len(resumed.seen) == len(items) - 8
    expected = expected_scores(items, mixed_answer)
    reference = aggregate_scores([dict(question_type=i['question_type'], score=expected[str(i['id'])])
                                  for i in items])
    assert metrics['vsibench/overall'] == pytest.approx(100 * reference['overall'])
    assert len(read_jsonl(osp.join(out_dir, 'predictions.jsonl'))) == len(items)

    # resume=False starts over: building the metric sets the old predictions aside, so the sampler skips nothing
    dataset = runner.test_dataloader.dataset
    assert len(SkipScoredSampler(dataset, predictions_dir=out_dir)) == 0
    VSIBenchMetric(out_dir=out_dir, resume=False)
    assert list(SkipScoredSampler(dataset, predictions_dir=out_dir)) == list(range(len(items)))
    assert osp.exists(osp.join(out_dir, 'predictions.jsonl.prev'))


def test_metric_errors_and_meta_from_batch(tmp_path):
    metric = VSIBenchMetric(out_dir=str(tmp_path))
    meta = dict(id='q1', question_type='object_counting', ground_truth='4', options=None)
    batch = pseudo_collate([dict(meta=meta)])  # mmengine's default collation: meta read back through uncollate
    metric.process(batch, [dict(prediction='5')])  # meta taken from the data batch
    assert metric.results[0]['score'] == pytest.approx(0.6)
    with pytest.raises(KeyError, match="'prediction'"):
        metric.process(batch, [dict(text='5')])
    with pytest.raises(KeyError, match='meta'):
        metric.process({}, [dict(prediction='5')])
    assert metric.evaluate(1)['vsibench/object_counting'] == pytest.approx(60.0)


def test_truncated_last_line_is_tolerated(tmp_path):
    with open(tmp_path / 'predictions.jsonl', 'w') as handle:
        handle.write(json.dumps(dict(id='a', question_type='route_planning', score=1.0)) + '\n{"id": "b", "sco')
    metric = VSIBenchMetric(out_dir=str(tmp_path), resume=True)
    assert set(metric._resumed) == {'a'}


def test_sampler_shards_and_reads_ids(tmp_path):
    class Ids:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def get_data_info(self, index):
            return {'meta': {'id': index}}

    with open(tmp_path / 'predictions.jsonl', 'w') as handle:
        handle.writelines(json.dumps(dict(id=str(i), question_type='route_planning', score=0.0)) + '\n'
                          for i in (0, 3, 4))
    sampler = SkipScoredSampler(Ids(10), predictions_dir=str(tmp_path))
    assert list(sampler) == [1, 2, 5, 6, 7, 8, 9] and len(sampler) == 7
    sampler.rank, sampler.world_size = 1, 2
    assert list(sampler) == [2, 6, 8]
