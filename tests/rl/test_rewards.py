"""REWARDS: VSI-Bench accuracy through geokit's scorer, format rewards, registry building, TRL reward functions."""
from __future__ import annotations

import inspect

import pytest

from geokit.evaluation.vsibench import score_prediction
from geokit.registry import REWARDS
from geokit.rl import FormatReward, VSIAccuracyReward, build_rewards, extract_answer, trl_reward_funcs

MC = {'question_type': 'object_rel_direction_easy', 'ground_truth': 'B',
      'options': ['A. left', 'B. right', 'C. back']}
NUM = {'question_type': 'object_abs_distance', 'ground_truth': '2.0', 'options': None}


def test_accuracy_is_the_official_vsibench_score():
    reward = VSIAccuracyReward()
    completions = ['B', 'b. right', 'A', '2.25', '3.0', 'about 2', '<think>close</think><answer>1.75</answer>']
    metas = [MC, MC, MC, NUM, NUM, NUM, NUM]
    expected = [score_prediction(extract_answer(c), m['ground_truth'], m['question_type'])
                for c, m in zip(completions, metas)]
    assert reward(completions, metas) == expected
    assert expected[:3] == [1.0, 1.0, 0.0]
    assert expected[3] == pytest.approx(0.8) and expected[5] == 0.0 and expected[6] == pytest.approx(0.8)


def test_accuracy_needs_question_type_and_ground_truth():
    with pytest.raises(KeyError, match='ground_truth'):
        VSIAccuracyReward()(['B'], [{'question_type': 'route_planning'}])


def test_format_reward_modes():
    think = FormatReward(mode='think_answer')
    assert think(['<think>a\nb</think> <answer>B</answer>', '<answer>B</answer>', 'B',
                  '<think>x</think><answer>B</answer> extra'], [MC] * 4) == [1.0, 0.0, 0.0, 0.0]
    bare = FormatReward(mode='bare')
    assert bare(['B', 'B.', 'D', 'B right', '2.5', 'two', '3'], [MC, MC, MC, MC, NUM, NUM, NUM]) == \
        [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match='think_answer'):
        FormatReward(mode='xml')


def test_rewards_build_from_the_registry_with_weights_and_unique_names():
    rewards = build_rewards([dict(type='VSIAccuracyReward'), dict(type='FormatReward', mode='bare', weight=0.5)])
    assert [(r.name, r.weight) for r in rewards] == [('accuracy', 1.0), ('format', 0.5)]
    with pytest.raises(ValueError, match='unique'):
        build_rewards([dict(type='FormatReward'), dict(type='FormatReward', mode='bare')])
    with pytest.raises(KeyError, match='VSIAccuracyReward'):
        REWARDS.build(dict(type='NoSuchReward'))


def test_trl_reward_funcs_take_trl_arguments():
    """TRL calls f(prompts=, completions=, completion_ids=, **dataset columns, trainer_state=, ...)."""
    funcs, weights = trl_reward_funcs([dict(type='VSIAccuracyReward'), dict(type='FormatReward', mode='bare',
                                                                            weight=0.2)])
    assert weights == [1.0, 0.2] and [f.__name__ for f in funcs] == ['accuracy', 'format']
    conversational = [[{'role': 'assistant', 'content': 'B'}],
                      [{'role': 'assistant', 'content': [{'type': 'text', 'text': '3.0'}]}]]
    columns = dict(question_type=[MC['question_type'], NUM['question_type']], ground_truth=['B', '2.0'],
                   options=[MC['options'], None])
    for completions in (conversational, ['B', '3.0']):
        scores = funcs[0](prompts=['p', 'q'], completions=completions, completion_ids=[[1], [2]],
                          trainer_state=None, log_extra=None, log_metric=None, **columns)
        assert scores == [1.0, score_prediction('3.0', '2.0', 'object_abs_distance')]
    assert 'prompts' in inspect.signature(funcs[0]).parameters
