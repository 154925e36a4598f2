"""VSI-Bench scoring, following the official rules of thinking-in-space / lmms-eval ``vsibench/utils.py``.

Per sample:
  * the answer is the first token of the generated text split on single spaces, with trailing ``'.'`` stripped
    (:func:`fuzzy_matching`; ``"B. chair"`` -> ``"B"``);
  * multiple-choice questions score 1 for a case-insensitive exact match of that token with the ground-truth letter
    (:func:`exact_match`);
  * numerical questions score the mean relative accuracy (:func:`mean_relative_accuracy`): the fraction of
    confidence thresholds ``c`` in 0.50, 0.55, ..., 0.95 with ``|pred - gt| / gt <= 1 - c``; a token that is not a
    number scores 0.

Per benchmark: each question type is averaged over its samples; ``object_rel_direction`` is the mean of its
easy / medium / hard accuracies; ``overall`` is the mean of the eight task scores.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from geokit.datasets.prompts import MCA_QUESTION_TYPES, NA_QUESTION_TYPES

DIRECTION_QUESTION_TYPES: tuple[str, ...] = (
    'object_rel_direction_easy', 'object_rel_direction_medium', 'object_rel_direction_hard')
#: The eight tasks, in the column order of the VSI-Bench paper's table.
TASKS: tuple[str, ...] = (
    'object_counting', 'object_abs_distance', 'object_size_estimation', 'room_size_estimation',
    'object_rel_distance', 'object_rel_direction', 'route_planning', 'obj_appearance_order')
#: Short column titles for the markdown table.
TASK_TITLES: dict[str, str] = {
    'object_counting': 'Obj. Count', 'object_abs_distance': 'Abs. Dist.', 'object_size_estimation': 'Obj. Size',
    'room_size_estimation': 'Room Size', 'object_rel_distance': 'Rel. Dist.', 'object_rel_direction': 'Rel. Dir.',
    'route_planning': 'Route Plan', 'obj_appearance_order': 'Appr. Order'}
MRA_METRIC = 'MRA:.5:.95:.05'
ACCURACY_METRIC = 'accuracy'


def fuzzy_matching(prediction: str) -> str:
    """The answer token of a generated text: first space-separated token, trailing dots stripped, trimmed."""
    return prediction.split(' ')[0].rstrip('.').strip()


def exact_match(prediction: str, target: str) -> float:
    """1.0 when ``prediction`` equals ``target`` ignoring case, else 0.0."""
    return 1.0 if prediction.lower() == target.lower() else 0.0


def to_float(text: object) -> float | None:
    """``float(text)``, or ``None`` when ``text`` is not a number."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def abs_dist_norm(prediction: float, target: float) -> float:
    """Relative error ``|prediction - target| / target`` (``target`` > 0)."""
    return abs(prediction - target) / target


def mean_relative_accuracy(prediction: float, target: float, start: float = 0.5, end: float = 0.95,
                           interval: float = 0.05) -> float:
    """Fraction of thresholds ``c`` in ``start, start + interval, ..., end`` with relative error ``<= 1 - c``.

    The thresholds are ``numpy.linspace(start, end, n)`` with ``n = int((end - start) / interval + 2)``, which is
    10 points for the default 0.50 ... 0.95 (the official code's construction, so boundary cases such as a relative
    error of exactly 0.25 compare against the same floating-point thresholds).
    """
    num_thresholds = int((end - start) / interval + 2)
    thresholds = np.linspace(start, end, num_thresholds)
    return float(np.mean(abs_dist_norm(prediction, target) <= 1 - thresholds))


def metric_name(question_type: str) -> str:
    """The official metric of a question type: ``'accuracy'`` (multiple choice) or ``'MRA:.5:.95:.05'``."""
    if question_type in MCA_QUESTION_TYPES:
        return ACCURACY_METRIC
    if question_type in NA_QUESTION_TYPES:
        return MRA_METRIC
    raise ValueError(f'Unknown VSI-Bench question_type {question_type!r}; expected one of '
                     f'{MCA_QUESTION_TYPES + NA_QUESTION_TYPES}.')


def task_of(question_type: str) -> str:
    """The task a question type is reported under (the three direction difficulties -> ``object_rel_direction``)."""
    metric_name(question_type)
    return 'object_rel_direction' if question_type in DIRECTION_QUESTION_TYPES else question_type


def score_prediction(prediction: str, ground_truth: str | float, question_type: str) -> float:
    """Score one generated answer by the official rules (see the module docstring).

    Args:
        prediction: the model's generated text.
        ground_truth: the option letter (multiple choice) or the number (numerical questions).
        question_type: one of :data:`MCA_QUESTION_TYPES` or :data:`NA_QUESTION_TYPES`.
    Returns:
        Accuracy in {0, 1} or mean relative accuracy in [0, 1].
    Raises:
        ValueError: unknown question type, or a numerical ground truth that is not a positive number (the relative
            error divides by it).
    """
    answer = fuzzy_matching(prediction)
    if metric_name(question_type) == ACCURACY_METRIC:
        return exact_match(answer, str(ground_truth))
    target = to_float(ground_truth)
    if target is None or not math.isfinite(target) or target <= 0:
        raise ValueError(f'Numerical question ({question_type}) has ground truth {ground_truth!r}; VSI-Bench scores '
                         f'|pred - gt| / gt, which needs a positive number. Fix the dataset entry.')
    value = to_float(answer)
    if value is None:
        return 0.0
    return mean_relative_accuracy(value, target)


def aggregate_scores(records: Iterable[Mapping]) -> dict:
    """Per-question-type, per-task and overall scores from scored samples.

    Args:
        records: mappings with ``question_type`` and ``score`` (as written by :class:`VSIBenchMetric`).
    Returns:
        ``{'overall': float, 'tasks': {task: score}, 'question_types': {question_type: score},
        'counts': {question_type: n}, 'missing_tasks': [task, ...]}``; scores in [0, 1]. As in the official
        aggregation, question types without samples are left out of their averages (``missing_tasks`` lists the
        tasks that had none, and ``overall`` averages the tasks present).
    """
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        question_type = record['question_type']
        metric_name(question_type)
        sums[question_type] += float(record['score'])
        counts[question_type] += 1
    per_type = {question_type: sums[question_type] / counts[question_type] for question_type in counts}
    tasks: dict[str, float] = {}
    for task in TASKS:
        members = DIRECTION_QUESTION_TYPES if task == 'object_rel_direction' else (task,)
        present = [per_type[member] for member in members if member in per_type]
        if present:
            tasks[task] = sum(present) / len(present)
    overall = sum(tasks.values()) / len(tasks) if tasks else 0.0
    return dict(overall=overall, tasks=tasks, question_types=dict(sorted(per_type.items())),
                counts=dict(sorted(counts.items())), missing_tasks=[task for task in TASKS if task not in tasks])


def format_markdown_table(summary: Mapping, title: str | None = None) -> str:
    """The per-task table of :func:`aggregate_scores` as markdown (scores in percent, one decimal)."""
    header = ['Overall'] + [TASK_TITLES[task] for task in TASKS]
    values = [summary['overall']] + [summary['tasks'].get(task) for task in TASKS]
    cells = ['-' if value is None else f'{100 * value:.1f}' for value in values]
    lines = [] if title is None else [f'### {title}', '']
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header), '| ' + ' | '.join(cells) + ' |']
    counts = summary.get('counts', {})
    if counts:
        lines += ['', '| question_type | n | score |', '|---|---|---|']
        lines += [f'| {question_type} | {n} | {100 * summary["question_types"][question_type]:.1f} |'
                  for question_type, n in counts.items()]
    return '\n'.join(lines) + '\n'
