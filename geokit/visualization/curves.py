"""Training curves from mmengine's local log (``<work_dir>/<timestamp>/vis_data/scalars.json``) as a PNG."""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
from collections.abc import Sequence

from geokit.evaluation.records import save_figure_atomic


def find_scalars(path: str) -> str:
    """``path`` itself if it is a ``scalars.json``, else the newest ``*/vis_data/scalars.json`` under it.

    Raises:
        FileNotFoundError: none found (names what was looked for).
    """
    if osp.isfile(path):
        return path
    found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise FileNotFoundError(f'No scalars.json under {path} (looked for {path}/<timestamp>/vis_data/scalars.json, '
                                f"written by mmengine's LocalVisBackend during training).")
    return found[-1]


def read_scalars(path: str) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` of every scalar in a ``scalars.json`` (one JSON object per logged step)."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            step = int(record.get('step', record.get('iter', 0)))
            for key, value in record.items():
                if key not in ('step', 'iter', 'epoch') and isinstance(value, (int, float)):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def plot_training_curves(series: dict[str, list[tuple[int, float]]], path: str,
                         keys: Sequence[str] | None = None, title: str | None = None) -> list[str]:
    """Plot the losses (default: every ``loss*`` key, and ``lr``) against the step, one panel per key; PNG.

    Returns the keys plotted. Raises ``KeyError`` for a requested key the log does not have.
    """
    from matplotlib.figure import Figure

    keys = list(keys) if keys else sorted(k for k in series if k.startswith('loss')) + \
        (['lr'] if 'lr' in series else [])
    missing = [key for key in keys if key not in series]
    if missing or not keys:
        raise KeyError(f'Keys {missing or keys} are not in the log; it has {sorted(series)}.')
    columns = min(3, len(keys))
    rows = (len(keys) + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 2.8 * rows), dpi=100)
    for index, key in enumerate(keys):
        axis = figure.add_subplot(rows, columns, index + 1)
        steps, values = zip(*series[key])
        axis.plot(steps, values, linewidth=1.2)
        axis.set_title(key, fontsize=10)
        axis.set_xlabel('iteration', fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    save_figure_atomic(figure, path)
    return keys
