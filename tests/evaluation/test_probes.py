"""Closed-form ridge probes: recovery of a linear map, exact leave-one-out selection, group splits, task metrics."""
import pytest
import torch

from geokit.evaluation.probes import (
    fit_ridge,
    group_split,
    make_pose_probe_metrics,
    plot_probe_errors,
    pool_depth_to_grid,
    ridge_loo_mse,
    run_layer_probes,
)
from geokit.geometry.pose_encoding import extrinsics_intrinsics_to_pose_encoding


def linear_data(n=120, d=6, k=2, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 3, d, dtype=torch.float64)
    weight = torch.randn(d, k, generator=g, dtype=torch.float64)
    y = x @ weight + torch.tensor([1.5, -2.0][:k], dtype=torch.float64) + noise * torch.randn(n, k, generator=g,
                                                                                            dtype=torch.float64)
    return x, y


def test_ridge_recovers_a_linear_map():
    x, y = linear_data()
    probe = fit_ridge(x[:80], y[:80], lambdas=(1e-8, 1.0, 100.0))
    assert probe.lam == 1e-8  # noiseless: the weakest penalty wins by leave-one-out
    assert torch.allclose(probe.predict(x[80:]), y[80:], atol=1e-5)
    assert probe.weight.shape == (6, 2) and probe.bias.shape == (2,)


def test_loo_mse_matches_brute_force():
    x, y = linear_data(n=30, noise=0.5)
    lambdas = (0.1, 10.0)
    loo = ridge_loo_mse(x, y, lambdas)
    mean, std = x.mean(0), x.std(0)
    xs = (x - mean) / std
    for lam, value in zip(lambdas, loo):
        errors = []
        for i in range(x.shape[0]):
            keep = torch.arange(x.shape[0]) != i
            xk, yk = xs[keep], y[keep]
            xc, yc = xk - xk.mean(0), yk - yk.mean(0)
            weight = torch.linalg.solve(xc.T @ xc + lam * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc)
            pred = (xs[i] - xk.mean(0)) @ weight + yk.mean(0)
            errors.append((pred - y[i]).square())
        assert float(value) == pytest.approx(float(torch.stack(errors).mean()), rel=1e-8)


def test_loo_prefers_strong_penalty_without_signal():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 20, generator=g)
    y = torch.randn(40, 1, generator=g)
    lambdas = (1e-3, 1.0, 1e5)
    assert fit_ridge(x, y, lambdas=lambdas).lam == 1e5
    with pytest.raises(ValueError, match='same N'):
        fit_ridge(x, y[:5])


def test_group_split_has_no_leakage():
    groups = torch.arange(10).repeat_interleave(7)
    train, val = group_split(groups, val_fraction=0.3, seed=3)
    assert not (train & val).any() and (train | val).all()
    assert set(groups[train].tolist()).isdisjoint(groups[val].tolist())
    assert len(set(groups[val].tolist())) == 3
    again = group_split(groups, val_fraction=0.3, seed=3)
    assert torch.equal(again[1], val)
    assert group_split(torch.tensor([0, 0, 1, 1]), val_fraction=0.99)[0].any()  # each side keeps a group
    with pytest.raises(ValueError, match='2 groups'):
        group_split(torch.zeros(5, dtype=torch.long))


def test_informative_features_beat_random_ones():
    x, y = linear_data(n=200, d=8, noise=0.3, seed=2)
    random = torch.randn(200, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    groups = torch.arange(20).repeat_interleave(10)

    def metric_fn(pred, target, groups):
        return {'mae': float((pred - target).abs().mean())}

    results = run_layer_probes({1: x, 2: random}, y, groups, metric_fn=metric_fn)
    informative, noise = results
    assert informative.layer == 1 and noise.layer == 2
    assert informative.val_mse < 0.2 < noise.val_mse
    assert informative.val_metrics['mae'] < 0.5 * noise.val_metrics['mae']
    assert noise.val_metrics['mae'] > 0.8 * noise.baseline_metrics['mae']  # random features ~ the constant
    assert informative.baseline_metrics == noise.baseline_metrics


def test_pool_depth_to_grid():
    depth = torch.arange(1, 17, dtype=torch.float32).reshape(1, 4, 4)
    depth[0, 0, :] = 0  # invalid pixels do not count towards a cell's mean
    pooled, valid = pool_depth_to_grid(depth, (2, 2))
    assert pooled.shape == valid.shape == (1, 2, 2)
    assert pooled[0, 0, 0] == pytest.approx(5.5) and pooled[0, 1, 1] == pytest.approx(13.5)
    assert valid.all()
    depth[0, :2, :2] = float('nan')
    assert pool_depth_to_grid(depth, (2, 2))[1].tolist() == [[[False, True], [True, True]]]


def test_pose_probe_metrics():
    angles = torch.linspace(0, 0.4, 4)
    rotation = torch.stack([torch.tensor([[a.cos(), 0, a.sin()], [0, 1, 0], [-a.sin(), 0, a.cos()]])
                            for a in angles])
    extrinsics = torch.cat([rotation, torch.stack([angles, angles * 0, angles * 2], 1)[..., None]], -1)
    intrinsics = torch.tensor([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]]).expand(4, 3, 3)
    pose = extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, (32, 32))
    targets = torch.cat([pose, pose]).double()
    groups = torch.tensor([0] * 4 + [1] * 4)
    metric_fn = make_pose_probe_metrics((32, 32))
    perfect = metric_fn(targets, targets, groups)
    assert perfect['auc30'] == pytest.approx(1) and perfect['rot_err_deg'] < 1e-2
    worse = metric_fn(targets.mean(0, keepdim=True).expand(8, 9), targets, groups)
    assert worse['auc30'] < 0.5


def test_plot_probe_errors(tmp_path):
    x, y = linear_data(n=60, noise=0.3)
    results = run_layer_probes({1: x, 4: x + torch.randn_like(x)}, y, torch.arange(6).repeat_interleave(10))
    path = plot_probe_errors({'depth': results, 'pose': results}, {'depth': 'val_mse', 'pose': 'val_mse'},
                             str(tmp_path / 'probe.png'), title='probes')
    assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_probe_targets_and_layers():
    from geokit.evaluation.features import _depth_targets, _pose_targets, resolve_layers

    assert resolve_layers(None, 4) == (1, 2, 3, 4) and resolve_layers([1, -1], 4) == (1, 4)
    with pytest.raises(ValueError, match='outside 1..4'):
        resolve_layers([5], 4)
    # 3 frames in 2 temporal groups: the last frame is repeated (as the Qwen-VL processor pads a video)
    depth = torch.stack([torch.full((4, 6), v) for v in (1.0, 2.0, 4.0)])
    depth[2, :2, :3] = 0
    log_depth, valid = _depth_targets(depth, (2, 2, 2))
    assert log_depth.shape == valid.shape == (2, 2, 2)
    assert torch.allclose(log_depth[0], torch.tensor(2.0).sqrt().log().expand(2, 2))  # mean of log 1 and log 2
    assert valid.tolist() == [[[True, True], [True, True]], [[False, True], [True, True]]]
    extrinsics = torch.cat([torch.eye(3), torch.tensor([[1.0], [2.0], [3.0]])], 1).expand(3, 3, 4).clone()
    extrinsics[2, 0, 3] = 5.0
    intrinsics = torch.tensor([[3.0, 0, 3], [0, 3.0, 2], [0, 0, 1]]).expand(3, 3, 3)
    pose = _pose_targets(dict(extrinsics=extrinsics, intrinsics=intrinsics), 2, (4, 6))
    assert pose.shape == (2, 9)
    assert torch.allclose(pose[0, :7], torch.tensor([0.0, 0, 0, 0, 0, 0, 1]))  # frame 0 relative to itself
    assert torch.allclose(pose[1, :3], torch.tensor([4.0, 0, 0]))  # group 1 starts at frame 2


def test_ridge_on_an_exact_linear_relation_recovers_weights_and_intercept():
    """Known values: y = x @ W + b exactly; the probe (standardised features) maps back to W and b on raw features."""
    from geokit.evaluation.ridge_probe import fit_ridge as fit

    x, y = linear_data(n=100, d=5, k=2, noise=0.0, seed=4)
    weight_true = torch.linalg.lstsq(torch.cat([x, torch.ones(100, 1, dtype=x.dtype)], 1), y).solution
    probe = fit(x, y, lam=1e-10)
    raw_weight = probe.weight / probe.std[:, None]
    raw_bias = probe.bias - probe.mean @ raw_weight
    assert torch.allclose(raw_weight, weight_true[:5], atol=1e-8)
    assert torch.allclose(raw_bias, torch.tensor([1.5, -2.0], dtype=torch.float64), atol=1e-8)
    residual = (probe.predict(x) - y).square().sum(0)
    r2 = 1 - residual / (y - y.mean(0)).square().sum(0)
    assert torch.all(r2 > 1 - 1e-12)
    # a strong penalty shrinks the standardised weights towards 0 and the prediction towards the mean
    shrunk = fit(x, y, lam=1e9)
    assert shrunk.weight.abs().max() < 1e-5 and torch.allclose(shrunk.predict(x), y.mean(0).expand(100, 2), atol=1e-3)


def test_run_layer_probes_on_an_exact_relation_scores_near_zero_error():
    x, y = linear_data(n=120, d=4, noise=0.0, seed=6)
    groups = torch.arange(12).repeat_interleave(10)
    (result,) = run_layer_probes({'exact': x}, y, groups, lambdas=(1e-8, 1.0))
    assert result.layer == 'exact' and result.lam == 1e-8
    assert result.train_mse < 1e-12 and result.val_mse < 1e-12


def test_group_folds_keep_every_group_in_one_fold():
    from geokit.evaluation.ridge_probe import group_folds

    groups = torch.tensor([7, 3, 3, 9, 7, 1, 1, 1, 9, 4, 5, 5])
    folds = group_folds(groups, folds=3)
    for group in groups.unique():
        assert folds[groups == group].unique().numel() == 1
    # round-robin over the sorted ids 1, 3, 4, 5, 7, 9 -> folds 0, 1, 2, 0, 1, 2
    expected = {1: 0, 3: 1, 4: 2, 5: 0, 7: 1, 9: 2}
    assert folds.tolist() == [expected[g] for g in groups.tolist()]
    for fold in range(3):  # no group on both sides of any fold
        held = folds == fold
        assert set(groups[held].tolist()).isdisjoint(groups[~held].tolist())
    assert group_folds(torch.tensor([0, 0, 1]), folds=5).tolist() == [0, 0, 1]  # at most one fold per group
    with pytest.raises(ValueError, match='2 groups'):
        group_folds(torch.zeros(4, dtype=torch.long))


def test_group_cv_mse_matches_refitting_on_each_fold():
    from geokit.evaluation.ridge_probe import group_folds, ridge_group_cv_mse

    x, y = linear_data(n=60, noise=0.4, seed=8)
    groups = torch.arange(6).repeat_interleave(10)
    lambdas = (0.1, 100.0)
    cv = ridge_group_cv_mse(x, y, groups, lambdas, folds=3)
    folds = group_folds(groups, 3)
    for lam, value in zip(lambdas, cv):
        squared = sum(float((fit_ridge(x[folds != f], y[folds != f], lam=lam).predict(x[folds == f]) -
                             y[folds == f]).square().sum()) for f in range(3))
        assert float(value) == pytest.approx(squared / y.numel(), rel=1e-10)
