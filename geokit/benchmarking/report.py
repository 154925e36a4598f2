"""Write the benchmark results: ``benchmark.json``, ``benchmark.md`` (tables + goals) and ``benchmark.png``."""
from __future__ import annotations

import os
import os.path as osp

from geokit.evaluation.records import save_figure_atomic, write_json_atomic, write_text_atomic

from .goals import GOALS_BY_KEY

#: Resolution of ``benchmark.png``.
PLOT_DPI = 100


def _mem(entry: dict) -> str:
    return f"{entry['peak_mem_mib']:.0f}"


def format_markdown(results: dict) -> str:
    """Markdown tables of the training cases, the inference models, the insertion benchmark and the goals."""
    training, inference, insertion = results['training'], results['inference'], results['insertion']
    mem_kind = next(iter(training.values()))['mem_kind']
    inputs = results['inputs']
    lines = [f"Device: {results['device']}; scale `{results['scale']}`; torch {results['torch']}, transformers "
             f"{results['transformers']}; load average before/after {results['load_average_before']} / "
             f"{results['load_average_after']}; interleaved: {results['interleaved']}.",
             f"Inputs: {inputs['source']}, batch {inputs['batch_size']}, frames {inputs['frames']} "
             f"(Spatial-MLLM {inputs['spatial_frames']}). Peak memory: {mem_kind}.", '',
             '| training case | step ms (median) | IQR ms | samples/s | peak MiB | trainable params |',
             '|---|---:|---:|---:|---:|---:|']
    for entry in training.values():
        ms = entry['step_ms']
        lines.append(f"| {entry['description']} | {ms['median']:.1f} | {ms['iqr']:.1f} | "
                     f"{entry['samples_per_s']:.2f} | {_mem(entry)} | {entry['trainable_params'] / 1e6:.2f} M |")
    first = next(iter(inference.values()))
    lines += ['', f"| inference (batch {first['batch_size']}, prefill + {first['new_tokens']} new tokens, greedy) | "
              'prompt tokens | latency ms (median) | IQR ms | peak MiB | params |', '|---|---:|---:|---:|---:|---:|']
    for entry in inference.values():
        ms = entry['latency_ms']
        lines.append(f"| {entry['description']} | {entry['prompt_tokens']} | {ms['median']:.1f} | {ms['iqr']:.1f} | "
                     f"{_mem(entry)} | {entry['params'] / 1e6:.2f} M |")
    lines += ['', f"Geometry-token insertion, batch {insertion['batch_size']} x {insertion['frames']} frames x "
              f"{insertion['tokens_per_frame']} tokens ({insertion['tokens']} tokens), {insertion['threads']} torch "
              f"thread(s): vectorised {insertion['vectorised_ms']['median']:.3f} ms, per-token Python loop "
              f"{insertion['loop_ms']['median']:.3f} ms, identical output: {insertion['identical']}.", '',
              '| goal (ratios measured in this run) | measured | ratio of medians | goal | result |',
              '|---|---:|---:|---|---|']
    for goal in results['goals']:
        paired = ' (paired)' if goal['ratio_name'].endswith('_paired') else ''
        lines.append(f"| {goal['label']} | {goal['ratio']:.3f}{paired} | {goal['ratio_of_medians']:.3f} | "
                     f"{goal['goal']} | {'PASS' if goal['passed'] else 'FAIL'} |")
    lines += ['', '"paired": median over the interleaved rounds of the per-round ratio (robust to load drifts); '
              'the goal is judged on it where it exists.']
    in_goals = {name for goal in results['goals'] for name in (goal['ratio_name'],
                                                                goal['ratio_name'].removesuffix('_paired'))}
    lines += ['', 'Other ratios (same run): ' + ', '.join(f'{k} {v:.3f}' for k, v in results['ratios'].items()
                                                          if k not in in_goals)]
    return '\n'.join(lines) + '\n'


def plot(results: dict, path: str) -> None:
    """Bar charts of step time, peak memory, inference latency and the goal ratios (matplotlib, headless)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    training, inference = results['training'], results['inference']
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(2, 2)
    names = list(training)
    axes[0, 0].bar(names, [training[n]['step_ms']['median'] for n in names],
                   yerr=[training[n]['step_ms']['iqr'] / 2 for n in names], color='tab:blue')
    axes[0, 0].set_title('training step (median ms, IQR)')
    axes[0, 1].bar(names, [training[n]['peak_mem_mib'] for n in names], color='tab:orange')
    axes[0, 1].set_title(f"peak memory (MiB, {training[names[0]]['mem_kind']})")
    models = list(inference)
    axes[1, 0].bar(models, [inference[n]['latency_ms']['median'] for n in models],
                   yerr=[inference[n]['latency_ms']['iqr'] / 2 for n in models], color='tab:green')
    axes[1, 0].set_title(f"inference: prefill + {inference[models[0]]['new_tokens']} tokens (median ms)")
    goals = results['goals']
    definitions = [GOALS_BY_KEY[goal['key']] for goal in goals]
    labels = [d.plot_label for d in definitions]
    values = [goal['ratio'] / d.plot_scale for goal, d in zip(goals, definitions)]
    targets = [d.target / d.plot_scale for d in definitions]
    colors = ['tab:green' if g['passed'] else 'tab:red' for g in goals]
    axes[1, 1].bar(labels, values, color=colors)
    axes[1, 1].scatter(labels, targets, marker='_', s=2000, color='black', label='goal')
    axes[1, 1].set_title('goals (green: PASS, red: FAIL)')
    axes[1, 1].legend()
    for ax in axes.flat:
        ax.tick_params(axis='x', labelrotation=15)
    fig.suptitle(f"geokit benchmark, scale {results['scale']}, {results['device']}")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=PLOT_DPI)


def write_report(results: dict, out_dir: str) -> dict[str, str]:
    """Write ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` under ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {'json': osp.join(out_dir, 'benchmark.json'), 'markdown': osp.join(out_dir, 'benchmark.md'),
             'plot': osp.join(out_dir, 'benchmark.png')}
    write_json_atomic(paths['json'], results)
    write_text_atomic(paths['markdown'], format_markdown(results))
    plot(results, paths['plot'])
    return paths
