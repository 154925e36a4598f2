"""Registered loss modules: build from config, known values, batch shapes, NaN safety, gradcheck."""
import logging

import pytest
import torch
from torch.autograd import gradcheck

from geokit.models.losses import camera_pose_loss, depth_supervision_mask, feature_alignment_loss, metric_scale_loss
from geokit.registry import LOSSES


def build(type_name, **kwargs):
    return LOSSES.build(dict(type=type_name, **kwargs))


def rand(*shape, seed=0, low=0.0):
    return low + torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------- camera pose
def test_camera_pose_known_values_and_parts():
    target = torch.zeros(1, 2, 9)
    pred = target.clone()
    pred[..., :3] = 0.3
    pred[..., 3:7] = 0.2
    pred[..., 7:] = 1.0
    out = build('CameraPoseLoss', loss_weight=2.0)(pred, target)
    torch.testing.assert_close(out['pose_t'], torch.tensor(0.3))
    torch.testing.assert_close(out['pose_q'], torch.tensor(0.2))
    torch.testing.assert_close(out['pose_fov'], torch.tensor(1.0))
    torch.testing.assert_close(out['loss'], torch.tensor(2.0 * (0.3 + 0.2 + 0.5)))
    assert not any('loss' in key for key in out if key != 'loss')
    assert not out['pose_t'].requires_grad


def test_camera_pose_sign_invariant():
    target = torch.tensor([0, 0, 0, 0, 0, 0.6, 0.8, 1, 1.0])
    pred = target.clone()
    pred[3:7] = -pred[3:7]
    assert camera_pose_loss(pred, target)['pose_q'] > 0.5
    assert camera_pose_loss(pred, target, sign_invariant=True)['pose_q'] == 0


def test_camera_pose_nan_and_mask():
    pred, target = rand(2, 3, 9, seed=1), rand(2, 3, 9, seed=2)
    target[0, 1, 4] = float('nan')
    pred.requires_grad_()
    out = build('CameraPoseLoss')(pred, target)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 1].abs().max() == 0
    empty = build('CameraPoseLoss')(pred, target, torch.zeros(2, 3, dtype=torch.bool))
    assert empty['loss'].item() == 0
    with pytest.raises(ValueError, match=r'\(2, 3, 9\).*\(2, 3, 8\)'):
        camera_pose_loss(pred, target[..., :8])


# ----------------------------------------------------------------------------- depth
def test_confidence_depth_filters():
    pred, target = rand(1, 1, 4, 5, seed=3, low=1), rand(1, 1, 4, 5, seed=4, low=1)
    pred[0, 0, 0, 0] = 100.0
    teacher_conf = torch.arange(20, dtype=torch.float64).reshape(1, 1, 4, 5)
    keep = depth_supervision_mask(pred, target, None, teacher_conf, teacher_conf_quantile=0.5)
    assert keep.sum() == 11 and not keep[0, 0, 0, 0]
    keep = depth_supervision_mask(pred, target, None, teacher_conf, teacher_conf_threshold=15)
    assert keep.sum() == 5
    keep = depth_supervision_mask(pred, target, None, trim_quantile=0.9)
    assert not keep[0, 0, 0, 0] and keep.sum() == 18


def test_confidence_depth_module_matches_core_and_is_safe(caplog):
    from geokit.ops.reference import confidence_depth_loss
    pred, conf, target = rand(2, 3, 8, 8, seed=5, low=0.5), rand(2, 3, 8, 8, seed=6, low=1), rand(2, 3, 8, 8, seed=7)
    loss = build('ConfidenceDepthLoss', alpha=0.1, loss_weight=0.5)
    out = loss(pred, conf, target)
    torch.testing.assert_close(out['loss'], 0.5 * confidence_depth_loss(pred, conf, target, target > 0, alpha=0.1))
    bad = target.clone()
    bad[0] = float('nan')
    bad[1, :, :4] = 0
    pred.requires_grad_()
    out = loss(pred, conf, bad)
    out['loss'].backward()
    assert torch.isfinite(out['loss']) and torch.isfinite(pred.grad).all()
    with caplog.at_level(logging.WARNING):
        out = loss(pred, conf, torch.zeros_like(target))
    assert out['loss'].item() == 0
    with pytest.raises(ValueError, match=r'\(2, 3, 8, 8\)'):
        loss(pred, conf, target[0])
    with pytest.raises(ValueError, match=r'\(3, 8, 8\)'):
        loss(pred[0], conf[0], target[0])


def test_silog_module_scale_invariance():
    pred, target = rand(2, 3, 4, 4, seed=8, low=0.5), rand(2, 3, 4, 4, seed=9, low=0.5)
    loss = build('ScaleInvariantDepthLoss', lambd=1.0)
    torch.testing.assert_close(loss(pred, target)['loss'], loss(pred * 5, target)['loss'])
    empty = loss(pred, -target)
    assert empty['loss'].item() == 0
    with pytest.raises(ValueError, match='lambd'):
        build('ScaleInvariantDepthLoss', lambd=2.0)


# ----------------------------------------------------------------------------- metric scale
def test_metric_scale_known_values():
    pred, target = torch.tensor([1.0, 3.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    out = build('MetricScaleLoss')(pred, target)['loss']
    torch.testing.assert_close(out, (torch.log1p(torch.tensor(3.0)) - torch.log1p(torch.tensor(1.0))) / 2)
    plain = metric_scale_loss(pred, target, log1p=False)
    torch.testing.assert_close(plain, torch.log(torch.tensor(3.0)) / 2)
    nan_pred = torch.tensor([float('nan'), -5.0], requires_grad=True)
    out = build('MetricScaleLoss', log1p=False)(nan_pred, torch.ones(2))['loss']
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(nan_pred.grad).all()
    with pytest.raises(ValueError, match=r'\(3,\).*\(2,\)'):
        metric_scale_loss(pred, target[:2])


# ----------------------------------------------------------------------------- feature alignment
def feature_maps(seed=0):
    gen = torch.Generator().manual_seed(seed)
    student = {4: torch.randn(2, 2, 3, 3, 8, generator=gen, dtype=torch.float64),
               11: torch.randn(2, 2, 3, 3, 8, generator=gen, dtype=torch.float64)}
    teacher = {4: torch.randn(2, 2, 6, 6, 8, generator=gen, dtype=torch.float64),
               11: torch.randn(2, 2, 6, 6, 8, generator=gen, dtype=torch.float64)}
    return student, teacher


@pytest.mark.parametrize('variant', ['cosine', 'smooth_l1', 'similarity'])
def test_alignment_identical_features_give_zero(variant):
    _, teacher = feature_maps()
    loss = build('FeatureAlignmentLoss', variant=variant)
    out = loss({k: v.clone() for k, v in teacher.items()}, teacher)
    assert out['loss'].abs().item() < 1e-10 and set(out) == {'loss', 'align_4', 'align_11'}
    scaled = build('FeatureAlignmentLoss', variant=variant)({k: 3 * v for k, v in teacher.items()}, teacher)
    assert (scaled['loss'].abs().item() < 1e-10) == (variant != 'smooth_l1')


def test_alignment_pooling_and_resizing():
    student, teacher = feature_maps()
    pooled = build('FeatureAlignmentLoss', pool_teacher=True)(student, teacher)  # teacher 6x6 -> 3x3
    resized = build('FeatureAlignmentLoss')(student, teacher)  # student 3x3 -> 6x6
    assert torch.isfinite(pooled['loss']) and torch.isfinite(resized['loss'])
    mean_teacher = {k: v.unflatten(2, (3, 2)).unflatten(4, (3, 2)).mean((3, 5)) for k, v in teacher.items()}
    direct, _, _ = feature_alignment_loss(student, mean_teacher)
    torch.testing.assert_close(pooled['loss'], direct)
    as_lists = build('FeatureAlignmentLoss', pool_teacher=True)(list(student.values()), list(teacher.values()))
    torch.testing.assert_close(as_lists['loss'], pooled['loss'])


@pytest.mark.parametrize('variant', ['cosine', 'smooth_l1', 'similarity'])
def test_alignment_masks_and_nan(variant):
    student, teacher = feature_maps(1)
    student = {k: v.clone() for k, v in student.items()}
    student[4][0, 1, 0, 0] = float('nan')
    leaf = student[4].requires_grad_()
    loss = build('FeatureAlignmentLoss', variant=variant, pool_teacher=True)
    out = loss(student, teacher, mask=torch.tensor([[True, True], [True, False]]))
    out['loss'].backward()
    assert torch.isfinite(out['loss']) and torch.isfinite(leaf.grad).all()
    assert leaf.grad[1, 1].abs().max() == 0
    empty = loss(student, teacher, mask=torch.zeros(2, 2, dtype=torch.bool))
    assert empty['loss'].item() == 0


def test_alignment_errors():
    student, teacher = feature_maps()
    with pytest.raises(ValueError, match=r'\[4\].*\[4, 11\]'):
        build('FeatureAlignmentLoss')({4: student[4]}, teacher)
    with pytest.raises(ValueError, match=r'\(2, 2, 3, 3, 4\)'):
        build('FeatureAlignmentLoss')({4: student[4][..., :4], 11: student[11]}, teacher)
    with pytest.raises(ValueError, match='variant'):
        build('FeatureAlignmentLoss', variant='l2')


# ----------------------------------------------------------------------------- gradcheck of every module
def test_gradcheck_every_loss():
    pose_pred, pose_target = rand(2, 2, 9, seed=10).requires_grad_(), rand(2, 2, 9, seed=11)
    assert gradcheck(lambda p: build('CameraPoseLoss', sign_invariant=True)(p, pose_target)['loss'], (pose_pred,))
    pred, conf = rand(1, 2, 4, 4, seed=12, low=0.5).requires_grad_(), rand(1, 2, 4, 4, seed=13, low=1)
    target, teacher_conf = rand(1, 2, 4, 4, seed=14, low=0.5), rand(1, 2, 4, 4, seed=15)
    depth = build('ConfidenceDepthLoss', teacher_conf_quantile=0.2, trim_quantile=0.9, num_scales=2)
    conf.requires_grad_()
    assert gradcheck(lambda p, c: depth(p, c, target, teacher_conf=teacher_conf)['loss'], (pred, conf))
    assert gradcheck(lambda p: build('ScaleInvariantDepthLoss')(p, target)['loss'], (pred,))
    scale_pred, scale_target = rand(3, seed=16, low=0.5).requires_grad_(), rand(3, seed=17, low=0.5)
    assert gradcheck(lambda p: build('MetricScaleLoss')(p, scale_target)['loss'], (scale_pred,))
    gen = torch.Generator().manual_seed(2)
    leaves = [torch.randn(1, 1, 2, 2, 3, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(2)]
    teacher = {4: torch.randn(1, 1, 4, 4, 3, generator=gen, dtype=torch.float64),
               11: torch.randn(1, 1, 3, 3, 3, generator=gen, dtype=torch.float64)}
    for variant in ('cosine', 'smooth_l1', 'similarity'):
        align = build('FeatureAlignmentLoss', variant=variant, pool_teacher=True, layer_weights=[1.0, 2.0])
        assert gradcheck(lambda a, b, fn=align: fn({4: a, 11: b}, teacher)['loss'], tuple(leaves))
        resize = build('FeatureAlignmentLoss', variant=variant)
        assert gradcheck(lambda a, fn=resize: fn([a], [teacher[11]])['loss'], (leaves[0],))
