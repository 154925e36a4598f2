import math

import pytest
import torch
from torch.autograd import gradcheck

from geokit.geometry import (
    closed_form_inverse_se3,
    extrinsics_intrinsics_to_pose_encoding,
    normalize_to_first_frame,
    pose_encoding_to_extrinsics_intrinsics,
    quaternion_xyzw_to_rotation_matrix,
    rotation_matrix_to_quaternion_xyzw,
)


def random_cameras(batch_shape, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    quat = torch.randn(*batch_shape, 4, generator=gen, dtype=dtype)
    rotation = quaternion_xyzw_to_rotation_matrix(quat)
    translation = torch.randn(*batch_shape, 3, 1, generator=gen, dtype=dtype)
    extrinsics = torch.cat([rotation, translation], dim=-1)
    focal = 50 + 100 * torch.rand(*batch_shape, 2, generator=gen, dtype=dtype)
    intrinsics = torch.zeros(*batch_shape, 3, 3, dtype=dtype)
    intrinsics[..., 0, 0], intrinsics[..., 1, 1] = focal[..., 0], focal[..., 1]
    intrinsics[..., 0, 2], intrinsics[..., 1, 2], intrinsics[..., 2, 2] = 32.0, 24.0, 1.0
    return extrinsics, intrinsics


def test_known_quaternion_xyzw():
    angle = 0.7
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0],
                             [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    quat = rotation_matrix_to_quaternion_xyzw(rotation)
    expected = torch.tensor([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)], dtype=torch.float64)
    torch.testing.assert_close(quat, expected)
    torch.testing.assert_close(quaternion_xyzw_to_rotation_matrix(expected), rotation)


def test_quaternion_is_standardised_w_nonnegative():
    _, _ = random_cameras((5,))
    quat = torch.randn(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out = rotation_matrix_to_quaternion_xyzw(quaternion_xyzw_to_rotation_matrix(quat))
    assert (out[:, 3] >= 0).all()
    unit = quat / quat.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(out, torch.where(unit[:, 3:] < 0, -unit, unit))


def test_known_pose_encoding():
    extrinsics = torch.cat([torch.eye(3), torch.tensor([[1.0], [2.0], [3.0]])], dim=-1)
    intrinsics = torch.tensor([[64.0, 0, 32], [0, 24.0, 24], [0, 0, 1]])
    enc = extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, (48, 64))
    expected = torch.tensor([1.0, 2.0, 3.0, 0, 0, 0, 1, 2 * math.atan(1.0), 2 * math.atan(0.5)])
    torch.testing.assert_close(enc, expected)


@pytest.mark.parametrize('batch_shape', [(), (4,), (2, 3)])
def test_round_trip(batch_shape):
    extrinsics, intrinsics = random_cameras(batch_shape)
    enc = extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, (48, 64))
    assert enc.shape == (*batch_shape, 9)
    extr2, intr2 = pose_encoding_to_extrinsics_intrinsics(enc, (48, 64))
    torch.testing.assert_close(extr2, extrinsics, atol=1e-5, rtol=0)
    torch.testing.assert_close(intr2, intrinsics, atol=1e-5, rtol=0)
    enc2 = extrinsics_intrinsics_to_pose_encoding(extr2, intr2, (48, 64))
    assert (enc2 - enc).abs().max() < 1e-5


def test_round_trip_float32():
    extrinsics, intrinsics = random_cameras((2, 8))
    enc = extrinsics_intrinsics_to_pose_encoding(extrinsics.float(), intrinsics.float(), (48, 64))
    enc2 = extrinsics_intrinsics_to_pose_encoding(*pose_encoding_to_extrinsics_intrinsics(enc, (48, 64)), (48, 64))
    assert (enc2 - enc).abs().max() < 1e-5


def test_normalize_to_first_frame():
    extrinsics, _ = random_cameras((2, 4))
    rel = normalize_to_first_frame(extrinsics)
    torch.testing.assert_close(rel[:, 0], torch.eye(3, 4, dtype=torch.float64).expand(2, 3, 4))
    # a world point seen by camera i keeps its camera coordinates after re-expressing it in camera 0's frame
    point = torch.tensor([0.3, -0.2, 1.5], dtype=torch.float64)
    cam = extrinsics[..., :3] @ point + extrinsics[..., 3]
    first = extrinsics[:, :1]
    point_in_first = first[..., :3] @ point + first[..., 3]
    cam_rel = rel[..., :3] @ point_in_first[:, :, :, None] + rel[..., 3:]
    torch.testing.assert_close(cam_rel[..., 0], cam)
    with pytest.raises(ValueError, match=r'\(4, 3, 4\)'):
        normalize_to_first_frame(extrinsics[0])


def test_inverse_se3():
    extrinsics, _ = random_cameras((3,))
    inv = closed_form_inverse_se3(extrinsics)
    full = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    full[:, :3] = extrinsics
    torch.testing.assert_close(inv, torch.linalg.inv(full)[:, :3])


def test_shape_errors_show_shapes():
    with pytest.raises(ValueError, match=r'\(2, 8\)'):
        pose_encoding_to_extrinsics_intrinsics(torch.zeros(2, 8), (4, 4))
    with pytest.raises(ValueError, match=r'\(3, 3\)'):
        extrinsics_intrinsics_to_pose_encoding(torch.zeros(3, 3), torch.zeros(3, 3), (4, 4))


def test_gradcheck_pose_functions():
    extrinsics, intrinsics = random_cameras((2,))
    enc = extrinsics_intrinsics_to_pose_encoding(extrinsics, intrinsics, (48, 64)).requires_grad_()
    assert gradcheck(lambda e: pose_encoding_to_extrinsics_intrinsics(e, (48, 64)), (enc,))
    extr = extrinsics.clone().requires_grad_()
    intr = intrinsics.clone().requires_grad_()
    assert gradcheck(lambda e, k: extrinsics_intrinsics_to_pose_encoding(e, k, (48, 64)), (extr, intr))
    seq = random_cameras((1, 3))[0].requires_grad_()
    assert gradcheck(normalize_to_first_frame, (seq,))
