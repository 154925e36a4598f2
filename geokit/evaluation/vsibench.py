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

``rules='geovr'`` reproduces GeoVR's own scoring (``metric_result.py``), for comparing with its table only: the
multiple-choice answer is the first *character* of the stripped text (case-sensitive), a numerical answer is
``float`` of the whole stripped text, relative error ``< 1 - c`` (strict) with ``c = round(0.5 + 0.05 i, 2)``,
the three direction difficulties are pooled sample by sample, and ``overall`` divides the task sum by 8 (a task
without samples counts 0). See :func:`geovr_score_prediction` and :func:`aggregate_scores`.
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


def geovr_answer(prediction: str, question_type: str) -> str:
    """The answer GeoVR's ``metric_result.py`` reads: the first character (multiple choice) or the whole text."""
    text = prediction.strip()
    return text[:1] if metric_name(question_type) == ACCURACY_METRIC else text


def geovr_score_prediction(prediction: str, ground_truth: str | float, question_type: str) -> float:
    """Score one answer by GeoVR's own rules (``calculate_metrics`` in ``metric_result.py``; module docstring).

    Multiple choice: 1 if the first character of the stripped text equals the stripped ground truth (an empty
    answer scores 0). Numerical: ``float`` of the stripped text (0 if it is not a number), relative error
    ``|pred - gt| / gt`` (``gt = 0``: 0 if ``pred = 0`` else infinite), then the fraction of the 10 thresholds
    ``c = 0.50, ..., 0.95`` with ``error < 1 - c``.
    """
    answer = geovr_answer(prediction, question_type)
    if metric_name(question_type) == ACCURACY_METRIC:
        return 1.0 if answer and answer == str(ground_truth).strip() else 0.0
    value, target = to_float(answer), to_float(ground_truth)
    if value is None or target is None:
        return 0.0
    if target == 0:
        error = 0.0 if value == 0 else math.inf
    else:
        error = abs(value - target) / target
    return sum(error < 1.0 - round(0.5 + i * 0.05, 2) for i in range(10)) / 10.0


#: Per-sample scoring rules by name (``VSIBenchMetric(rules=...)``): the official ones (default) and GeoVR's.
SCORING_RULES = {'official': score_prediction, 'geovr': geovr_score_prediction}
#: The answer each rule set reads from a generated text (recorded next to the score).
ANSWER_RULES = {'official': lambda prediction, question_type: fuzzy_matching(prediction), 'geovr': geovr_answer}


def aggregate_scores(records: Iterable[Mapping], rules: str = 'official') -> dict:
    """Per-question-type, per-task and overall scores from scored samples.

    Args:
        records: mappings with ``question_type`` and ``score`` (as written by :class:`VSIBenchMetric`).
        rules: ``'official'``, or ``'geovr'`` (direction difficulties pooled per sample; overall = task sum / 8).
    Returns:
        ``{'overall': float, 'tasks': {task: score}, 'question_types': {question_type: score},
        'counts': {question_type: n}, 'missing_tasks': [task, ...]}``; scores in [0, 1]. As in the official
        aggregation, question types without samples are left out of their averages (``missing_tasks`` lists the
        tasks that had none, and ``overall`` averages the tasks present).
    """
    if rules not in SCORING_RULES:
        raise ValueError(f'VSI-Bench scoring rules must be one of {sorted(SCORING_RULES)}, got {rules!r}.')
    records = list(records)
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
        if present and rules == 'geovr':    # pooled over the samples of all members
            tasks[task] = sum(sums[m] for m in members) / sum(counts[m] for m in members)
        elif present:
            tasks[task] = sum(present) / len(present)
    if rules == 'geovr':
        overall = sum(tasks.values()) / len(TASKS)
    else:
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
