"""Linear probes on frozen hidden states: how linearly decodable is geometry at each layer?

A probe is closed-form ridge regression on standardised features. The ridge strength is chosen per layer on the
training split, by exact leave-one-out error (one eigendecomposition of the ``D x D`` Gram matrix gives the LOO
residuals of every candidate strength) or, when rows come in groups (videos), by cross-validation over whole groups;
then the probe is scored on a held-out split. Splits are by group (video), so tokens of one video never fall on
both sides.

Task helpers: per-token depth (targets = log of the depth pooled onto the token grid, error = AbsRel of
``exp(prediction)`` via :func:`geokit.geometry.metrics.depth_abs_rel`) and per-frame relative camera pose (targets =
9-d pose encodings relative to the first frame, errors = relative pose errors and AUC@30 via
:mod:`geokit.geometry.metrics`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from geokit.geometry.metrics import depth_abs_rel, pose_auc, relative_pose_errors
from geokit.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics

DEFAULT_LAMBDAS: tuple[float, ...] = tuple(10.0 ** k for k in range(-3, 6))


@dataclass
class RidgeProbe:
    """A fitted linear probe ``y = ((x - mean) / std) @ weight + bias``.

    Attributes:
        weight: ``(D, K)``. bias: ``(K,)``. mean, std: ``(D,)`` feature standardisation. lam: ridge strength.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    lam: float

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` features -> ``(N, K)`` predictions (float64)."""
        x = (features.double() - self.mean) / self.std
        return x @ self.weight + self.bias


@dataclass
class ProbeResult:
    """One layer's probe: chosen ridge strength and train / validation errors (and task metrics)."""

    layer: int | str
    lam: float
    train_mse: float
    val_mse: float
    val_metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)


def _check_xy(features: torch.Tensor, targets: torch.Tensor) -> None:
    if features.dim() != 2 or targets.dim() != 2 or features.shape[0] != targets.shape[0]:
        raise ValueError(f'probes expect features (N, D) and targets (N, K) with the same N, got '
                         f'{tuple(features.shape)} and {tuple(targets.shape)}.')
    if features.shape[0] < 3:
        raise ValueError(f'a probe needs at least 3 training rows, got {features.shape[0]}.')


def _spectral_fit(features: torch.Tensor, targets: torch.Tensor):
    """Standardise, centre and eigendecompose once; returns what ridge fits and LOO errors need (float64)."""
    x = features.double()
    y = targets.double()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-8)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    yc = y - y_mean
    eigvals, eigvecs = torch.linalg.eigh(xs.T @ xs)
    eigvals = eigvals.clamp(min=0)
    projected = xs @ eigvecs  # (N, D)
    cross = projected.T @ yc  # (D, K)
    return mean, std, y_mean, yc, eigvals, eigvecs, projected, cross


def ridge_loo_mse(features: torch.Tensor, targets: torch.Tensor,
                  lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> torch.Tensor:
    """Exact leave-one-out mean squared error of ridge regression (with intercept) for each strength.

    Uses ``loo_residual_i = residual_i / (1 - h_ii)`` with the hat matrix of the standardised, centred problem plus
    ``1 / N`` for the intercept.

    Args:
        features: ``(N, D)``. targets: ``(N, K)``. lambdas: candidate strengths (penalty ``lam * |W|^2``).
    Returns:
        ``(L,)`` LOO MSE (mean over rows and target dims), float64.
    """
    _check_xy(features, targets)
    _, _, _, yc, eigvals, _, projected, cross = _spectral_fit(features, targets)
    num_rows = features.shape[0]
    errors = []
    for lam in lambdas:
        inv = 1.0 / (eigvals + lam)
        fitted = projected @ (inv[:, None] * cross)
        leverage = (projected.square() @ inv + 1.0 / num_rows).clamp(max=1 - 1e-9)
        errors.append((((yc - fitted) / (1 - leverage)[:, None]).square()).mean())
    return torch.stack(errors)


def ridge_group_cv_mse(features: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
                       lambdas: Sequence[float] = DEFAULT_LAMBDAS, folds: int = 5) -> torch.Tensor:
    """Cross-validated mean squared error of ridge regression for each strength, holding out whole groups.

    Rows of one group (e.g. the tokens of one video) are strongly correlated, so row-wise leave-one-out rewards
    memorising a group and picks too weak a penalty; holding out groups measures what the probe is scored on.
    Groups are dealt round-robin (in sorted order) into ``min(folds, #groups)`` folds.

    Args:
        features: ``(N, D)``. targets: ``(N, K)``. groups: ``(N,)`` group id per row (at least 2 groups).
    Returns:
        ``(L,)`` MSE over all rows and target dims, float64.
    """
    _check_xy(features, targets)
    unique = torch.unique(groups)
    if unique.numel() < 2:
        raise ValueError(f'grouped cross-validation needs at least 2 groups, got {unique.numel()}.')
    num_folds = min(folds, unique.numel())
    fold_of_group = torch.arange(unique.numel()) % num_folds
    row_fold = fold_of_group[torch.searchsorted(unique, groups)]
    errors = torch.zeros(len(lambdas), dtype=torch.float64)
    for fold in range(num_folds):
        held = row_fold == fold
        mean, std, y_mean, _, eigvals, eigvecs, _, cross = _spectral_fit(features[~held], targets[~held])
        projected = ((features[held].double() - mean) / std) @ eigvecs
        for index, lam in enumerate(lambdas):
            pred = projected @ (cross / (eigvals + lam)[:, None]) + y_mean
            errors[index] += (pred - targets[held].double()).square().sum()
    return errors / targets.numel()


def fit_ridge(features: torch.Tensor, targets: torch.Tensor, lam: float | None = None,
              lambdas: Sequence[float] = DEFAULT_LAMBDAS, groups: torch.Tensor | None = None) -> RidgeProbe:
    """Fit a ridge probe; ``lam=None`` picks the strength with the lowest held-out error among ``lambdas``.

    The held-out error is the exact row-wise leave-one-out error (:func:`ridge_loo_mse`), or, when ``groups`` with
    at least 2 distinct ids are given, the grouped cross-validation error (:func:`ridge_group_cv_mse`).

    Args:
        features: ``(N, D)`` frozen hidden states. targets: ``(N, K)``. groups: ``(N,)`` or None.
    """
    _check_xy(features, targets)
    if lam is None:
        if groups is not None and torch.unique(groups).numel() >= 2:
            errors = ridge_group_cv_mse(features, targets, groups, lambdas)
        else:
            errors = ridge_loo_mse(features, targets, lambdas)
        lam = float(lambdas[int(torch.argmin(errors))])
    mean, std, y_mean, _, eigvals, eigvecs, _, cross = _spectral_fit(features, targets)
    weight = eigvecs @ (cross / (eigvals + lam)[:, None])
    return RidgeProbe(weight=weight, bias=y_mean, mean=mean, std=std, lam=lam)


def group_split(groups: torch.Tensor, val_fraction: float = 0.25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean train / val masks ``(N,)`` that keep each group (e.g. video index) on one side.

    At least one group goes to each side. Deterministic for a seed.
    """
    unique = torch.unique(groups)
    if unique.numel() < 2:
        raise ValueError(f'a train/val split needs at least 2 groups (videos), got {unique.numel()}.')
    generator = torch.Generator().manual_seed(seed)
    order = unique[torch.randperm(unique.numel(), generator=generator)]
    num_val = min(max(1, round(val_fraction * unique.numel())), unique.numel() - 1)
    val = torch.isin(groups, order[:num_val])
    return ~val, val


def run_layer_probes(features: Mapping[int | str, torch.Tensor], targets: torch.Tensor, groups: torch.Tensor,
                     metric_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
                     val_fraction: float = 0.25, seed: int = 0,
                     lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> list[ProbeResult]:
    """Fit and score one probe per layer on the same split (ridge strength by grouped CV on the training groups).

    Args:
        features: ``{layer: (N, D)}`` hidden states of the same N rows at each layer.
        targets: ``(N, K)``.
        groups: ``(N,)`` group id per row (video index) for the split.
        metric_fn: ``(pred (M, K), target (M, K), groups (M,)) -> {name: value}`` task metrics on the val split;
            also evaluated for the constant baseline (train-mean prediction).
    Returns:
        One :class:`ProbeResult` per layer, in the mapping's order.
    """
    train, val = group_split(groups, val_fraction, seed)
    targets = targets.double()
    baseline = targets[train].mean(0, keepdim=True).expand(int(val.sum()), -1)
    baseline_metrics = metric_fn(baseline, targets[val], groups[val]) if metric_fn else {}
    results = []
    for layer, layer_features in features.items():
        if layer_features.shape[0] != targets.shape[0]:
            raise ValueError(f'layer {layer}: {layer_features.shape[0]} feature rows for {targets.shape[0]} targets.')
        probe = fit_ridge(layer_features[train], targets[train], lambdas=lambdas, groups=groups[train])
        train_pred, val_pred = probe.predict(layer_features[train]), probe.predict(layer_features[val])
        results.append(ProbeResult(
            layer=layer, lam=probe.lam, train_mse=float((train_pred - targets[train]).square().mean()),
            val_mse=float((val_pred - targets[val]).square().mean()),
            val_metrics=metric_fn(val_pred, targets[val], groups[val]) if metric_fn else {},
            baseline_metrics=baseline_metrics))
    return results


# ----------------------------------------------------------------------------------------------- task helpers
def pool_depth_to_grid(depth: torch.Tensor, grid_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean valid depth per token cell: ``(..., H, W)`` metres -> ``(..., h, w)`` and a validity mask.

    A cell is valid when at least half of its pixels have depth > 0. Cells are the adaptive-average-pooling bins.
    """
    lead = depth.shape[:-2]
    flat = depth.reshape(-1, 1, *depth.shape[-2:]).float()
    valid = (flat > 0) & torch.isfinite(flat)
    total = F.adaptive_avg_pool2d(torch.where(valid, flat, torch.zeros_like(flat)), grid_hw)
    fraction = F.adaptive_avg_pool2d(valid.float(), grid_hw)
    pooled = total / fraction.clamp(min=1e-6)
    return pooled.reshape(*lead, *grid_hw), (fraction >= 0.5).reshape(*lead, *grid_hw)


def depth_probe_metrics(pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
    """Metrics of a log-depth probe over all rows: ``abs_rel`` of ``exp(pred)`` against ``exp(target)`` and
    ``rmse_log`` (root mean squared error of the log depth, the quantity the probe is fitted to)."""
    abs_rel = depth_abs_rel(pred.exp().reshape(1, -1), target.exp().reshape(1, -1))
    return {'abs_rel': float(abs_rel[0]), 'rmse_log': float((pred - target).square().mean().sqrt())}


def make_pose_probe_metrics(image_hw: tuple[int, int], auc_threshold: int = 30):
    """Metric function for a per-frame pose probe (rows = frames, targets = 9-d pose encodings, groups = videos).

    Rows of one group are the frames of one video, in order; each video is decoded to cameras and compared with
    :func:`relative_pose_errors`; returns ``auc30``, ``rot_err_deg``, ``trans_err_deg`` over all frame pairs.
    """

    def metric_fn(pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
        rot, trans = [], []
        for group in torch.unique(groups):
            rows = groups == group
            pred_extr = pose_encoding_to_extrinsics_intrinsics(pred[rows].float(), image_hw)[0]
            gt_extr = pose_encoding_to_extrinsics_intrinsics(target[rows].float(), image_hw)[0]
            rot_err, trans_err = relative_pose_errors(pred_extr[None], gt_extr[None])
            rot.append(rot_err.flatten())
            trans.append(trans_err.flatten())
        rot_all, trans_all = torch.cat(rot), torch.cat(trans)
        return {f'auc{auc_threshold}': pose_auc(rot_all, trans_all, auc_threshold),
                'rot_err_deg': float(rot_all.mean()), 'trans_err_deg': float(trans_all.mean())}

    return metric_fn


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

    fig = Figure(figsize=(4.2 * len(results), 3.4))
    axes = fig.subplots(1, len(results), squeeze=False)
    for axis, (task, task_results) in zip(axes[0], results.items()):
        name = metrics[task]
        layers = [str(r.layer) for r in task_results]
        values = [r.val_mse if name == 'val_mse' else r.val_metrics[name] for r in task_results]
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
    tmp_path = f'{path}.tmp{os.getpid()}.png'
    fig.savefig(tmp_path, dpi=120)
    os.replace(tmp_path, path)
    return path


# ----------------------------------------------------------------------------------------------- both tasks
#: The metric each task is plotted and ranked by (lower is better for both).
TASK_METRICS = {'depth': 'rmse_log', 'pose': 'rot_err_deg'}


def run_probe_tasks(data, val_fraction: float = 0.25, seed: int = 0,
                    lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> dict[str, list[ProbeResult]]:
    """Per-layer probes of both tasks of a :class:`~geokit.evaluation.features.ProbeData`, split by video.

    Returns:
        ``{'depth': [ProbeResult per layer], 'pose': [...]}``; depth metric ``abs_rel`` (of metric depth per token),
        pose metrics ``auc30``, ``rot_err_deg``, ``trans_err_deg`` (relative poses of the held-out videos).
    """
    return {
        'depth': run_layer_probes(data.depth_features, data.depth_targets, data.depth_groups, depth_probe_metrics,
                                  val_fraction, seed, lambdas),
        'pose': run_layer_probes(data.pose_features, data.pose_targets, data.pose_groups,
                                 make_pose_probe_metrics(data.image_hw), val_fraction, seed, lambdas),
    }


def probe_results_to_dict(results: Mapping[str, Sequence[ProbeResult]]) -> dict:
    """JSON-ready ``{task: [{layer, lam, train_mse, val_mse, val_metrics, baseline_metrics}]}``."""
    return {task: [dict(layer=r.layer, lam=r.lam, train_mse=r.train_mse, val_mse=r.val_mse,
                        val_metrics=r.val_metrics, baseline_metrics=r.baseline_metrics) for r in task_results]
            for task, task_results in results.items()}


def format_probe_markdown(results: Mapping[str, Sequence[ProbeResult]]) -> str:
    """One markdown table per task: a row per layer (validation metrics, chosen ridge strength), then the
    constant-prediction baseline."""
    lines = []
    for task, task_results in results.items():
        names = list(task_results[0].val_metrics) if task_results else []
        lines += [f'**{task}** probe', '', '| layer | ' + ' | '.join(names) + ' | val MSE | ridge lambda |',
                  '|---|' + '---|' * (len(names) + 2)]
        for r in task_results:
            lines.append(f'| {r.layer} | ' + ' | '.join(f'{r.val_metrics[n]:.4f}' for n in names) +
                         f' | {r.val_mse:.4f} | {r.lam:g} |')
        if task_results and task_results[0].baseline_metrics:
            base = task_results[0].baseline_metrics
            lines.append('| constant | ' + ' | '.join(f'{base[n]:.4f}' for n in names) + ' | | |')
        lines.append('')
    return '\n'.join(lines)
