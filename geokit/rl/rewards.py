"""Rewards for GRPO: one registered class per reward, built from ``REWARDS``.

A reward scores a batch of generated answers against their samples' meta (the dataset's ``question_type``,
``ground_truth``, ``options``; see :mod:`geokit.datasets.vsi_datasets`)::

    reward(completions: list[str], metas: list[dict]) -> list[float]     # one score per completion

Its ``weight`` (from the config) multiplies it in the total reward; its ``name`` keys the logged part
(``reward/<name>``). :meth:`BaseReward.as_trl_reward_func` turns any reward into a TRL ``reward_funcs`` entry
(``f(prompts, completions, **dataset_columns) -> list[float]``), for exported stock checkpoints trained with
TRL's ``GRPOTrainer``.

A new reward is one class registered with ``@REWARDS.register_module()`` that implements ``score``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from geokit.datasets.prompts import MCA_QUESTION_TYPES, NA_QUESTION_TYPES
from geokit.evaluation.vsibench import fuzzy_matching, score_prediction, to_float
from geokit.registry import REWARDS

ANSWER_PATTERN = re.compile(r'<answer>(.*?)</answer>', re.DOTALL)
THINK_ANSWER_PATTERN = re.compile(r'^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$', re.DOTALL)
#: Columns a TRL dataset row must provide for the VSI rewards (besides ``prompt``).
TRL_META_COLUMNS = ('question_type', 'ground_truth', 'options')


def extract_answer(completion: str) -> str:
    """The answer part of a completion: the last ``<answer>...</answer>`` content if present, else the whole text,
    stripped."""
    found = ANSWER_PATTERN.findall(completion)
    return (found[-1] if found else completion).strip()


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a plain string, or the last message's content in conversational format
    (``[{'role': 'assistant', 'content': str | [{'type': 'text', 'text': str}, ...]}]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get('content', '')
        if isinstance(content, str):
            return content
        return ''.join(part.get('text', '') for part in content if isinstance(part, Mapping))
    raise TypeError(f'Cannot read a completion of type {type(completion).__name__}; expected a string or a list of '
                    f'chat messages.')


class BaseReward:
    """A weighted reward. Subclasses implement :meth:`score`.

    Args:
        weight: factor of this reward in the total (``sum_i weight_i * reward_i``).
        name: key of the logged part ``reward/<name>`` (default: the class's ``default_name``).
    """

    default_name = 'reward'

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        self.weight = float(weight)
        self.name = name or self.default_name

    def score(self, completion: str, meta: Mapping) -> float:
        raise NotImplementedError

    def __call__(self, completions: Sequence[str], metas: Sequence[Mapping]) -> list[float]:
        if len(completions) != len(metas):
            raise ValueError(f'{type(self).__name__}: {len(completions)} completions but {len(metas)} metas.')
        return [float(self.score(completion, meta)) for completion, meta in zip(completions, metas)]

    def as_trl_reward_func(self) -> Callable[..., list[float]]:
        """This reward as a TRL reward function ``f(prompts, completions, **kwargs) -> list[float]``.

        The dataset columns TRL passes as keyword lists (``question_type``, ``ground_truth``, ``options``) become
        each completion's meta. The weight is *not* applied: give it to TRL as ``GRPOConfig.reward_weights``.
        """
        def reward_func(prompts: Sequence, completions: Sequence, **kwargs) -> list[float]:
            columns = {key: kwargs[key] for key in TRL_META_COLUMNS if key in kwargs}
            metas = [{key: values[i] for key, values in columns.items()} for i in range(len(completions))]
            return self([completion_text(c) for c in completions], metas)

        reward_func.__name__ = self.name
        return reward_func


@REWARDS.register_module()
class VSIAccuracyReward(BaseReward):
    """Answer accuracy by the official VSI-Bench rules (:func:`geokit.evaluation.vsibench.score_prediction`):
    exact match of the option letter for multiple choice, mean relative accuracy for numbers; in [0, 1].

    The answer is read from ``<answer>...</answer>`` when the completion has one, else from the whole completion.
    Needs ``meta['question_type']`` and ``meta['ground_truth']``.
    """

    default_name = 'accuracy'

    def score(self, completion: str, meta: Mapping) -> float:
        missing = [key for key in ('question_type', 'ground_truth') if meta.get(key) is None]
        if missing:
            raise KeyError(f'VSIAccuracyReward needs {missing} in each sample meta (VSI590KDataset/VSIBenchDataset '
                           f'rows with question_type and a gpt answer; TRL datasets: columns {missing}).')
        return score_prediction(extract_answer(completion), meta['ground_truth'], meta['question_type'])


@REWARDS.register_module()
class FormatReward(BaseReward):
    """1.0 when the completion has the expected form, else 0.0.

    Args:
        mode: ``'think_answer'``: exactly ``<think>...</think><answer>...</answer>`` (whitespace around the tags
            allowed), the format of R1-style spatial reasoning recipes (SpaceR, SpatialLadder, VST);
            ``'bare'``: a bare answer as VSI-Bench asks for it: one token that is an option letter (multiple
            choice; one of the sample's options when ``meta['options']`` is given) or a number (numerical
            questions); any single token when the question type is unknown.
    """

    default_name = 'format'
    MODES = ('think_answer', 'bare')

    def __init__(self, mode: str = 'think_answer', weight: float = 1.0, name: str | None = None) -> None:
        if mode not in self.MODES:
            raise ValueError(f'FormatReward mode={mode!r}; choose one of {self.MODES}.')
        super().__init__(weight=weight, name=name)
        self.mode = mode

    def score(self, completion: str, meta: Mapping) -> float:
        if self.mode == 'think_answer':
            return 1.0 if THINK_ANSWER_PATTERN.match(completion) else 0.0
        text = completion.strip()
        if not text or fuzzy_matching(text) != text.rstrip('.'):
            return 0.0
        answer = fuzzy_matching(text)
        question_type = meta.get('question_type')
        if question_type in NA_QUESTION_TYPES:
            return 1.0 if to_float(answer) is not None else 0.0
        if question_type in MCA_QUESTION_TYPES:
            letters = [str(option).split('.')[0].strip().upper() for option in meta.get('options') or []] or \
                list('ABCDEFGH')
            return 1.0 if answer.upper() in letters else 0.0
        return 1.0


def build_rewards(cfgs: Sequence[dict | BaseReward]) -> list[BaseReward]:
    """Rewards from configs (``REWARDS``); names must be unique (they key the logged parts)."""
    rewards = [cfg if isinstance(cfg, BaseReward) else REWARDS.build(cfg) for cfg in cfgs]
    if not rewards:
        raise ValueError("model.grpo.rewards is empty; give at least one, e.g. [dict(type='VSIAccuracyReward')].")
    names = [reward.name for reward in rewards]
    if len(set(names)) != len(names):
        raise ValueError(f'Reward names must be unique, got {names}; set name= on the duplicates.')
    return rewards


def trl_reward_funcs(cfgs: Sequence[dict | BaseReward]) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """TRL ``reward_funcs`` and the matching ``GRPOConfig.reward_weights`` from geokit reward configs::

        funcs, weights = trl_reward_funcs([dict(type='VSIAccuracyReward'), dict(type='FormatReward', weight=0.5)])
        GRPOTrainer(model, reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...), train_dataset=...)
    """
    rewards = build_rewards(cfgs)
    return [reward.as_trl_reward_func() for reward in rewards], [reward.weight for reward in rewards]
