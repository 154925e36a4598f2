import pytest
import torch
from torch.autograd import gradcheck

from geokit.geometry import depth_to_camera_points, depth_to_world_points, project_points

from .test_pose_encoding import random_cameras


def test_known_camera_points():
    intrinsics = torch.tensor([[10.0, 0, 1], [0, 20.0, 1], [0, 0, 1]], dtype=torch.float64)
    depth = torch.full((3, 4), 2.0, dtype=torch.float64)
    points = depth_to_camera_points(depth, intrinsics)
    assert points.shape == (3, 4, 3)
    torch.testing.assert_close(points[1, 1], torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(points[2, 3], torch.tensor([0.4, 0.1, 2.0], dtype=torch.float64))


@pytest.mark.parametrize('batch_shape', [(2,), (2, 3)])
def test_unproject_project_round_trip(batch_shape):
    extrinsics, intrinsics = random_cameras(batch_shape, seed=1)
    height, width = 5, 6
    depth = 1 + torch.rand(*batch_shape, height, width, dtype=torch.float64)
    world = depth_to_world_points(depth, extrinsics, intrinsics)
    assert world.shape == (*batch_shape, height, width, 3)
    uv, z = project_points(world.flatten(-3, -2), extrinsics, intrinsics)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing='ij')
    expected = torch.stack([u, v], -1).reshape(-1, 2).expand(*batch_shape, -1, -1)
    torch.testing.assert_close(uv, expected)
    torch.testing.assert_close(z, depth.flatten(-2))


def test_project_behind_camera_is_finite():
    extrinsics, intrinsics = random_cameras((1,), seed=2)
    points = torch.zeros(1, 2, 3, dtype=torch.float64)
    points[0, 1] = -extrinsics[0, :3, :3].T @ extrinsics[0, :3, 3]  # the camera centre: z = 0
    uv, z = project_points(points, extrinsics, intrinsics)
    assert torch.isfinite(uv).all()
    assert z[0, 1].abs() < 1e-9


def test_shape_errors():
    with pytest.raises(ValueError, match=r'\(2, 4, 4\).*\(3, 3, 3\)'):
        depth_to_camera_points(torch.ones(2, 4, 4), torch.eye(3).expand(3, 3, 3))


def test_gradcheck_projection():
    extrinsics, intrinsics = random_cameras((2,), seed=4)
    depth = (1 + torch.rand(2, 3, 3, dtype=torch.float64)).requires_grad_()
    extr, intr = extrinsics.requires_grad_(), intrinsics.requires_grad_()
    assert gradcheck(depth_to_camera_points, (depth, intr))
    assert gradcheck(depth_to_world_points, (depth, extr, intr))
    centre = -(extrinsics[:, :3, :3].transpose(-1, -2) @ extrinsics[:, :3, 3:]).transpose(-1, -2)
    in_front = torch.tensor([[0.1, -0.2, 2.0], [0.3, 0.1, 3.0]], dtype=torch.float64)
    world = (centre + in_front @ extrinsics[:, :3, :3]).detach().requires_grad_()
    assert gradcheck(lambda p, e, k: project_points(p, e, k), (world, extr, intr))
