"""The answer-prior baseline: what a model scores on VSI-Bench without looking at the video.

:class:`AnswerPrior` is fitted on the *training* annotations alone: per question type, the most frequent option
letter (multiple choice), the median number (numerical questions) or the most frequent answer (any other type).
Scoring its constant answers next to a model's shows how much of the model's score the video explains; a model that
answers one constant per question type (a collapsed model) scores exactly like its own prior.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from geokit.evaluation.vsibench import (
    ACCURACY_METRIC,
    MRA_METRIC,
    fuzzy_matching,
    metric_name,
    to_float,
)

ANSWER_ROLES = ('gpt', 'assistant')


def training_answer(row: Mapping) -> str | None:
    """The answer of one annotation row: ``ground_truth`` (VSI-Bench layout), else the last gpt turn (VSI-590K)."""
    if row.get('ground_truth') is not None:
        return str(row['ground_truth'])
    turns = row.get('conversations') or row.get('conversation') or []
    answers = [turn.get('value') for turn in turns if turn.get('from') in ANSWER_ROLES]
    return str(answers[-1]).strip() if answers else None


def _metric_or_none(question_type: str) -> str | None:
    try:
        return metric_name(question_type)
    except ValueError:
        return None


def _most_frequent(values: Iterable[str]) -> str:
    counts = Counter(values)
    best = max(counts.values())
    return min(value for value, count in counts.items() if count == best)   # ties: the smallest, deterministic


@dataclass
class AnswerPrior:
    """One constant answer per question type, fitted on training annotations.

    Attributes:
        answers: question type -> the answer text the prior gives.
        counts: question type -> training rows it was fitted on.
        source: where the annotations came from (recorded in summaries).
    """

    answers: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
    source: str = ''

    @classmethod
    def fit(cls, rows: Iterable[Mapping], source: str = '') -> AnswerPrior:
        """Fit on annotation rows with ``question_type`` and an answer (see :func:`training_answer`).

        Rows without a question type or answer are ignored; so are numerical answers that are not numbers.
        """
        grouped: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            question_type, answer = row.get('question_type'), training_answer(row)
            if question_type and answer is not None:
                grouped[str(question_type)].append(answer)
        answers, counts = {}, {}
        for question_type, values in sorted(grouped.items()):
            metric = _metric_or_none(question_type)
            if metric == MRA_METRIC:
                numbers = [number for number in map(to_float, values) if number is not None and np.isfinite(number)]
                if not numbers:
                    continue
                answers[question_type] = f'{float(np.median(numbers)):g}'
                counts[question_type] = len(numbers)
                continue
            if metric == ACCURACY_METRIC:
                values = [fuzzy_matching(value).upper() for value in values]
            answers[question_type] = _most_frequent(values)
            counts[question_type] = len(values)
        return cls(answers=answers, counts=counts, source=source)

    @classmethod
    def from_annotation_file(cls, path: str | os.PathLike) -> AnswerPrior:
        """Fit on a training annotation file (JSONL, JSON list or parquet; see ``read_annotation_rows``)."""
        from geokit.datasets.published import read_annotation_rows

        return cls.fit(read_annotation_rows(path), source=str(path))

    def predict(self, question_type: str) -> str | None:
        """The prior's answer to a question of this type (``None``: no training rows of that type)."""
        return self.answers.get(question_type)

    def to_dict(self) -> dict:
        return dict(source=self.source, answers=dict(self.answers), counts=dict(self.counts))
