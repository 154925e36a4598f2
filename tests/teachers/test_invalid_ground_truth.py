"""NaN/inf in ground-truth depth: masked like pixels without depth, never turning the metric scale into garbage."""
from __future__ import annotations

import pytest
import torch

from geokit.geometry import align_depth_scale
from geokit.models.teachers import OracleTeacher


def _scene(num_frames: int = 3, size: int = 28, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    depth = 2 + torch.rand(num_frames, size, size, generator=g) * 3
    extrinsics = torch.eye(3, 4).repeat(num_frames, 1, 1)
    extrinsics[:, 0, 3] = torch.arange(num_frames) * 0.3
    intrinsics = torch.tensor([[20.0, 0, size / 2], [0, 20.0, size / 2], [0, 0, 1]]).repeat(num_frames, 1, 1)
    frames = torch.zeros(1, num_frames, size, size, 3, dtype=torch.uint8)
    return frames, dict(depth=depth, extrinsics=extrinsics, intrinsics=intrinsics)


@pytest.mark.parametrize('where', ['one percent', 'whole frame'])
def test_nan_depth_is_masked_and_the_metric_scale_stays_right(where):
    teacher = OracleTeacher(image_size=28, patch_size=14)
    frames, geometry = _scene()
    clean = teacher(frames, [{'id': 0, 'video': 'v.mp4'}], [geometry])
    poisoned = dict(geometry, depth=geometry['depth'].clone())
    if where == 'one percent':
        poisoned['depth'][0].view(-1)[::100] = float('nan')
    else:
        poisoned['depth'][1] = float('nan')
    out = teacher(frames, [{'id': 0, 'video': 'v.mp4'}], [poisoned])
    assert out.sample_valid.tolist() == [True]
    for name in ('pose_enc', 'depth', 'depth_conf', 'points', 'metric_scale'):
        assert torch.isfinite(getattr(out, name)).all(), name
    tolerance = 0.01 if where == 'one percent' else 0.1
    torch.testing.assert_close(out.metric_scale, clean.metric_scale, rtol=tolerance, atol=0)
    assert float(out.metric_scale) != 1.0
    nan = ~torch.isfinite(poisoned['depth'])
    assert (out.depth_conf[0][nan] == 0).all() and (out.depth[0][nan] == 0).all()


def test_a_video_without_any_valid_depth_is_excluded():
    teacher = OracleTeacher(image_size=28, patch_size=14)
    frames, geometry = _scene()
    geometry['depth'][:] = float('nan')
    out = teacher(frames, [{'id': 0, 'video': 'v.mp4'}], [geometry])
    assert out.sample_valid.tolist() == [False]
    assert all(torch.isfinite(getattr(out, n)).all() for n in ('pose_enc', 'depth', 'points', 'metric_scale'))


def test_align_depth_scale_can_mark_samples_without_a_valid_pixel():
    source = torch.ones(2, 8)
    target = torch.full((2, 8), 3.0)
    target[1] = float('nan')
    scale = align_depth_scale(source, target, empty=float('nan'))
    assert scale[0] == pytest.approx(3.0) and torch.isnan(scale[1])
    assert align_depth_scale(source, target)[1] == 1.0  # the documented default for metrics
