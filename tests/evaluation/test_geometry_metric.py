"""GeometryMetric: known values of depth, pose and scale errors against ground truth and teacher targets."""
import math

import pytest
import torch

from geokit.evaluation import GeometryMetric, median_scale
from geokit.geometry.pose_encoding import extrinsics_intrinsics_to_pose_encoding
from geokit.registry import METRICS

T, H, W = 3, 8, 10


def rot_z(degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def scene(num_frames: int = T):
    """Depth in metres ``(T, H, W)``, cam-from-world extrinsics ``(T, 3, 4)``, pixel intrinsics ``(T, 3, 3)``."""
    g = torch.Generator().manual_seed(0)
    depth = 1 + 4 * torch.rand(num_frames, H, W, generator=g)
    extrinsics = torch.stack([torch.cat([rot_x(7 * i) @ rot_z(5 * i), torch.tensor([[0.1 * i], [0.05], [0.3 * i]])],
                                        1) for i in range(num_frames)])
    intrinsics = torch.tensor([[8.0, 0, W / 2], [0, 8.0, H / 2], [0, 0, 1]]).expand(num_frames, 3, 3).clone()
    return depth, extrinsics, intrinsics


def evaluate(metric: GeometryMetric, pred: dict, geometry: dict | None = None, **output) -> dict:
    metric.process([dict(geometry=geometry)], [dict(geometry_pred=pred, **output)])
    return metric.evaluate(1)


def test_perfect_prediction():
    depth, extrinsics, _ = scene()
    metric = METRICS.build(dict(type='GeometryMetric'))
    out = evaluate(metric, dict(depth=depth, extrinsics=extrinsics, metric_scale=1.0),
                   dict(depth=depth, extrinsics=extrinsics))
    assert out['geometry/depth_abs_rel'] == pytest.approx(0, abs=1e-6)
    assert out['geometry/depth_delta1'] == 1
    assert out['geometry/pose_auc30'] == pytest.approx(1)
    assert out['geometry/rot_err_deg'] == pytest.approx(0, abs=1e-2)
    assert out['geometry/trans_err_deg'] == pytest.approx(0, abs=1e-2)
    assert out['geometry/scale_rel_err'] == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize('alignment', ['median', 'lstsq'])
def test_scaled_prediction_is_exact_after_alignment(alignment):
    """Up-to-scale depth at a lower resolution and cameras with scaled translations: no error after alignment."""
    depth, extrinsics, _ = scene()
    pred_extrinsics = extrinsics.clone()
    pred_extrinsics[..., 3] *= 0.25
    pred_depth = depth * 0.25
    out = evaluate(GeometryMetric(depth_alignment=alignment), dict(depth=pred_depth, extrinsics=pred_extrinsics),
                   dict(depth=depth, extrinsics=extrinsics))
    assert out['geometry/depth_abs_rel'] == pytest.approx(0, abs=1e-5)
    assert out['geometry/depth_delta1'] == 1
    assert out['geometry/pose_auc30'] == pytest.approx(1)
    # without alignment the same prediction is 75 % off everywhere
    out = evaluate(GeometryMetric(depth_alignment='none'), dict(depth=pred_depth), dict(depth=depth))
    assert out['geometry/depth_abs_rel'] == pytest.approx(0.75, abs=1e-6)
    assert out['geometry/depth_delta1'] == 0


def test_known_perturbations():
    """Depth 30 % too far on half the pixels; camera 1 turned 10 degrees about its optical axis."""
    depth, _, _ = scene(2)
    pred_depth = depth.clone()
    pred_depth[:, :, : W // 2] *= 1.3
    out = evaluate(GeometryMetric(depth_alignment='none'), dict(depth=pred_depth), dict(depth=depth))
    assert out['geometry/depth_abs_rel'] == pytest.approx(0.15, abs=1e-6)
    assert out['geometry/depth_delta1'] == pytest.approx(0.5)

    identity = torch.cat([torch.eye(3), torch.zeros(3, 1)], 1)
    gt = torch.stack([identity, torch.cat([rot_x(20), torch.tensor([[0.0], [0.0], [1.0]])], 1)])
    pred = gt.clone()
    pred[1] = rot_z(10) @ gt[1]  # rotation and translation turned about z; t = (0, 0, 1) keeps its direction
    out = evaluate(GeometryMetric(), dict(extrinsics=pred), dict(extrinsics=gt))
    assert out['geometry/rot_err_deg'] == pytest.approx(10, abs=1e-3)
    assert out['geometry/trans_err_deg'] == pytest.approx(0, abs=1e-3)
    assert out['geometry/pose_auc30'] == pytest.approx(20 / 30)  # a miss for thresholds 1..10 of 30


def test_metric_scale():
    depth, _, _ = scene()
    pred = dict(depth=depth / 2.0, metric_scale=2.2)  # 10 % too large a scale
    out = evaluate(GeometryMetric(depth_alignment='metric'), pred, dict(depth=depth))
    assert out['geometry/scale_rel_err'] == pytest.approx(0.1, abs=1e-5)
    assert out['geometry/depth_abs_rel'] == pytest.approx(0.1, abs=1e-5)
    assert out['geometry/depth_delta1'] == 1
    with pytest.raises(KeyError, match="depth_alignment='median'"):
        evaluate(GeometryMetric(depth_alignment='metric'), dict(depth=depth), dict(depth=depth))


def test_teacher_reference():
    """Teacher targets (depth in teacher units + metric_scale, 9-d pose encodings) as the reference."""
    depth, extrinsics, intrinsics = scene()
    pose_enc = extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, (H, W))
    teacher = dict(depth=depth, pose_enc=pose_enc, metric_scale=torch.tensor([0.5]))
    # GeoVR's convention: the depth head regresses teacher depth, the scale head metres per teacher unit
    pred = dict(depth=depth, pose_enc=pose_enc, metric_scale=0.55)
    for alignment, abs_rel in (('median', 0.0), ('metric', 0.1)):
        metric = GeometryMetric(reference='teacher', depth_alignment=alignment)
        out = evaluate(metric, pred, geometry=None, teacher_targets=teacher)
        assert out['geometry/depth_abs_rel'] == pytest.approx(abs_rel, abs=1e-5)
        assert out['geometry/pose_auc30'] == pytest.approx(1)
        assert out['geometry/scale_rel_err'] == pytest.approx(0.1, abs=1e-5)
    # the teacher is the reference even where dataset ground truth exists
    out = evaluate(GeometryMetric(reference='teacher', depth_alignment='none'), dict(depth=depth * 3),
                   geometry=dict(depth=depth * 3), teacher_targets=teacher)
    assert out['geometry/depth_abs_rel'] == pytest.approx(2, abs=1e-5)
    with pytest.raises(KeyError, match='teacher_key'):
        evaluate(GeometryMetric(reference='teacher'), dict(depth=depth), dict(depth=depth))
    with pytest.raises(KeyError, match='metric_scale'):
        evaluate(GeometryMetric(reference='teacher', depth_alignment='metric'), dict(depth=depth, metric_scale=1.0),
                 teacher_targets=dict(depth=depth))


def test_empty_mask_and_nan_depth():
    depth, _, _ = scene()
    # no valid reference pixel in the only sample: NaN, not a crash and not a missing key
    out = evaluate(GeometryMetric(), dict(depth=depth), dict(depth=torch.zeros_like(depth)))
    assert math.isnan(out['geometry/depth_abs_rel']) and math.isnan(out['geometry/depth_delta1'])
    # NaN reference pixels are ignored; a sample without valid pixels does not pull the mean
    ref = depth.clone()
    ref[:, :2] = float('nan')
    metric = GeometryMetric()
    metric.process([dict(geometry=dict(depth=ref)), dict(geometry=dict(depth=torch.full_like(depth, float('nan'))))],
                   [dict(geometry_pred=dict(depth=depth * 2)), dict(geometry_pred=dict(depth=depth))])
    out = metric.evaluate(2)
    assert out['geometry/depth_abs_rel'] == pytest.approx(0, abs=1e-5)
    # NaN predictions are wrong predictions (depth 0): AbsRel 1 and outside delta1 on those pixels
    pred = depth.clone()
    pred[0] = float('nan')
    out = evaluate(GeometryMetric(depth_alignment='none'), dict(depth=pred), dict(depth=depth))
    assert out['geometry/depth_abs_rel'] == pytest.approx(1 / T, abs=1e-6)
    assert out['geometry/depth_delta1'] == pytest.approx(1 - 1 / T)
    assert median_scale(torch.zeros(1, 4), torch.ones(1, 4), torch.ones(1, 4, dtype=torch.bool)).item() == 1


def test_clear_errors():
    depth, extrinsics, _ = scene()
    with pytest.raises(ValueError, match='choose one of'):
        GeometryMetric(depth_alignment='mean')
    with pytest.raises(KeyError, match='pred_key'):
        GeometryMetric().process([dict(geometry=dict(depth=depth))], [dict(prediction='3')])
    with pytest.raises(ValueError, match='frames'):
        evaluate(GeometryMetric(), dict(depth=depth[:2]), dict(depth=depth))
    with pytest.raises(KeyError, match='SynthVSI'):
        evaluate(GeometryMetric(), dict(depth=depth), None)


def test_save_predictions_for_visualize(tmp_path):
    from geokit.visualization import load_geometry

    depth, extrinsics, intrinsics = scene()
    metric = GeometryMetric(save_predictions=True, out_dir=str(tmp_path))
    metric.process([dict(geometry=dict(depth=depth * 2, extrinsics=extrinsics), frame_indices=torch.arange(T) * 2)],
                   [dict(geometry_pred=dict(depth=depth, extrinsics=extrinsics, intrinsics=intrinsics),
                         meta=dict(id='q7'))])
    saved = load_geometry(str(tmp_path / 'q7.safetensors'))
    assert float(saved['alignment_scale']) == pytest.approx(2)
    assert saved['frame_indices'].tolist() == [0, 2, 4]
    assert torch.equal(saved['depth'], depth)
