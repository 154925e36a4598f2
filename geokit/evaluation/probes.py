"""Linear probes on frozen hidden states: how linearly decodable is geometry at each decoder layer?

Two tasks, both fitted by closed-form ridge regression per layer (:mod:`geokit.evaluation.ridge_probe`: strength
chosen by cross-validation over whole videos, scored on held-out videos) on the features and targets that
:func:`geokit.evaluation.features.extract_probe_data` builds:

* **depth**, one row per video token: target = log of the metric depth (metres) pooled onto the token's cell
  (:func:`pool_depth_to_grid`); metrics (:func:`depth_probe_metrics`) ``abs_rel`` of ``exp(prediction)`` (unitless,
  via :func:`geokit.geometry.metrics.depth_abs_rel`) and ``rmse_log`` (natural-log units);
* **pose**, one row per temporal group of frames: target = the 9-d pose encoding relative to the video's first
  frame; metrics (:func:`make_pose_probe_metrics`) ``auc30`` (0..1) and the mean relative rotation / translation
  direction errors ``rot_err_deg`` / ``trans_err_deg`` (degrees) over all frame pairs of each held-out video.

:func:`run_probe_tasks` runs both and returns ``{'depth': [ProbeResult per layer], 'pose': [...]}``; the reports
(JSON dict, markdown, plot) are in :mod:`geokit.evaluation.probe_report`. The fitting and reporting names are
importable from here as well.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from geokit.evaluation.probe_report import format_probe_markdown, plot_probe_errors, probe_results_to_dict
from geokit.evaluation.ridge_probe import (
    DEFAULT_LAMBDAS,
    DEFAULT_VAL_FRACTION,
    MetricFn,
    ProbeResult,
    RidgeProbe,
    fit_ridge,
    group_folds,
    group_split,
    ridge_group_cv_mse,
    ridge_loo_mse,
    run_layer_probes,
)
from geokit.geometry.metrics import depth_abs_rel, pose_auc, relative_pose_errors
from geokit.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics

__all__ = ['DEFAULT_LAMBDAS', 'MIN_VALID_PIXEL_FRACTION', 'POSE_AUC_THRESHOLD_DEG', 'ProbeResult', 'RidgeProbe',
           'TASK_METRICS', 'depth_probe_metrics', 'fit_ridge', 'format_probe_markdown', 'group_folds', 'group_split',
           'make_pose_probe_metrics', 'plot_probe_errors', 'pool_depth_to_grid', 'probe_results_to_dict',
           'ridge_group_cv_mse', 'ridge_loo_mse', 'run_layer_probes', 'run_probe_tasks']

#: A token cell's depth is valid when at least this fraction of its pixels has a finite depth > 0.
MIN_VALID_PIXEL_FRACTION = 0.5
#: Floor of a cell's valid fraction in the division (an all-invalid cell gets depth 0 and is masked out).
_MIN_POOLED_FRACTION = 1e-6
#: The pose AUC's error threshold (degrees): AUC@30, as VGGT reports it.
POSE_AUC_THRESHOLD_DEG = 30
#: The metric each task is plotted and ranked by (lower is better for both).
TASK_METRICS = {'depth': 'rmse_log', 'pose': 'rot_err_deg'}


def pool_depth_to_grid(depth: torch.Tensor, grid_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean valid depth per token cell: ``(..., H, W)`` metres -> ``(..., h, w)`` and a validity mask.

    A cell is valid when at least :data:`MIN_VALID_PIXEL_FRACTION` of its pixels have a finite depth > 0; its depth
    is the mean over those pixels. Cells are the adaptive-average-pooling bins.
    """
    lead = depth.shape[:-2]
    flat = depth.reshape(-1, 1, *depth.shape[-2:]).float()
    valid = (flat > 0) & torch.isfinite(flat)
    total = F.adaptive_avg_pool2d(torch.where(valid, flat, torch.zeros_like(flat)), grid_hw)
    fraction = F.adaptive_avg_pool2d(valid.float(), grid_hw)
    pooled = total / fraction.clamp(min=_MIN_POOLED_FRACTION)
    return pooled.reshape(*lead, *grid_hw), (fraction >= MIN_VALID_PIXEL_FRACTION).reshape(*lead, *grid_hw)


def depth_probe_metrics(pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
    """Metrics of a log-depth probe over all rows: ``abs_rel`` of ``exp(pred)`` against ``exp(target)`` and
    ``rmse_log`` (root mean squared error of the log depth, the quantity the probe is fitted to). ``groups`` is
    unused (the :data:`~geokit.evaluation.ridge_probe.MetricFn` signature)."""
    abs_rel = depth_abs_rel(pred.exp().reshape(1, -1), target.exp().reshape(1, -1))
    return {'abs_rel': float(abs_rel[0]), 'rmse_log': float((pred - target).square().mean().sqrt())}


def make_pose_probe_metrics(image_hw: tuple[int, int], auc_threshold: int = POSE_AUC_THRESHOLD_DEG) -> MetricFn:
    """Metric function for a per-frame pose probe (rows = frames, targets = 9-d pose encodings, groups = videos).

    Rows of one group are the frames of one video, in order; each video is decoded to cameras (``image_hw``: the
    frame size the encoding's field of view refers to) and compared with :func:`relative_pose_errors`; returns
    ``auc<threshold>``, ``rot_err_deg``, ``trans_err_deg`` over all frame pairs.
    """

    def extrinsics(encodings: torch.Tensor) -> torch.Tensor:
        return pose_encoding_to_extrinsics_intrinsics(encodings.float(), image_hw)[0]

    def metric_fn(pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
        rot, trans = [], []
        for group in torch.unique(groups):
            rows = groups == group
            rot_err, trans_err = relative_pose_errors(extrinsics(pred[rows])[None], extrinsics(target[rows])[None])
            rot.append(rot_err.flatten())
            trans.append(trans_err.flatten())
        rot_all, trans_all = torch.cat(rot), torch.cat(trans)
        return {f'auc{auc_threshold}': pose_auc(rot_all, trans_all, auc_threshold),
                'rot_err_deg': float(rot_all.mean()), 'trans_err_deg': float(trans_all.mean())}

    return metric_fn


def run_probe_tasks(data, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
                    lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> dict[str, list[ProbeResult]]:
    """Per-layer probes of both tasks of a :class:`~geokit.evaluation.features.ProbeData`, split by video.

    Returns:
        ``{'depth': [ProbeResult per layer], 'pose': [...]}``; depth metrics ``abs_rel``, ``rmse_log`` (of metric
        depth per token), pose metrics ``auc30``, ``rot_err_deg``, ``trans_err_deg`` (relative poses of the held-out
        videos).
    """
    return {
        'depth': run_layer_probes(data.depth_features, data.depth_targets, data.depth_groups, depth_probe_metrics,
                                  val_fraction, seed, lambdas),
        'pose': run_layer_probes(data.pose_features, data.pose_targets, data.pose_groups,
                                 make_pose_probe_metrics(data.image_hw), val_fraction, seed, lambdas),
    }
