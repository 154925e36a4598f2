"""Closed-form ridge probes: fit a linear map from frozen features to targets, choose its strength, score per layer.

A probe is ridge regression ``y = ((x - mean) / std) @ weight + bias`` on standardised features (each feature
dimension scaled to unit variance on the training rows, so one penalty suits every layer's scale). Everything is
computed in float64 from one eigendecomposition of the ``D x D`` Gram matrix of the standardised, centred training
features (:class:`Spectrum`), which gives the fit for every candidate strength at once.

The strength ``lam`` (penalty ``lam * |weight|^2``) is chosen among :data:`DEFAULT_LAMBDAS` on the training rows:

* by the exact row-wise leave-one-out error (:func:`ridge_loo_mse`), or
* when rows come in groups (the tokens or frames of one video, strongly correlated), by cross-validation that holds
  out whole groups (:func:`ridge_group_cv_mse`, folds from :func:`group_folds`).

:func:`run_layer_probes` then scores one probe per layer on a held-out split of whole groups (:func:`group_split`)
and returns a :class:`ProbeResult` per layer: mean squared errors in the target's units squared, plus task metrics.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

#: Candidate ridge strengths, 1e-3 ... 1e5 (the features are standardised, so these suit every layer).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(10.0 ** k for k in range(-3, 6))
#: Default number of group folds of the cross-validation (fewer when there are fewer groups).
DEFAULT_FOLDS = 5
#: Default fraction of the groups (videos) held out for validation.
DEFAULT_VAL_FRACTION = 0.25
#: Smallest number of training rows a probe is fitted on.
MIN_TRAIN_ROWS = 3
#: Floor of a feature's standard deviation: a constant feature is centred to 0 instead of divided by 0.
MIN_FEATURE_STD = 1e-8
#: Ceiling of a row's leverage, so that ``1 / (1 - leverage)`` stays finite for a row the fit interpolates.
MAX_LEVERAGE = 1 - 1e-9

#: ``(pred (M, K), target (M, K), groups (M,)) -> {metric name: value}``: task metrics of a probe's predictions.
MetricFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, float]]


@dataclass
class RidgeProbe:
    """A fitted linear probe ``y = ((x - mean) / std) @ weight + bias`` (float64).

    Attributes:
        weight: ``(D, K)`` on standardised features (``weight / std[:, None]`` is the map on raw features).
        bias: ``(K,)`` the training targets' mean (the standardised features are centred).
        mean, std: ``(D,)`` feature standardisation of the training rows.
        lam: the ridge strength it was fitted with.
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
    """One layer's probe, scored on the held-out groups.

    Attributes:
        layer: the tapped layer (the key of the features mapping).
        lam: the chosen ridge strength.
        train_mse, val_mse: mean squared error over rows and target dims on the training / validation rows
            (target units squared; log-depth or pose-encoding units for the geometry tasks).
        val_metrics: the task's ``metric_fn`` on the validation rows (empty without one).
        baseline_metrics: ``metric_fn`` of the constant prediction (the training targets' mean) on the same rows;
            the same for every layer of one run.
    """

    layer: int | str
    lam: float
    train_mse: float
    val_mse: float
    val_metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Spectrum:
    """The standardised, centred ridge problem of one training set, eigendecomposed once (float64).

    With ``xs = (x - feature_mean) / feature_std`` ``(N, D)`` and ``xs.T @ xs = eigvecs @ diag(eigvals) @ eigvecs.T``,
    the ridge weights of strength ``lam`` are ``eigvecs @ (cross / (eigvals + lam)[:, None])``.

    Attributes:
        feature_mean, feature_std: ``(D,)``. target_mean: ``(K,)``. centred_targets: ``(N, K)``.
        eigvals: ``(D,)`` (clamped at 0). eigvecs: ``(D, D)``. projected: ``xs @ eigvecs`` ``(N, D)``.
        cross: ``projected.T @ centred_targets`` ``(D, K)``.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    target_mean: torch.Tensor
    centred_targets: torch.Tensor
    eigvals: torch.Tensor
    eigvecs: torch.Tensor
    projected: torch.Tensor
    cross: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor, targets: torch.Tensor) -> Spectrum:
        x, y = features.double(), targets.double()
        mean, std = x.mean(0), x.std(0).clamp(min=MIN_FEATURE_STD)
        standardised = (x - mean) / std
        target_mean = y.mean(0)
        centred = y - target_mean
        eigvals, eigvecs = torch.linalg.eigh(standardised.T @ standardised)
        projected = standardised @ eigvecs
        return cls(mean, std, target_mean, centred, eigvals.clamp(min=0), eigvecs, projected, projected.T @ centred)

    def rotated_weights(self, lam: float) -> torch.Tensor:
        """``(D, K)`` ridge weights of strength ``lam`` in the eigenbasis (``eigvecs @`` them: the weights)."""
        return self.cross / (self.eigvals + lam)[:, None]

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Other rows ``(M, D)`` standardised with this training set's statistics, in the eigenbasis ``(M, D)``."""
        return ((features.double() - self.feature_mean) / self.feature_std) @ self.eigvecs


def _check_xy(features: torch.Tensor, targets: torch.Tensor) -> None:
    if features.dim() != 2 or targets.dim() != 2 or features.shape[0] != targets.shape[0]:
        raise ValueError(f'probes expect features (N, D) and targets (N, K) with the same N, got '
                         f'{tuple(features.shape)} and {tuple(targets.shape)}.')
    if features.shape[0] < MIN_TRAIN_ROWS:
        raise ValueError(f'a probe needs at least {MIN_TRAIN_ROWS} training rows, got {features.shape[0]}.')


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
    spectrum = Spectrum.of(features, targets)
    intercept_leverage = 1.0 / features.shape[0]
    errors = []
    for lam in lambdas:
        fitted = spectrum.projected @ spectrum.rotated_weights(lam)
        leverage = spectrum.projected.square() @ (1.0 / (spectrum.eigvals + lam)) + intercept_leverage
        loo_residuals = (spectrum.centred_targets - fitted) / (1 - leverage.clamp(max=MAX_LEVERAGE))[:, None]
        errors.append(loo_residuals.square().mean())
    return torch.stack(errors)


def group_folds(groups: torch.Tensor, folds: int = DEFAULT_FOLDS) -> torch.Tensor:
    """The cross-validation fold ``(N,)`` of each row: groups are dealt round-robin, in sorted order of their ids,
    into ``min(folds, #groups)`` folds, so all rows of one group share a fold.

    Raises:
        ValueError: fewer than 2 groups.
    """
    unique = torch.unique(groups)
    if unique.numel() < 2:
        raise ValueError(f'grouped cross-validation needs at least 2 groups, got {unique.numel()}.')
    fold_of_group = torch.arange(unique.numel()) % min(folds, unique.numel())
    return fold_of_group[torch.searchsorted(unique, groups)]


def ridge_group_cv_mse(features: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
                       lambdas: Sequence[float] = DEFAULT_LAMBDAS, folds: int = DEFAULT_FOLDS) -> torch.Tensor:
    """Cross-validated mean squared error of ridge regression for each strength, holding out whole groups.

    Rows of one group (e.g. the tokens of one video) are strongly correlated, so row-wise leave-one-out rewards
    memorising a group and picks too weak a penalty; holding out groups measures what the probe is scored on.
    Folds come from :func:`group_folds`.

    Args:
        features: ``(N, D)``. targets: ``(N, K)``. groups: ``(N,)`` group id per row (at least 2 groups).
    Returns:
        ``(L,)`` MSE over all rows and target dims, float64.
    """
    _check_xy(features, targets)
    row_fold = group_folds(groups, folds)
    squared_errors = torch.zeros(len(lambdas), dtype=torch.float64)
    for fold in torch.unique(row_fold).tolist():
        held = row_fold == fold
        spectrum = Spectrum.of(features[~held], targets[~held])
        projected = spectrum.project(features[held])
        for index, lam in enumerate(lambdas):
            pred = projected @ spectrum.rotated_weights(lam) + spectrum.target_mean
            squared_errors[index] += (pred - targets[held].double()).square().sum()
    return squared_errors / targets.numel()


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
    spectrum = Spectrum.of(features, targets)
    return RidgeProbe(weight=spectrum.eigvecs @ spectrum.rotated_weights(lam), bias=spectrum.target_mean,
                      mean=spectrum.feature_mean, std=spectrum.feature_std, lam=lam)


def group_split(groups: torch.Tensor, val_fraction: float = DEFAULT_VAL_FRACTION,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean train / val masks ``(N,)`` that keep each group (e.g. video index) on one side.

    ``round(val_fraction * #groups)`` groups, drawn by a seeded permutation, go to validation, clamped so that at
    least one group goes to each side. Deterministic for a seed.
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
                     metric_fn: MetricFn | None = None, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
                     lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> list[ProbeResult]:
    """Fit and score one probe per layer on the same split (ridge strength by grouped CV on the training groups).

    Args:
        features: ``{layer: (N, D)}`` hidden states of the same N rows at each layer.
        targets: ``(N, K)``.
        groups: ``(N,)`` group id per row (video index) for the split.
        metric_fn: task metrics on the val split (:data:`MetricFn`); also evaluated for the constant baseline
            (train-mean prediction).
    Returns:
        One :class:`ProbeResult` per layer, in the mapping's order.
    """
    train, val = group_split(groups, val_fraction, seed)
    targets = targets.double()
    train_targets, val_targets = targets[train], targets[val]

    def task_metrics(pred: torch.Tensor) -> dict[str, float]:
        return metric_fn(pred, val_targets, groups[val]) if metric_fn else {}

    baseline_metrics = task_metrics(train_targets.mean(0, keepdim=True).expand(len(val_targets), -1))
    results = []
    for layer, layer_features in features.items():
        if layer_features.shape[0] != targets.shape[0]:
            raise ValueError(f'layer {layer}: {layer_features.shape[0]} feature rows for {targets.shape[0]} targets.')
        probe = fit_ridge(layer_features[train], train_targets, lambdas=lambdas, groups=groups[train])
        val_pred = probe.predict(layer_features[val])
        results.append(ProbeResult(
            layer=layer, lam=probe.lam,
            train_mse=float((probe.predict(layer_features[train]) - train_targets).square().mean()),
            val_mse=float((val_pred - val_targets).square().mean()), val_metrics=task_metrics(val_pred),
            baseline_metrics=baseline_metrics))
    return results
