"""Ratios of the benchmark against baselines measured in the same run, and the speed goals judged on them.

Every ratio divides two medians of this run (``results['training'][case]['step_ms']['median']``,
``results['inference'][model]['latency_ms']['median']``), so machine speed cancels. Where the timed calls were
interleaved (one call of every case per round), ``<ratio>_paired`` is the median over the rounds of the per-round
ratio, which is robust to slow drifts of a shared machine's load; a goal is judged on the paired ratio where it
exists, else on the ratio of the medians.
"""
from __future__ import annotations

import statistics
from typing import NamedTuple

#: Training-step ratios: ``name: (case, baseline case)``.
STEP_RATIOS = {
    'geovr_cached_vs_sft_step': ('geovr_cached', 'sft'),
    'geovr_online_vs_sft_step': ('geovr_online', 'sft'),
    'geovr_cached_vs_online_step': ('geovr_cached', 'geovr_online'),
    'spatial_mllm_vs_sft_step': ('spatial_mllm', 'sft'),
}
#: Inference-latency ratios: ``name: (model, baseline model)``.
LATENCY_RATIOS = {
    'geovr_export_vs_base_latency': ('geovr_export', 'base'),
    'spatial_mllm_vs_base_latency': ('spatial_mllm', 'base'),
}
#: The ratios that also get a ``_paired`` version (those the goals are judged on).
PAIRED_STEP_RATIO = 'geovr_cached_vs_sft_step'
PAIRED_LATENCY_RATIO = 'geovr_export_vs_base_latency'
INSERTION_RATIO = 'insertion_speedup'


class Goal(NamedTuple):
    """A speed goal on one ratio: passed when ``ratio <= target`` (``'at_most'``), ``ratio >= target``
    (``'at_least'``) or ``|ratio - target| <= tolerance`` (``'within'``).

    Attributes:
        key: stable id (``results['goals'][i]['key']``). label: the ratio in words (the markdown table).
        ratio_name: the key of ``results['ratios']`` it is judged on (its ``_paired`` version where there is one).
        text: the goal as the tables print it. target, comparison, tolerance: see above.
        plot_label: short label of the plot; plot_scale: the plot divides the ratio (and the target) by it, so that
            all goals share one axis.
    """

    key: str
    label: str
    ratio_name: str
    text: str
    target: float
    comparison: str
    tolerance: float = 0.0
    plot_label: str = ''
    plot_scale: float = 1.0

    def passed(self, ratio: float) -> bool:
        if self.comparison == 'at_most':
            return ratio <= self.target
        if self.comparison == 'at_least':
            return ratio >= self.target
        if self.comparison == 'within':
            return abs(ratio - self.target) <= self.tolerance
        raise ValueError(f"goal {self.key}: comparison must be 'at_most', 'at_least' or 'within', got "
                         f'{self.comparison!r}.')


#: The goals of issue 10 (a cached teacher costs at most 15 % over SFT; the export is the base model's speed;
#: vectorised geometry-token insertion at least 100x the per-token loop).
GOALS = (
    Goal('cached_step', 'GeoVR cached step / SFT step', PAIRED_STEP_RATIO, '<= 1.15', 1.15, 'at_most',
         plot_label='cached / SFT step'),
    Goal('export_latency', 'GeoVR export latency / base latency', PAIRED_LATENCY_RATIO, '1.00 (within +-5 %)',
         1.0, 'within', tolerance=0.05, plot_label='export / base latency'),
    Goal('insertion', 'geometry-token insertion: loop / vectorised', INSERTION_RATIO, '>= 100x', 100.0, 'at_least',
         plot_label='insertion speed-up / 100', plot_scale=100.0),
)
GOALS_BY_KEY = {goal.key: goal for goal in GOALS}


def _paired_median(values: list[float], baselines: list[float]) -> float:
    """Median of the per-round ratios ``values[i] / baselines[i]``."""
    return statistics.median(v / b for v, b in zip(values, baselines))


def compute_ratios(training: dict, inference: dict, insertion: dict, paired_steps: bool = True) -> dict[str, float]:
    """All ratios of a run: :data:`STEP_RATIOS`, :data:`LATENCY_RATIOS` (of the medians), ``insertion_speedup``,
    then the paired ratios: the latency one always (the inference calls are always interleaved), the step one when
    ``paired_steps`` (the training steps were interleaved) and every case has as many timed steps as SFT."""
    step = {case: entry['step_ms']['median'] for case, entry in training.items()}
    latency = {model: entry['latency_ms']['median'] for model, entry in inference.items()}
    ratios = {name: step[case] / step[baseline] for name, (case, baseline) in STEP_RATIOS.items()}
    ratios.update({name: latency[model] / latency[baseline] for name, (model, baseline) in LATENCY_RATIOS.items()})
    ratios[INSERTION_RATIO] = insertion['speedup']
    case, baseline = STEP_RATIOS[PAIRED_STEP_RATIO]
    rounds = len(training[baseline]['step_ms_all'])
    if paired_steps and all(len(entry['step_ms_all']) == rounds for entry in training.values()):
        ratios[f'{PAIRED_STEP_RATIO}_paired'] = _paired_median(training[case]['step_ms_all'],
                                                               training[baseline]['step_ms_all'])
    model, baseline = LATENCY_RATIOS[PAIRED_LATENCY_RATIO]
    ratios[f'{PAIRED_LATENCY_RATIO}_paired'] = _paired_median(inference[model]['latency_ms_all'],
                                                              inference[baseline]['latency_ms_all'])
    return ratios


def judge_goals(ratios: dict[str, float]) -> list[dict]:
    """One dict per goal: ``key``, ``label``, ``ratio_name`` (the ratio judged), ``ratio``, ``ratio_of_medians``,
    ``goal`` (text), ``passed`` (bool)."""
    goals = []
    for goal in GOALS:
        paired = f'{goal.ratio_name}_paired'
        used = paired if paired in ratios else goal.ratio_name
        goals.append(dict(key=goal.key, label=goal.label, ratio_name=used, ratio=ratios[used],
                          ratio_of_medians=ratios[goal.ratio_name], goal=goal.text,
                          passed=bool(goal.passed(ratios[used]))))
    return goals


def ratios_and_goals(training: dict, inference: dict, insertion: dict,
                     paired_steps: bool = True) -> tuple[dict, list[dict]]:
    """:func:`compute_ratios` and :func:`judge_goals` of a run's ``training``, ``inference`` and ``insertion``
    results (read: ``step_ms['median']``, ``step_ms_all``, ``latency_ms['median']``, ``latency_ms_all``,
    ``speedup``); ``paired_steps``: whether the training steps were interleaved."""
    ratios = compute_ratios(training, inference, insertion, paired_steps)
    return ratios, judge_goals(ratios)
