import pytest
import torch
from torch.autograd import gradcheck

from geokit.geometry import align_depth_scale, depth_to_world_points, frame_voxel_sets, voxelize_points

from .test_pose_encoding import random_cameras


def test_align_scale_exact_and_robust():
    gen = torch.Generator().manual_seed(0)
    source = 1 + torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    target = source * torch.tensor([2.0, 0.5], dtype=torch.float64)[:, None, None, None]
    mask = torch.ones_like(source, dtype=torch.bool)
    torch.testing.assert_close(align_depth_scale(source, target, mask, robust=False),
                               torch.tensor([2.0, 0.5], dtype=torch.float64))
    corrupted = target.clone()
    corrupted[:, 0, :3] = 100.0  # 12.5% gross outliers
    plain = align_depth_scale(source, corrupted, mask, robust=False)
    robust = align_depth_scale(source, corrupted, mask, robust=True)
    assert (plain - torch.tensor([2.0, 0.5], dtype=torch.float64)).abs().min() > 1.0
    torch.testing.assert_close(robust, torch.tensor([2.0, 0.5], dtype=torch.float64), atol=1e-3, rtol=0)


def test_align_scale_bad_input():
    source = torch.tensor([[1.0, float('nan'), -1.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    target = torch.tensor([[3.0, 1.0, 1.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    scale = align_depth_scale(source, target)
    torch.testing.assert_close(scale, torch.tensor([3.0, 1.0]))
    with pytest.raises(ValueError, match=r'\(2, 4\).*\(2, 3\)'):
        align_depth_scale(source, target[:, :3])


def test_gradcheck_align_scale():
    gen = torch.Generator().manual_seed(1)
    source = (1 + torch.rand(2, 10, generator=gen, dtype=torch.float64)).requires_grad_()
    target = (1 + torch.rand(2, 10, generator=gen, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(2, 10, generator=gen) > 0.2
    assert gradcheck(lambda s, t: align_depth_scale(s, t, mask, robust=False), (source, target))
    assert gradcheck(lambda s, t: align_depth_scale(s, t, mask, num_iters=3), (source, target))


def test_voxel_keys():
    points = torch.tensor([[0.05, 0.05, 0.05], [0.09, 0.01, 0.0], [-0.01, 0.0, 0.0], [0.1, 0.0, 0.0]])
    keys = voxelize_points(points, 0.1)
    assert keys.dtype == torch.long and keys[0] == keys[1]
    assert len(set(keys.tolist())) == 3
    with pytest.raises(ValueError, match=r'\(4, 2\)'):
        voxelize_points(points[:, :2], 0.1)
    with pytest.raises(ValueError, match='voxel_size'):
        voxelize_points(torch.full((1, 3), 1e9), 1e-3)


def test_frame_voxel_sets():
    extrinsics, intrinsics = random_cameras((2,), seed=3)
    depth = torch.full((2, 4, 4), 2.0, dtype=torch.float64)
    points = depth_to_world_points(depth, extrinsics, intrinsics)
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[1] = False
    points[0, 0, 0] = float('nan')
    sets = frame_voxel_sets(points, mask, voxel_size=1e-4)
    assert len(sets) == 2 and sets[0].numel() == 15 and sets[1].numel() == 0
    coarse = frame_voxel_sets(points, None, voxel_size=100.0)
    assert coarse[1].numel() == 1
    with pytest.raises(ValueError, match=r'\(2, 4, 4, 3\).*\(2, 4\)'):
        frame_voxel_sets(points, mask[:, 0], 0.1)
