"""Official VSI-Bench scoring rules: answer extraction, exact match, mean relative accuracy, aggregation."""
import math

import pytest

from geokit.evaluation.vsibench import (
    DIRECTION_QUESTION_TYPES,
    MCA_QUESTION_TYPES,
    NA_QUESTION_TYPES,
    TASKS,
    aggregate_scores,
    exact_match,
    format_markdown_table,
    fuzzy_matching,
    mean_relative_accuracy,
    score_prediction,
    task_of,
)


@pytest.mark.parametrize('prediction, ground_truth, expected', [
    ('3', '2', 0.1),      # relative error 0.5: only the 0.50 threshold passes
    ('5', '4', 0.6),      # relative error 0.25: thresholds 0.50 ... 0.75 pass (0.75 exactly on the boundary)
    ('4', '4', 1.0),
    ('4.4', '4', 0.9),    # relative error 0.1 (float 0.10000000000000009) misses the 0.90 boundary, as official
    ('1', '2', 0.1),      # under-estimates are symmetric in |pred - gt|
    ('100', '2', 0.0),
    ('0', '2', 0.0),
])
def test_mean_relative_accuracy_boundaries(prediction, ground_truth, expected):
    assert score_prediction(prediction, ground_truth, 'object_counting') == pytest.approx(expected, abs=1e-12)


def test_mra_thresholds_are_the_official_ten():
    # numpy.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2)) has 10 points: a relative error just above 0 passes
    # all of them, one of exactly 0.5 passes one of them.
    assert mean_relative_accuracy(2.0000001, 2.0) == 1.0
    assert mean_relative_accuracy(3.0, 2.0) == pytest.approx(0.1)
    assert mean_relative_accuracy(2.95, 2.0) == pytest.approx(0.1)   # error 0.475: only 0.50 passes
    assert mean_relative_accuracy(2.85, 2.0) == pytest.approx(0.2)   # error 0.425: 0.50 and 0.55 pass


@pytest.mark.parametrize('text, answer', [
    ('B.', 'B'), ('B. chair', 'B'), ('3.5 meters', '3.5'), ('12.', '12'), ('C...', 'C'), ('', ''),
    (' B', ''),            # official: split on ' ', the first token of a leading space is empty
    ('B\n', 'B'),          # trailing whitespace is stripped after the split
])
def test_fuzzy_matching(text, answer):
    assert fuzzy_matching(text) == answer


def test_multiple_choice_case_insensitive_exact_match():
    assert score_prediction('B.', 'b', 'route_planning') == 1.0
    assert score_prediction('b', 'B', 'object_rel_distance') == 1.0
    assert score_prediction('B. The chair', 'B', 'obj_appearance_order') == 1.0
    assert score_prediction('C', 'B', 'object_rel_direction_hard') == 0.0
    assert score_prediction('The answer is B', 'B', 'object_rel_direction_easy') == 0.0
    assert exact_match('A', 'a') == 1.0


@pytest.mark.parametrize('prediction', ['three', 'about 3', '', 'B', 'nan', 'inf', '-inf'])
def test_non_numeric_answer_to_numeric_question_scores_zero(prediction):
    assert score_prediction(prediction, '3', 'object_counting') == 0.0


def test_numeric_answer_with_unit_uses_first_token():
    assert score_prediction('2.5 m', '2.5', 'object_abs_distance') == 1.0
    assert score_prediction('2.5m', '2.5', 'object_abs_distance') == 0.0  # '2.5m' is not a number


def test_invalid_question_type_and_ground_truth():
    with pytest.raises(ValueError, match='Unknown VSI-Bench question_type'):
        score_prediction('A', 'A', 'object_rel_direction')
    with pytest.raises(ValueError, match='positive number'):
        score_prediction('1', '0', 'object_counting')
    with pytest.raises(ValueError, match='positive number'):
        score_prediction('1', 'abc', 'room_size_estimation')


def test_task_names():
    assert len(TASKS) == 8 and len(MCA_QUESTION_TYPES) + len(NA_QUESTION_TYPES) == 10
    assert {task_of(q) for q in DIRECTION_QUESTION_TYPES} == {'object_rel_direction'}
    assert task_of('room_size_estimation') == 'room_size_estimation'


def test_aggregation_direction_mean_and_overall():
    records = []
    per_type = {  # question_type -> list of sample scores
        'object_counting': [1.0, 0.5], 'object_abs_distance': [0.2], 'object_size_estimation': [0.4, 0.6],
        'room_size_estimation': [0.0], 'object_rel_distance': [1.0, 0.0, 0.0, 1.0], 'route_planning': [1.0],
        'obj_appearance_order': [0.0, 1.0],
        'object_rel_direction_easy': [1.0, 1.0], 'object_rel_direction_medium': [0.0],
        'object_rel_direction_hard': [1.0, 0.0, 0.0, 0.0],
    }
    for question_type, scores in per_type.items():
        records += [dict(question_type=question_type, score=s) for s in scores]
    summary = aggregate_scores(records)
    # direction: mean of the three difficulty accuracies (1.0, 0.0, 0.25), not of the 7 samples
    assert summary['tasks']['object_rel_direction'] == pytest.approx((1.0 + 0.0 + 0.25) / 3)
    expected = {'object_counting': 0.75, 'object_abs_distance': 0.2, 'object_size_estimation': 0.5,
                'room_size_estimation': 0.0, 'object_rel_distance': 0.5, 'route_planning': 1.0,
                'obj_appearance_order': 0.5, 'object_rel_direction': 1.25 / 3}
    for task, value in expected.items():
        assert summary['tasks'][task] == pytest.approx(value)
    assert summary['overall'] == pytest.approx(sum(expected.values()) / 8)
    assert summary['missing_tasks'] == [] and summary['counts']['object_rel_distance'] == 4
    table = format_markdown_table(summary)
    assert '| Overall | Obj. Count |' in table and f'{100 * summary["overall"]:.1f}' in table


def test_aggregation_with_missing_tasks_averages_those_present():
    summary = aggregate_scores([dict(question_type='object_counting', score=1.0),
                                dict(question_type='route_planning', score=0.0),
                                dict(question_type='object_rel_direction_easy', score=1.0)])
    assert summary['overall'] == pytest.approx(2 / 3)
    assert set(summary['missing_tasks']) == set(TASKS) - {'object_counting', 'route_planning', 'object_rel_direction'}
    assert '| - |' in format_markdown_table(summary)
    assert aggregate_scores([])['overall'] == 0.0 and not math.isnan(aggregate_scores([])['overall'])
