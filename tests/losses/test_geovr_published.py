"""GeoVR's published objectives and heads (``configs/_base_/models/geovr_published_*``): hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from geokit.models.heads import CameraHead, DPTDepthHead, FeatureAlignmentHead, HeadContext, ScaleHead
from geokit.models.heads.alignment_head import teacher_alignment_target
from geokit.models.losses import (
    CameraPoseLoss,
    FeatureAlignmentLoss,
    TrimmedL1DepthLoss,
    depth_gradient_loss,
    quantile_filtered_mean,
    trimmed_l1_depth_loss,
)
from geokit.structures import TeacherTargets


# ---------------------------------------------------------------- 1. depth
def test_quantile_filter_drops_the_worst_two_percent():
    # 1100 values: 1080 x 0.5 and 20 x 10. k = ceil(0.98 * 1099) + 1 = 1079 -> threshold 0.5 -> mean 0.5
    values = torch.cat([torch.full((1080,), 0.5), torch.full((20,), 10.0)])
    assert quantile_filtered_mean(values[torch.randperm(1100)]).item() == pytest.approx(0.5)
    # 1078 x 0.5: the 1079th smallest is 10 -> everything kept: (1078 * 0.5 + 22 * 10) / 1100
    values = torch.cat([torch.full((1078,), 0.5), torch.full((22,), 10.0)])
    assert quantile_filtered_mean(values).item() == pytest.approx((1078 * 0.5 + 220) / 1100)
    # at most 1000 values: the plain mean (no filter, no clamp)
    assert quantile_filtered_mean(torch.tensor([1.0, 2.0, 300.0])).item() == pytest.approx(101.0)
    # every value above hard_max: nothing survives the threshold (100) -> mean of the values clamped at 100
    assert quantile_filtered_mean(torch.full((1100,), 200.0)).item() == pytest.approx(100.0)


def _columns(pattern: list[float], size: int) -> torch.Tensor:
    return torch.tensor(pattern * (size // len(pattern))).repeat(size, 1)          # (size, size), rows equal


def test_gradient_term_is_mean_x_plus_mean_y_averaged_over_scales():
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    # 4x4, columns 0,1,0,1: |dx| = 1 everywhere, dy = 0; scale 1 has 4 < 10 pixels -> only scale 0 -> 1
    assert depth_gradient_loss(_columns([0, 1], 4)[None], valid).item() == pytest.approx(1.0)
    # 8x8: scale 0 gives 1 + 0; scale 1 (every 2nd pixel: all 0) gives 0; scale 2 has 4 pixels -> (1 + 0) / 2
    assert depth_gradient_loss(_columns([0, 1], 8)[None], torch.ones(1, 8, 8, dtype=torch.bool)).item() == \
        pytest.approx(0.5)
    # differences are clamped at 100
    assert depth_gradient_loss(_columns([0, 300], 4)[None], valid).item() == pytest.approx(100.0)
    # pairs with an invalid pixel are skipped: column 3 invalid -> the x-pairs (0,1), (1,2) -> still 1
    valid[..., 3] = False
    assert depth_gradient_loss(_columns([0, 1], 4)[None], valid).item() == pytest.approx(1.0)


def test_trimmed_l1_depth_loss_is_averaged_per_sample():
    target = torch.full((2, 1, 4, 4), 2.0)
    pred = target.clone()
    pred[0, 0] += _columns([0, 1], 4)            # sample 0: L1 0.5 + gradient 1 = 1.5; sample 1: 0
    assert trimmed_l1_depth_loss(pred, target).item() == pytest.approx(0.75)
    # per sample, not per pixel: sample 1 keeps only its first row (4 pixels, < 10 -> no gradient), L1 0
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[1, :, 1:] = False
    assert trimmed_l1_depth_loss(pred, target, mask).item() == pytest.approx(0.75)
    module = TrimmedL1DepthLoss(loss_weight=2.0)
    assert module(pred, target)['loss'].item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match='confidence=False'):
        module(pred, target, conf=torch.ones_like(pred))


def test_depth_head_without_confidence_feeds_the_trimmed_loss():
    head = DPTDepthHead(in_channels=8, features=8, out_channels=(4, 4, 8, 8), confidence=False)
    targets = TeacherTargets(depth=torch.rand(1, 2, 16, 16) + 1)
    ctx = HeadContext(num_frames=2, targets=targets)
    preds = head([torch.randn(1, 2, 2, 2, 8) for _ in range(4)], ctx)
    assert set(preds) == {'depth'} and preds['depth'].shape == (1, 2, 16, 16)
    inputs = head.loss_inputs(preds, targets, ctx)
    assert 'conf' not in inputs
    assert torch.isfinite(TrimmedL1DepthLoss()(**inputs)['loss'])


# ---------------------------------------------------------------- 2. feature alignment
def test_teacher_target_pools_floor():
    h, w = torch.meshgrid(torch.arange(3.0), torch.arange(5.0), indexing='ij')
    grid = h * 10 + w
    features = torch.stack([grid, grid + 100], -1)[None, None]                   # (1, 1, 3, 5, 2)
    target = teacher_alignment_target(features, 'floor')
    assert target.shape == (1, 1, 1, 2, 2)                      # floor(3/2) x floor(5/2)
    # 2x2 means: (0 + 1 + 10 + 11) / 4 = 5.5 and (2 + 3 + 12 + 13) / 4 = 7.5
    assert target[0, 0, 0, :, 0].tolist() == [5.5, 7.5] and target[0, 0, 0, :, 1].tolist() == [105.5, 107.5]
    assert teacher_alignment_target(features, 'ceil').shape == (1, 1, 2, 3, 2)
    assert teacher_alignment_target(features).equal(features)


def test_vggt_frame_half_is_the_first_half():
    from geokit.models.teachers.vggt_teacher import select_feature_part
    tokens = torch.arange(5 * 6, dtype=torch.float).view(1, 1, 5, 6)          # 1 special + 4 patches, 2C = 6
    frame = select_feature_part(tokens, 'frame', 1, (2, 2))
    assert frame.shape == (1, 1, 2, 2, 3)
    assert frame[0, 0, 0, 0].tolist() == [6, 7, 8] and frame[0, 0, 1, 1].tolist() == [24, 25, 26]


def test_teacher_view_longest_edge_504_no_crop():
    from geokit.models.teachers.preprocess import TeacherView
    view = TeacherView(image_size=504, patch_size=14, mode='longest')
    # landscape 480x640: width 504, height round(480 * 504 / 640 / 28) * 28 = round(13.5) * 28 = 392
    assert view.output_hw(480, 640) == (392, 504)
    # portrait 640x360: height 504, width round(283.5 / 28) * 28 = 10 * 28 = 280 -- the whole frame, no crop
    assert view.output_hw(640, 360) == (504, 280)
    frames = torch.zeros(1, 1, 640, 360, 3, dtype=torch.uint8)
    frames[0, 0, :8] = 255                                      # the top rows survive (a crop would cut them)
    images = view.images(frames)
    assert images.shape == (1, 1, 3, 504, 280) and images[0, 0, :, 0].min() > 0.9
    assert TeacherView(image_size=518, mode='crop').output_hw(640, 360) == (518, 518)


def test_alignment_head_resizes_before_the_mlp_on_the_pooled_grid():
    torch.manual_seed(0)
    head = FeatureAlignmentHead(in_channels=6, out_channels=2, num_layers=1, hidden_channels=2,
                                teacher_pool='floor', resize='before_mlp')
    targets = TeacherTargets(features={3: torch.randn(1, 2, 6, 8, 2)})
    ctx = HeadContext(num_frames=2, targets=targets, teacher_layers=(3,))
    x = torch.randn(1, 2, 2, 2, 6)
    out = head([x], ctx)['features_3']
    assert out.shape == (1, 2, 3, 4, 2)                                     # the pooled (6/2, 8/2) grid
    resized = torch.nn.functional.interpolate(x[0].permute(0, 3, 1, 2), size=(3, 4), mode='bilinear',
                                              align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(out[0], head.mlps[0](resized))
    inputs = head.loss_inputs({'features_3': out}, targets, ctx)
    assert inputs['teacher'][3].shape == (1, 2, 3, 4, 2)
    torch.testing.assert_close(inputs['teacher'][3], teacher_alignment_target(targets.features[3], 'floor'))
    # the geokit default (MLP then resize) gives a different map
    head.resize = 'after_mlp'
    assert not torch.allclose(head([x], ctx)['features_3'], out)


def test_cosine_alignment_value():
    student = torch.tensor([1.0, 0.0]).expand(1, 1, 1, 2, 2)
    teacher = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).view(1, 1, 1, 2, 2)
    # tokens: 1 - 1/sqrt(2) and 1 - 0 -> mean
    loss = FeatureAlignmentLoss()({0: student}, {0: teacher})['loss']
    assert loss.item() == pytest.approx((1 - 1 / math.sqrt(2) + 1) / 2, rel=1e-5)


# ---------------------------------------------------------------- 3. camera
def test_camera_loss_clamps_the_translation_error_at_100():
    pred, target = torch.zeros(1, 2, 9), torch.zeros(1, 2, 9)
    pred[0, 0, 0] = 150.0                                    # one translation component off by 150
    pred[0, 1, 3] = 0.8                                      # one quaternion component off by 0.8
    pred[0, 1, 7] = 0.4                                      # one FoV off by 0.4
    clamped = CameraPoseLoss(translation_clamp=100.0)(pred, target)
    # t: min(150, 100) / (3 * 2) ; q: 0.8 / (4 * 2) ; fov: 0.4 / (2 * 2) weighted 0.5
    assert clamped['pose_t'].item() == pytest.approx(100 / 6)
    assert clamped['loss'].item() == pytest.approx(100 / 6 + 0.1 + 0.5 * 0.1)
    assert CameraPoseLoss()(pred, target)['pose_t'].item() == pytest.approx(150 / 6)


# ---------------------------------------------------------------- 4. heads
def _linear_shapes(module: torch.nn.Module) -> list[tuple[int, int]]:
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_published_head_widths():
    camera = CameraHead(2048, hidden_channels=1536, hidden_layers=2, fov_activation='relu')
    assert _linear_shapes(camera) == [(1536, 2048), (1536, 1536), (9, 1536)]
    assert _linear_shapes(ScaleHead(2048, hidden_channels=512)) == [(512, 2048), (1, 512)]
    align = FeatureAlignmentHead(2048, out_channels=1024, num_layers=4, hidden_channels=1024)
    assert all(_linear_shapes(m) == [(1024, 2048), (1024, 1024)] for m in align.mlps)
    # geokit's default widths for comparison: one hidden layer of in_channels
    assert _linear_shapes(CameraHead(2048)) == [(2048, 2048), (9, 2048)]


def test_camera_head_relu_fov():
    head = CameraHead(4, hidden_channels=3, hidden_layers=2, fov_activation='relu')
    with torch.no_grad():
        last = head.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 2, 3, 0, 0, 0, 1, -0.5, 0.7]))
    pose = head([torch.randn(1, 2, 4)], HeadContext(num_frames=2))['pose_enc']
    assert pose[0, 0].tolist() == pytest.approx([1, 2, 3, 0, 0, 0, 1, 0.0, 0.7])   # relu(-0.5) = 0
    head.fov_activation = 'softplus'
    assert head([torch.randn(1, 2, 4)], HeadContext(num_frames=2))['pose_enc'][0, 0, 7].item() == \
        pytest.approx(math.log1p(math.exp(-0.5)))
    with pytest.raises(ValueError, match='fov_activation'):
        CameraHead(4, fov_activation='tanh')
