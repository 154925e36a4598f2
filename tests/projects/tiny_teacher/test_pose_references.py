"""Reference pose predictors: each keeps one part of the ground truth and replaces the other by a rule."""
from __future__ import annotations

import math

import pytest
import torch

from geokit.geometry import pose_auc, relative_pose_errors
from projects.tiny_teacher.tiny_teacher import evaluate_pose_references
from projects.tiny_teacher.tiny_teacher.pose_references import (
    REFERENCE_PREDICTORS,
    camera_centres,
    constant_yaw_rate,
    extrinsics_from_centres,
    forward_centres,
    noisy_centres,
    random_horizontal_centres,
    static_centres,
    yaw_about_camera_y,
)


def _random_rotations(*shape: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(*shape, 3, 3, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return torch.where(torch.det(q)[..., None, None] < 0, -q, q)


def _walk(batch: int = 2, frames: int = 6, seed: int = 0) -> torch.Tensor:
    """Camera-from-world ``(B, T, 3, 4)``: random rotations and random centres."""
    torch.manual_seed(seed)
    return extrinsics_from_centres(_random_rotations(batch, frames), torch.randn(batch, frames, 3, dtype=torch.float64))


def _auc(pred: torch.Tensor, gt: torch.Tensor) -> float:
    rot, trans = relative_pose_errors(pred, gt)
    return pose_auc(rot, trans)


def test_centres_round_trip():
    extrinsics = _walk()
    assert torch.allclose(extrinsics_from_centres(extrinsics[..., :3], camera_centres(extrinsics)), extrinsics)


def test_yaw_about_camera_y_known_values_and_gradcheck():
    rotation = yaw_about_camera_y(torch.tensor([0.0, math.pi / 2], dtype=torch.float64))
    assert rotation.shape == (2, 3, 3)
    assert torch.allclose(rotation[0], torch.eye(3, dtype=torch.float64))
    # +90 deg: the new forward axis (z) is the old -x (the camera turned left)
    assert torch.allclose(rotation[1].T @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                          torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12)
    angle = torch.rand(4, 5, dtype=torch.float64, requires_grad=True)
    assert yaw_about_camera_y(angle).shape == (4, 5, 3, 3)
    assert torch.autograd.gradcheck(yaw_about_camera_y, (angle,))


def test_static_centres_score_zero_translation_is_no_direction():
    extrinsics = _walk()
    pred = static_centres(extrinsics)
    assert torch.equal(pred[..., 3], torch.zeros_like(pred[..., 3]))
    rot, trans = relative_pose_errors(pred, extrinsics)
    assert rot.max() < 1e-5 and torch.all(trans == 90)
    assert _auc(pred, extrinsics) == 0.0


def test_forward_centres_exact_on_a_forward_walk():
    rotation = _random_rotations(1, 1).expand(1, 5, 3, 3)
    forward_in_world = rotation[0, 0].T @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    centres = torch.arange(5, dtype=torch.float64)[None, :, None] * 0.4 * forward_in_world + 1.0
    extrinsics = extrinsics_from_centres(rotation, centres)
    assert _auc(forward_centres(extrinsics), extrinsics) == pytest.approx(1.0, abs=1e-3)


def test_constant_yaw_rate_exact_on_a_constant_turn():
    start = _random_rotations(1, 1)[:, 0]
    angles = 0.3 * torch.arange(6, dtype=torch.float64)
    rotation = yaw_about_camera_y(angles)[None] @ start[:, None]
    extrinsics = extrinsics_from_centres(rotation, torch.randn(1, 6, 3, dtype=torch.float64))
    assert torch.allclose(constant_yaw_rate(extrinsics), extrinsics, atol=1e-10)
    reversed_turn = extrinsics.flip(1)
    assert torch.allclose(constant_yaw_rate(reversed_turn), reversed_turn, atol=1e-10)


def test_random_horizontal_steps_lie_in_frame0_xz_plane_and_are_seeded():
    extrinsics = _walk(batch=3, frames=7)
    pred = random_horizontal_centres(extrinsics, torch.Generator().manual_seed(1))
    again = random_horizontal_centres(extrinsics, torch.Generator().manual_seed(1))
    assert torch.equal(pred, again)
    assert torch.allclose(pred[..., :3], extrinsics[..., :3])
    steps = camera_centres(pred).diff(dim=1)
    in_frame0 = torch.einsum('bij,btj->bti', extrinsics[:, 0, :, :3], steps)
    assert torch.allclose(in_frame0[..., 1], torch.zeros_like(in_frame0[..., 1]), atol=1e-12)
    assert torch.allclose(in_frame0.norm(dim=-1), torch.ones_like(in_frame0[..., 0]))


def test_noisy_centres_zero_noise_is_exact_and_noise_lowers_auc():
    extrinsics = _walk()
    assert _auc(noisy_centres(extrinsics, relative_noise=0.0), extrinsics) == pytest.approx(1.0)
    noisy = noisy_centres(extrinsics, torch.Generator().manual_seed(0), relative_noise=0.5)
    assert _auc(noisy, extrinsics) < 0.9


def test_every_reference_keeps_shapes():
    extrinsics = _walk(batch=2, frames=4)
    for name, predictor in REFERENCE_PREDICTORS.items():
        assert predictor(extrinsics, torch.Generator().manual_seed(0)).shape == extrinsics.shape, name


def test_evaluate_pose_references_on_samples():
    from tests.teachers.conftest import plane_scene
    samples = [plane_scene(num_frames=4, seed=s) for s in range(3)]
    result = evaluate_pose_references(samples, progress=False)
    assert result['videos'] == 3 and result['pairs'] == 18
    assert set(result['auc30']) == set(REFERENCE_PREDICTORS)
    assert result['auc30']['gt rotation, static centres'] == 0.0
    assert all(0 <= auc <= 1 for auc in result['auc30'].values())
    assert 0 <= result['share_pairs_within_fov'] <= 1 and result['median_pair_rotation_deg'] > 0
    assert evaluate_pose_references(samples, max_videos=2, progress=False)['videos'] == 2
    with pytest.raises(ValueError, match='load_geometry'):
        evaluate_pose_references([dict(s, geometry=None) for s in samples], progress=False)
