"""VSI-Bench scoring by named rules: the 2024 official rules (default), lmms-eval's current numeric parsing, GeoVR's.

Scoring modes (:data:`SCORING_MODES`; every result file names the mode that scored it):

* ``'official-2024'`` (default) -- the rules of the VSI-Bench release (thinking-in-space, lmms-eval
  ``vsibench/utils.py`` up to mid-2026), described below;
* ``'lmms-eval'`` -- lmms-eval's current ``vsibench`` task: the same, except that a numerical answer is the first
  number *anywhere* in the generated text, digits or English number words (:func:`extract_number`; ``"There are
  three chairs"`` -> 3, ``"about 2.5 m"`` -> 2.5), where the 2024 rules read only the first token.

* ``'geovr'`` -- GeoVR's own parsing and aggregation (below).

A further mode is one :func:`register_scoring_mode` call.

Per sample (``'official-2024'``):
  * the answer is the first token of the generated text split on single spaces, with trailing ``'.'`` stripped
    (:func:`fuzzy_matching`; ``"B. chair"`` -> ``"B"``);
  * multiple-choice questions score 1 for a case-insensitive exact match of that token with the ground-truth letter
    (:func:`exact_match`);
  * numerical questions score the mean relative accuracy (:func:`mean_relative_accuracy`): the fraction of
    confidence thresholds ``c`` in 0.50, 0.55, ..., 0.95 with ``|pred - gt| / gt <= 1 - c``; a token that is not a
    number scores 0.

Per benchmark: each question type is averaged over its samples; ``object_rel_direction`` is the mean of its
easy / medium / hard accuracies; ``overall`` is the mean of the eight task scores.

``'geovr'`` reproduces GeoVR's own scoring (``metric_result.py``), for comparing with its table only: the
multiple-choice answer is the first *character* of the stripped text (case-sensitive), a numerical answer is
``float`` of the whole stripped text, relative error ``< 1 - c`` (strict) with ``c = round(0.5 + 0.05 i, 2)``,
the three direction difficulties are pooled sample by sample, and ``overall`` divides the task sum by 8 (a task
without samples counts 0). See :func:`geovr_score_prediction` and :func:`aggregate_scores`.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

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


_NUMBER_WORDS: dict[str, int] = {
    word: value for value, word in enumerate(
        'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen '
        'seventeen eighteen nineteen twenty'.split())}
_NUMBER_WORDS.update(thirty=30, forty=40, fifty=50, sixty=60, seventy=70, eighty=80, ninety=90, hundred=100,
                     thousand=1000)
_DIGITS = re.compile(r'-?\d+(?:\.\d+)?')
_WORD = re.compile(r'[a-z]+')


def _number_words_value(words: list[str]) -> float:
    """Value of a run of English number words (``['three', 'hundred', 'twenty', 'one']`` -> 321)."""
    total, current = 0, 0
    for word in words:
        value = _NUMBER_WORDS[word]
        if value == 100:
            current = max(current, 1) * 100
        elif value == 1000:
            total, current = total + max(current, 1) * 1000, 0
        else:
            current += value
    return float(total + current)


def extract_number(text: object) -> float | None:
    """The first number in ``text``: a decimal (``-?digits[.digits]``) or a run of English number words.

    lmms-eval's current ``vsibench`` numeric parsing: whichever of the first decimal and the first number-word run
    starts earlier wins (``"one chair, room 2"`` -> 1.0); a word run continues over ``and`` (``"three hundred and
    five"`` -> 305.0) and hyphens (``"twenty-one"`` -> 21.0). ``None`` when the text holds no number.
    """
    if text is None:
        return None
    lowered = str(text).strip().lower()
    digits = _DIGITS.search(lowered)
    run: list[str] = []
    run_start = None
    for match in _WORD.finditer(lowered):
        word = match.group(0)
        if run_start is None:
            if word in _NUMBER_WORDS:
                run_start = match.start()
                run.append(word)
        elif word in _NUMBER_WORDS:
            run.append(word)
        elif word != 'and':
            break
    if digits is not None and (run_start is None or digits.start() < run_start):
        return float(digits.group(0))
    return _number_words_value(run) if run else None


@dataclass(frozen=True)
class ScoringMode:
    """How a generated text becomes an answer before it is scored.

    Attributes:
        name: the name result files record (``scoring_mode``).
        description: one line for summaries and docs.
        choice: generated text -> the option token compared with the ground-truth letter.
        number: generated text -> the number compared with the ground truth (``None``: not a number, scores 0).
        score: ``(prediction, ground_truth, question_type) -> score`` replacing the official comparison (exact
            match, mean relative accuracy) for rule sets that compare differently; ``None``: the official one.
        aggregation: ``'official'`` (mean per question type, direction = mean of its difficulties, overall = mean
            of the tasks present) or ``'geovr'`` (directions pooled per sample, overall = task sum / 8).
    """

    name: str
    description: str
    choice: Callable[[str], str]
    number: Callable[[str], float | None]
    score: Callable[[str, str | float, str], float] | None = None
    aggregation: str = 'official'


#: Scoring modes by name; ``DEFAULT_SCORING_MODE`` is the 2024 official rules.
SCORING_MODES: dict[str, ScoringMode] = {}
DEFAULT_SCORING_MODE = 'official-2024'


def register_scoring_mode(mode: ScoringMode, force: bool = False) -> ScoringMode:
    """Add a scoring mode under ``mode.name`` (``force`` replaces an existing one)."""
    if mode.name in SCORING_MODES and not force:
        raise KeyError(f'Scoring mode {mode.name!r} is already registered; pass force=True to replace it.')
    SCORING_MODES[mode.name] = mode
    return mode


def get_scoring_mode(mode: str | ScoringMode) -> ScoringMode:
    """The :class:`ScoringMode` named ``mode`` (or ``mode`` itself).

    Raises:
        KeyError: an unknown name, listing the registered ones.
    """
    if isinstance(mode, ScoringMode):
        return mode
    if mode not in SCORING_MODES:
        raise KeyError(f'Unknown VSI-Bench scoring mode {mode!r}; registered: {sorted(SCORING_MODES)} '
                       f'(geokit.evaluation.vsibench.register_scoring_mode adds one).')
    return SCORING_MODES[mode]


register_scoring_mode(ScoringMode(
    'official-2024', 'VSI-Bench 2024 official rules: first space-separated token (trailing dots stripped); '
    'numbers by float() of that token', choice=fuzzy_matching, number=lambda text: to_float(fuzzy_matching(text))))
register_scoring_mode(ScoringMode(
    'lmms-eval', "lmms-eval's current vsibench parsing: option = first token; number = first number anywhere in "
    'the text (digits or English number words)', choice=fuzzy_matching, number=extract_number))


def parsed_answer(prediction: str, question_type: str, mode: str | ScoringMode = DEFAULT_SCORING_MODE) -> str:
    """The answer ``mode`` reads from ``prediction``, as text: the option token, or the number (``'%g'``); for a
    numerical question without a readable number, the option token (what was read instead)."""
    scoring = get_scoring_mode(mode)
    value = None if metric_name(question_type) == ACCURACY_METRIC else scoring.number(prediction)
    return scoring.choice(prediction) if value is None else f'{value:g}'


def score_prediction(prediction: str, ground_truth: str | float, question_type: str,
                     mode: str | ScoringMode = DEFAULT_SCORING_MODE) -> float:
    """Score one generated answer by the rules of ``mode`` (see the module docstring).

    Args:
        prediction: the model's generated text.
        ground_truth: the option letter (multiple choice) or the number (numerical questions).
        question_type: one of :data:`MCA_QUESTION_TYPES` or :data:`NA_QUESTION_TYPES`.
        mode: a :data:`SCORING_MODES` name (default: the 2024 official rules).
    Returns:
        Accuracy in {0, 1} or mean relative accuracy in [0, 1].
    Raises:
        ValueError: unknown question type, or a numerical ground truth that is not a positive number (the relative
            error divides by it).
        KeyError: unknown scoring mode.
    """
    scoring = get_scoring_mode(mode)
    if scoring.score is not None:
        return scoring.score(prediction, ground_truth, question_type)
    if metric_name(question_type) == ACCURACY_METRIC:
        return exact_match(scoring.choice(prediction), str(ground_truth))
    target = to_float(ground_truth)
    if target is None or not math.isfinite(target) or target <= 0:
        raise ValueError(f'Numerical question ({question_type}) has ground truth {ground_truth!r}; VSI-Bench scores '
                         f'|pred - gt| / gt, which needs a positive number. Fix the dataset entry.')
    value = scoring.number(prediction)
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


register_scoring_mode(ScoringMode(
    'geovr', "GeoVR's own metric_result.py: option = first character (case-sensitive); number = float() of the "
    'whole text; strict MRA; direction difficulties pooled; overall = task sum / 8',
    choice=lambda text: text.strip()[:1], number=lambda text: to_float(text.strip()), score=geovr_score_prediction,
    aggregation='geovr'))


def aggregate_scores(records: Iterable[Mapping], mode: str | ScoringMode = DEFAULT_SCORING_MODE) -> dict:
    """Per-question-type, per-task and overall scores from scored samples.

    Args:
        records: mappings with ``question_type`` and ``score`` (as written by :class:`VSIBenchMetric`).
        mode: the scoring mode whose aggregation applies (:attr:`ScoringMode.aggregation`): official, or GeoVR's
            (direction difficulties pooled per sample; overall = task sum / 8).
    Returns:
        ``{'overall': float, 'tasks': {task: score}, 'question_types': {question_type: score},
        'counts': {question_type: n}, 'missing_tasks': [task, ...]}``; scores in [0, 1]. As in the official
        aggregation, question types without samples are left out of their averages (``missing_tasks`` lists the
        tasks that had none, and ``overall`` averages the tasks present).
    """
    pooled = get_scoring_mode(mode).aggregation == 'geovr'
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
        if present and pooled:    # pooled over the samples of all members
            tasks[task] = sum(sums[m] for m in members) / sum(counts[m] for m in members)
        elif present:
            tasks[task] = sum(present) / len(present)
    if pooled:
        overall = sum(tasks.values()) / len(TASKS)
    else:
        overall = sum(tasks.values()) / len(tasks) if tasks else 0.0
    return dict(overall=overall, tasks=tasks, question_types=dict(sorted(per_type.items())),
                counts=dict(sorted(counts.items())), missing_tasks=[task for task in TASKS if task not in tasks])


def _cells(summary: Mapping) -> list[str]:
    values = [summary['overall']] + [summary['tasks'].get(task) for task in TASKS]
    return ['-' if value is None else f'{100 * value:.1f}' for value in values]


def format_markdown_table(summary: Mapping, title: str | None = None) -> str:
    """The per-task table of :func:`aggregate_scores` as markdown (scores in percent, one decimal).

    A summary with a ``prior`` (the answer-prior baseline, see :class:`VSIBenchMetric`) gets a second row with the
    prior's scores, and its per-question-type table shows the prior's answer and the number of distinct answers of
    the model (``distinct_answers``) beside each score; a ``scoring_mode`` / ``subset`` is named under the title.
    """
    header = ['Overall'] + [TASK_TITLES[task] for task in TASKS]
    lines = [] if title is None else [f'### {title}', '']
    if summary.get('scoring_mode'):
        lines += [f'Scoring: `{summary["scoring_mode"]}`; subset: `{summary.get("subset", "full")}`.', '']
    prior = summary.get('prior')
    if prior is None:
        lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header),
                  '| ' + ' | '.join(_cells(summary)) + ' |']
    else:
        lines += ['| Predictor | ' + ' | '.join(header) + ' |', '|' + '---|' * (len(header) + 1),
                  '| model | ' + ' | '.join(_cells(summary)) + ' |',
                  '| answer prior | ' + ' | '.join(_cells(prior)) + ' |']
    counts = summary.get('counts', {})
    if counts and prior is None:
        lines += ['', '| question_type | n | score |', '|---|---|---|']
        lines += [f'| {question_type} | {n} | {100 * summary["question_types"][question_type]:.1f} |'
                  for question_type, n in counts.items()]
    elif counts:
        distinct = summary.get('distinct_answers', {})
        lines += ['', '| question_type | n | score | distinct answers | prior answer | prior score |',
                  '|---|---|---|---|---|---|']
        lines += [f'| {question_type} | {n} | {100 * summary["question_types"][question_type]:.1f} | '
                  f'{distinct.get(question_type, "-")} | {prior["answers"].get(question_type) or "-"} | '
                  f'{100 * prior["question_types"].get(question_type, 0.0):.1f} |'
                  for question_type, n in counts.items()]
    return '\n'.join(lines) + '\n'
