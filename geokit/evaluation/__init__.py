"""Evaluation: VSI-Bench scoring by the official rules, geometry metrics of the heads, linear probes.

Importing this package registers ``VSIBenchMetric`` and ``GeometryMetric`` (METRICS) and ``SkipScoredSampler``
(DATA_SAMPLERS). :mod:`geokit.evaluation.probes` (the depth and pose probe tasks; fitting in
:mod:`~geokit.evaluation.ridge_probe`, reports in :mod:`~geokit.evaluation.probe_report`) and
:mod:`geokit.evaluation.features` (frozen hidden states + geometry targets for the probes, ``tools/probe.py``) are
imported on demand.
"""
from geokit.evaluation.geometry_metric import GeometryMetric, median_scale
from geokit.evaluation.samplers import SkipScoredSampler, sample_id
from geokit.evaluation.vsibench import (
    SCORING_MODES,
    TASKS,
    ScoringMode,
    aggregate_scores,
    exact_match,
    extract_number,
    format_markdown_table,
    fuzzy_matching,
    mean_relative_accuracy,
    register_scoring_mode,
    score_prediction,
    task_of,
    to_float,
)
from geokit.evaluation.vsibench_metric import VSIBenchMetric
from geokit.evaluation.vsibench_prior import AnswerPrior

__all__ = ['AnswerPrior', 'GeometryMetric', 'SCORING_MODES', 'ScoringMode', 'SkipScoredSampler', 'TASKS',
           'VSIBenchMetric', 'aggregate_scores', 'exact_match', 'extract_number', 'format_markdown_table',
           'fuzzy_matching', 'mean_relative_accuracy', 'median_scale', 'register_scoring_mode', 'sample_id',
           'score_prediction', 'task_of', 'to_float']
