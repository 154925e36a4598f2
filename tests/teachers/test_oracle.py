"""OracleTeacher: VGGT-convention targets that are geometrically consistent (unproject / reproject)."""
from __future__ import annotations

import pytest
import torch

from geokit.geometry import depth_to_world_points, pose_encoding_to_extrinsics_intrinsics, project_points
from geokit.models.teachers import OracleTeacher, TeacherView

from .conftest import plane_scene


def test_oracle_targets_are_consistent():
    sample = plane_scene(num_frames=3, height=42, width=56)
    teacher = OracleTeacher(image_size=70, patch_size=14, mode='crop')
    geometry = sample['geometry']
    targets = teacher(sample['frames'][None], [sample['meta']], [geometry])
    height, width = targets.image_hw
    assert (height, width) == TeacherView(70, 14, 'crop').output_hw(42, 56)
    depth, valid = targets.depth[0], targets.depth[0] > 0
    intrinsics = teacher.view.intrinsics(geometry['intrinsics'], (42, 56))
    extrinsics, decoded_k = pose_encoding_to_extrinsics_intrinsics(targets.pose_enc[0], (height, width))
    # first frame is the reference; focal lengths survive the encoding
    assert torch.allclose(extrinsics[0], torch.eye(3, 4), atol=1e-5)
    assert torch.allclose(decoded_k[:, 0, 0], intrinsics[:, 0, 0], rtol=1e-4)
    # metric scale: teacher depth * metric_scale is the warped ground truth in metres
    metres = teacher.view.depth(geometry['depth'])
    assert torch.allclose(depth * targets.metric_scale[0], metres, rtol=1e-5, atol=1e-5)
    # VGGT normalisation: mean distance of valid first-frame points to the origin is 1
    points = depth_to_world_points(depth, extrinsics, intrinsics)
    assert torch.allclose(points[valid].norm(dim=-1).mean(), torch.tensor(1.0), rtol=2e-3)
    assert torch.allclose(points[valid], targets.points[0][valid], atol=1e-4)
    # reproject frame 0's points into every frame: the predicted z matches that frame's depth at the pixel
    for j in range(1, 3):
        uv, z = project_points(points[0][valid[0]], extrinsics[j], intrinsics[j])
        u, v = uv[:, 0].round().long(), uv[:, 1].round().long()
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height) & (z > 0)
        sampled = depth[j][v[inside], u[inside]]
        ok = sampled > 0
        assert int(ok.sum()) > 0.3 * valid[0].sum()
        # nearest-pixel sampling on a smooth plane: within one pixel's depth change
        assert torch.allclose(sampled[ok], z[inside][ok], rtol=0.03)
        assert (sampled[ok] - z[inside][ok]).abs().median() < 0.01 * z.mean()


def test_oracle_needs_geometry():
    sample = plane_scene(num_frames=2)
    with pytest.raises(ValueError, match='ground-truth geometry'):
        OracleTeacher(image_size=56)(sample['frames'][None], [sample['meta']], [None])
