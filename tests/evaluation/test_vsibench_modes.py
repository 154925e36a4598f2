"""Named VSI-Bench scoring modes, the answer-prior baseline, the Debiased subset: known values and result files."""
import json
import os.path as osp

import pytest

from geokit.evaluation import AnswerPrior, VSIBenchMetric, extract_number, score_prediction
from geokit.evaluation.vsibench import (
    SCORING_MODES,
    ScoringMode,
    get_scoring_mode,
    parsed_answer,
    register_scoring_mode,
)


@pytest.mark.parametrize('text, number', [
    ('3', 3.0), ('3.5 meters', 3.5), ('There are 3 chairs.', 3.0), ('three', 3.0), ('Three chairs.', 3.0),
    ('twenty-one', 21.0), ('three hundred and twenty-one', 321.0), ('two thousand', 2000.0),
    ('one apple, room 2', 1.0), ('room 2, one apple', 2.0), ('-1.5', -1.5), ('no idea', None), ('', None),
    (None, None)])
def test_extract_number_known_values(text, number):
    assert extract_number(text) == number


@pytest.mark.parametrize('prediction, official, lmms', [
    ('3', 1.0, 1.0),                  # a bare number: both modes agree
    ('There are 3 chairs.', 0.0, 1.0),  # the 2024 rules read only the first token ("There")
    ('three', 0.0, 1.0),              # number words count only in the current lmms-eval parsing
    ('3 chairs', 1.0, 1.0),
    ('many', 0.0, 0.0)])
def test_numeric_modes_differ_only_in_parsing(prediction, official, lmms):
    assert score_prediction(prediction, '3', 'object_counting') == official          # default = official-2024
    assert score_prediction(prediction, '3', 'object_counting', mode='official-2024') == official
    assert score_prediction(prediction, '3', 'object_counting', mode='lmms-eval') == lmms


def test_multiple_choice_is_the_same_in_both_modes():
    for mode in ('official-2024', 'lmms-eval'):
        assert score_prediction('B. the chair', 'B', 'object_rel_distance', mode=mode) == 1.0
        assert score_prediction('The answer is B', 'B', 'object_rel_distance', mode=mode) == 0.0
    assert parsed_answer('About 2.5 m', 'object_abs_distance', 'lmms-eval') == '2.5'
    assert parsed_answer('About 2.5 m', 'object_abs_distance') == 'About'


def test_unknown_mode_lists_the_registered_ones_and_a_mode_can_be_added():
    with pytest.raises(KeyError, match="registered: \\['geovr', 'lmms-eval', 'official-2024'"):
        get_scoring_mode('nope')
    strict = ScoringMode('test-last-token', 'last token', choice=lambda t: t.split()[-1],
                         number=lambda t: float(t.split()[-1]))
    try:
        register_scoring_mode(strict)
        assert score_prediction('I think 3', '3', 'object_counting', mode='test-last-token') == 1.0
        with pytest.raises(KeyError, match='already registered'):
            register_scoring_mode(strict)
    finally:
        SCORING_MODES.pop('test-last-token', None)


TRAIN_ROWS = [
    # VSI-590K / SynthVSI training layout: the answer is the last gpt turn
    *[dict(question_type='object_counting', conversations=[{'from': 'human', 'value': 'q'},
                                                           {'from': 'gpt', 'value': v}]) for v in '2 3 3 9'.split()],
    *[dict(question_type='object_rel_distance',
           conversations=[{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': v}]) for v in 'A B B. C'.split()],
    dict(question_type='object_size_estimation', ground_truth='40'),   # VSI-Bench layout: ground_truth
    dict(question_type='object_size_estimation', ground_truth='not a number'),
    dict(question_type='captioning', conversations=[{'from': 'gpt', 'value': 'a room'}]),
    dict(question_type=None, ground_truth='x'),
]


def test_answer_prior_known_values():
    prior = AnswerPrior.fit(TRAIN_ROWS, source='rows')
    assert prior.predict('object_counting') == '3'           # median of 2, 3, 3, 9
    assert prior.predict('object_rel_distance') == 'B'       # most frequent letter ("B." is "B")
    assert prior.predict('object_size_estimation') == '40'   # the non-number is ignored
    assert prior.predict('captioning') == 'a room'           # other types: most frequent answer
    assert prior.predict('route_planning') is None
    assert prior.counts == {'captioning': 1, 'object_counting': 4, 'object_rel_distance': 4,
                            'object_size_estimation': 1}


def test_answer_prior_from_synthvsi_train_file(synthvsi_root):
    prior = AnswerPrior.from_annotation_file(osp.join(synthvsi_root, 'train.jsonl'))
    rows = [json.loads(line) for line in open(osp.join(synthvsi_root, 'train.jsonl'))]
    counting = sorted(float(r['conversations'][-1]['value']) for r in rows if r['question_type'] == 'object_counting')
    assert float(prior.predict('object_counting')) == pytest.approx(
        (counting[(len(counting) - 1) // 2] + counting[len(counting) // 2]) / 2)
    assert prior.source.endswith('train.jsonl')


def score_items(items, predictions, tmp_path, **kwargs):
    metric = VSIBenchMetric(out_dir=str(tmp_path), **kwargs)
    metric.dataset_meta = dict(data_root=str(tmp_path))
    metas = [dict(i, ground_truth=str(i['ground_truth'])) for i in items]
    metric.process([dict(meta=m) for m in metas], [dict(prediction=p) for p in predictions])
    return metric.evaluate(len(items)), json.load(open(tmp_path / 'summary.json')), \
        [json.loads(line) for line in open(tmp_path / 'predictions.jsonl')]


ITEMS = [dict(id=i, question_type='object_counting', ground_truth=gt, options=None)
         for i, gt in enumerate('3 3 4 8'.split())] + \
    [dict(id=10 + i, question_type='object_rel_distance', ground_truth=gt, options=['A. x', 'B. y'])
     for i, gt in enumerate('A B B B'.split())]


def test_summary_records_mode_subset_prior_and_constant_answers(tmp_path):
    (tmp_path / 'train.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in TRAIN_ROWS))
    (tmp_path / 'pruned_ids.txt').write_text('0\n10\n')
    predictions = ['There are 3 chairs'] * 4 + ['B'] * 4          # one constant answer per question type
    metrics, summary, records = score_items(ITEMS, predictions, tmp_path, mode='lmms-eval',
                                            prior_ann_file='train.jsonl', subset_file='pruned_ids.txt')
    assert summary['scoring_mode'] == 'lmms-eval' and summary['subset'] == 'full'
    assert all(r['scoring_mode'] == 'lmms-eval' for r in records)
    # counting: 3 -> [1, 1, MRA(3, 4) = 0.6, MRA(3, 8) = 0]; rel. distance: 3 of 4 right
    assert summary['tasks'] == pytest.approx({'object_counting': 0.65, 'object_rel_distance': 0.75})
    assert summary['distinct_answers'] == {'object_counting': 1, 'object_rel_distance': 1}
    # the prior answers 3 and B: exactly what this collapsed model answers, so the same scores
    prior = summary['prior']
    assert prior['answers'] == {'object_counting': '3', 'object_rel_distance': 'B'}
    assert prior['tasks'] == pytest.approx(summary['tasks']) and prior['source'].endswith('train.jsonl')
    assert {r['prior_answer'] for r in records} == {'3', 'B'}
    # Debiased: everything but the pruned ids 0 and 10
    debiased = summary['subsets']['debiased']
    assert debiased['subset'] == 'debiased' and debiased['scoring_mode'] == 'lmms-eval'
    assert debiased['num_samples'] == 6 and debiased['subset_file'].endswith('pruned_ids.txt')
    assert [r['id'] for r in records if not r['in_debiased']] == ['0', '10']
    assert debiased['tasks'] == pytest.approx({'object_counting': 1.6 / 3, 'object_rel_distance': 1.0})
    assert metrics['vsibench/debiased/overall'] == pytest.approx(100 * (1.6 / 3 + 1) / 2)
    table = open(tmp_path / 'summary.md').read()
    assert '| answer prior |' in table and 'Scoring: `lmms-eval`; subset: `debiased`.' in table
    assert '| object_counting | 4 | 65.0 | 1 | 3 | 65.0 |' in table


def test_official_mode_default_and_a_missing_prior_file_is_reported(tmp_path, caplog):
    metrics, summary, records = score_items(ITEMS, ['There are 3 chairs'] * 4 + ['B'] * 4, tmp_path,
                                            prior_ann_file='missing_train.jsonl')
    assert summary['scoring_mode'] == 'official-2024' and 'prior' not in summary
    assert summary['tasks']['object_counting'] == 0.0            # "There" is not a number under the 2024 rules
    assert records[0]['answer'] == 'There'


def test_resumed_records_of_another_mode_are_refused(tmp_path):
    score_items(ITEMS, ['3'] * 8, tmp_path, mode='lmms-eval')
    metric = VSIBenchMetric(out_dir=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match="scored with 'lmms-eval'"):
        metric.evaluate(0)
