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
    if keys:
        lines += ['', '| test score (%) | before GRPO | after GRPO |', '|---|---|---|']
        lines += [f'| {key} | {before[key]:.1f} | {after[key]:.1f} |' for key in keys]
    return '\n'.join(lines) + '\n'


def format_probe(results: Mapping[str, Mapping[str, float]], num_prompts: int) -> str:
    """Markdown: one row per checkpoint of :func:`fixed_prompt_reward`'s values."""
    names = list(next(iter(results.values())))
    lines = [f'| fixed {num_prompts} training prompts, same seeds | ' + ' | '.join(names) + ' |',
             '|---|' + '---|' * len(names)]
    lines += [f'| {label} | ' + ' | '.join(f'{values[name]:.3f}' for name in names) + ' |'
              for label, values in results.items()]
    return '\n'.join(lines) + '\n'


def fixed_prompt_reward(model, samples: Sequence[dict], batch_size: int = 2, seed_offset: int = 10**6
                        ) -> dict[str, float]:
    """Mean rollout reward of a ``GRPOGeometricMLLM`` on a fixed list of dataset samples, with fixed sampling seeds.

    The training reward of a run mixes the policy's progress with which prompts each step drew; this measures the
    policy alone: the same prompts and the same sampling seeds for any weights, so two checkpoints compare
    directly. The model's rollout counter is restored afterwards.

    Returns:
        ``{'reward': mean total, '<name>': mean of each part}`` over all ``len(samples) * G`` completions.
    """
    import torch

    saved = model.rollout_step.clone()
    totals: dict[str, list[torch.Tensor]] = {}
    try:
        for index, start in enumerate(range(0, len(samples), batch_size)):
            data = model.data_preprocessor(list(samples[start:start + batch_size]), training=True)
            model.rollout_step.fill_(seed_offset + index)
            rollout = model.rollout(data['inputs'], data['data_samples'])
            for name, values in {'reward': rollout['rewards'], **rollout['reward_parts']}.items():
                totals.setdefault(name, []).append(values.float().cpu())
    finally:
        model.rollout_step.copy_(saved)
    return {name: float(torch.cat(values).mean()) for name, values in totals.items()}
