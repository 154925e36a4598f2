"""Summaries of a GRPO run: the training reward over time and the test score before and after."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def windowed_means(values: Sequence[float], window: int) -> list[float]:
    """Means of consecutive, non-overlapping windows of ``window`` values (the last one may be shorter)."""
    if window < 1:
        raise ValueError(f'window must be >= 1, got {window}.')
    return [sum(values[i:i + window]) / len(values[i:i + window]) for i in range(0, len(values), window)]


def format_grpo_report(rewards: Mapping[str, Sequence[float]], window: int, before: Mapping[str, float],
                       after: Mapping[str, float]) -> str:
    """Markdown: the per-step training rewards averaged per window of steps, and the test scores.

    Args:
        rewards: ``{'reward': [...], 'reward/accuracy': [...], ...}`` one value per training step.
        window: steps per row.
        before / after: ``{'overall': score, task: score, ...}`` in percent.
    """
    names = list(rewards)
    steps = len(rewards[names[0]]) if names else 0
    lines = ['| steps | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    columns = [windowed_means(list(rewards[name]), window) for name in names]
    for row, start in enumerate(range(0, steps, window)):
        cells = [f'{columns[c][row]:.3f}' for c in range(len(names))]
        lines.append(f'| {start + 1}-{min(start + window, steps)} | ' + ' | '.join(cells) + ' |')
    keys = [key for key in before if key in after]
    lines += ['', '| test score (%) | before GRPO | after GRPO |', '|---|---|---|']
    lines += [f'| {key} | {before[key]:.1f} | {after[key]:.1f} |' for key in keys]
    return '\n'.join(lines) + '\n'
