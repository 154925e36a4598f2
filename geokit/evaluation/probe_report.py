"""Reports of the linear probes: a JSON-ready dict, markdown tables and a per-layer error plot.

All three take ``{task: [ProbeResult per layer]}`` (:class:`~geokit.evaluation.ridge_probe.ProbeResult`), as
:func:`geokit.evaluation.probes.run_probe_tasks` returns it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from geokit.evaluation.records import save_figure_atomic
from geokit.evaluation.ridge_probe import ProbeResult

#: Figure width per task panel and height (inches), and resolution of the written image.
PANEL_WIDTH_IN, FIGURE_HEIGHT_IN, PLOT_DPI = 4.2, 3.4, 120
#: The metric name that plots :attr:`ProbeResult.val_mse` instead of an entry of ``val_metrics``.
VAL_MSE = 'val_mse'


def probe_results_to_dict(results: Mapping[str, Sequence[ProbeResult]]) -> dict:
    """JSON-ready ``{task: [{layer, lam, train_mse, val_mse, val_metrics, baseline_metrics}]}``."""
    return {task: [dict(layer=r.layer, lam=r.lam, train_mse=r.train_mse, val_mse=r.val_mse,
                        val_metrics=r.val_metrics, baseline_metrics=r.baseline_metrics) for r in task_results]
            for task, task_results in results.items()}


def _markdown_table(task: str, task_results: Sequence[ProbeResult]) -> list[str]:
    names = list(task_results[0].val_metrics) if task_results else []
    lines = [f'**{task}** probe', '', '| layer | ' + ' | '.join(names) + ' | val MSE | ridge lambda |',
             '|---|' + '---|' * (len(names) + 2)]
    for r in task_results:
        lines.append(f'| {r.layer} | ' + ' | '.join(f'{r.val_metrics[n]:.4f}' for n in names) +
                     f' | {r.val_mse:.4f} | {r.lam:g} |')
    if task_results and task_results[0].baseline_metrics:
        base = task_results[0].baseline_metrics
        lines.append('| constant | ' + ' | '.join(f'{base[n]:.4f}' for n in names) + ' | | |')
    return lines + ['']


def format_probe_markdown(results: Mapping[str, Sequence[ProbeResult]]) -> str:
    """One markdown table per task: a row per layer (validation metrics, val MSE, chosen ridge strength), then the
    constant-prediction baseline."""
    return '\n'.join(line for task, task_results in results.items() for line in _markdown_table(task, task_results))


def plot_probe_errors(results: Mapping[str, Sequence[ProbeResult]], metrics: Mapping[str, str], path: str,
                      title: str | None = None) -> str:
    """Plot, per task, a validation metric against the layer, with the constant-prediction baseline dashed.

    Args:
        results: ``{task: [ProbeResult per layer]}``.
        metrics: ``{task: metric name}`` (a key of ``val_metrics``, or ``'val_mse'``).
        path: output image (``.png``), written atomically (matplotlib without pyplot: headless).
    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state, works headless

    fig = Figure(figsize=(PANEL_WIDTH_IN * len(results), FIGURE_HEIGHT_IN))
    axes = fig.subplots(1, len(results), squeeze=False)
    for axis, (task, task_results) in zip(axes[0], results.items()):
        name = metrics[task]
        layers = [str(r.layer) for r in task_results]
        values = [r.val_mse if name == VAL_MSE else r.val_metrics[name] for r in task_results]
        axis.plot(layers, values, marker='o', label='linear probe')
        baseline = task_results[0].baseline_metrics.get(name) if task_results else None
        if baseline is not None:
            axis.axhline(baseline, linestyle='--', color='gray', label='constant baseline')
        axis.set_xlabel('layer')
        axis.set_ylabel(name)
        axis.set_title(task)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=PLOT_DPI)
