import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from geokit.geometry import (
    depth_abs_rel,
    depth_delta1,
    pose_auc,
    quaternion_xyzw_to_rotation_matrix,
    relative_pose_errors,
    rotation_angle_deg,
    rotation_matrix_to_quaternion_xyzw,
    translation_angle_deg,
)

from .test_pose_encoding import random_cameras


def numpy_auc(r_err, t_err, max_threshold=30):
    """The AUC as VGGT defines it (histogram of max errors over 1-degree bins, mean of the cumulative sum)."""
    max_errors = np.maximum(r_err, t_err)
    histogram, _ = np.histogram(max_errors, bins=np.arange(max_threshold + 1))
    return float(np.mean(np.cumsum(histogram / len(max_errors))))


def test_pose_auc_known_values():
    zeros = torch.zeros(10)
    assert pose_auc(zeros, zeros) == 1.0
    assert pose_auc(torch.full((4,), 15.5), torch.zeros(4)) == pytest.approx(0.5)
    assert pose_auc(torch.zeros(4), torch.full((4,), 30.0)) == pytest.approx(1 / 30)
    assert pose_auc(torch.full((4,), 31.0), torch.zeros(4)) == 0.0
    assert pose_auc(torch.tensor([0.5, float('nan')]), torch.zeros(2)) == pytest.approx(0.5)


def test_pose_auc_matches_vggt_definition():
    gen = torch.Generator().manual_seed(0)
    rot, trans = 40 * torch.rand(2, 1000, generator=gen, dtype=torch.float64)
    rot[:5] = torch.tensor([0.0, 1.0, 29.0, 30.0, 29.999])
    assert pose_auc(rot, trans) == pytest.approx(numpy_auc(rot.numpy(), trans.numpy()), abs=1e-12)
    assert pose_auc(rot, trans, max_threshold=5) == pytest.approx(numpy_auc(rot.numpy(), trans.numpy(), 5))


def vggt_style_errors(rel_gt, rel_pred):
    """Quaternion-based rotation error and squared-dot translation error, written as VGGT's evaluation does."""
    q_gt = rotation_matrix_to_quaternion_xyzw(rel_gt[..., :3, :3])
    q_pred = rotation_matrix_to_quaternion_xyzw(rel_pred[..., :3, :3])
    loss_q = (1 - (q_gt * q_pred).sum(-1) ** 2).clamp(min=1e-15)
    rot = torch.rad2deg(torch.arccos(1 - 2 * loss_q))
    t_gt = rel_gt[..., :3, 3] / rel_gt[..., :3, 3].norm(dim=-1, keepdim=True)
    t_pred = rel_pred[..., :3, 3] / rel_pred[..., :3, 3].norm(dim=-1, keepdim=True)
    loss_t = (1 - (t_gt * t_pred).sum(-1) ** 2).clamp(min=1e-15)
    trans = torch.rad2deg(torch.arccos(torch.sqrt(1 - loss_t)))
    return rot, trans


def test_relative_pose_errors_match_vggt_formulas():
    gt, _ = random_cameras((2, 5), seed=1)
    pred, _ = random_cameras((2, 5), seed=2)
    rot, trans = relative_pose_errors(pred, gt)
    assert rot.shape == trans.shape == (2, 10)
    pairs = torch.combinations(torch.arange(5), r=2)
    full = lambda e: torch.cat([e, torch.tensor([0, 0, 0, 1.0], dtype=e.dtype).expand(*e.shape[:-2], 1, 4)], -2)
    gt4, pred4 = full(gt), full(pred)
    rel_gt = gt4[:, pairs[:, 0]] @ torch.linalg.inv(gt4[:, pairs[:, 1]])
    rel_pred = pred4[:, pairs[:, 0]] @ torch.linalg.inv(pred4[:, pairs[:, 1]])
    ref_rot, ref_trans = vggt_style_errors(rel_gt, rel_pred)
    torch.testing.assert_close(rot, ref_rot, atol=1e-4, rtol=0)
    torch.testing.assert_close(trans, ref_trans, atol=1e-4, rtol=0)


def test_relative_pose_errors_known_values():
    gt, _ = random_cameras((1, 3), seed=3)
    rot, trans = relative_pose_errors(gt, gt)
    assert rot.abs().max() < 1e-6 and trans.abs().max() < 1e-6
    scaled = gt.clone()
    scaled[..., 3] *= 3.0  # translation errors are directions only: a global scale changes nothing
    _, trans = relative_pose_errors(scaled, gt)
    assert trans.abs().max() < 1e-6
    angle = 0.2
    spin = torch.tensor([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]],
                        dtype=torch.float64)
    turned = gt.clone()
    turned[0, 2] = spin @ gt[0, 2]
    rot, _ = relative_pose_errors(turned, gt)
    torch.testing.assert_close(rot[0], torch.tensor([0.0, math.degrees(angle), math.degrees(angle)],
                                                    dtype=torch.float64), atol=1e-6, rtol=0)


def test_angles_edge_cases():
    eye = torch.eye(3, dtype=torch.float64)
    flip = quaternion_xyzw_to_rotation_matrix(torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    assert rotation_angle_deg(eye, flip).item() == pytest.approx(180.0)
    t = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0]], dtype=torch.float64)
    t2 = torch.tensor([[-2.0, 0, 0], [0.0, 1, 0], [1.0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(translation_angle_deg(t, t2), torch.tensor([0.0, 90.0, 90.0], dtype=torch.float64))


def test_depth_metrics_known_values():
    gt = torch.tensor([[1.0, 2.0, 4.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    pred = torch.tensor([[1.1, 2.0, 2.0, 5.0], [2.0, 2.0, 2.0, 2.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    torch.testing.assert_close(depth_abs_rel(pred, gt, mask), torch.tensor([(0.1 + 0 + 0.5) / 3, 1.0]))
    torch.testing.assert_close(depth_delta1(pred, gt, mask), torch.tensor([2 / 3, 0.0]))
    torch.testing.assert_close(depth_abs_rel(pred, gt, mask, align_scale=True)[1], torch.tensor(0.0))
    empty = depth_abs_rel(pred, gt, torch.zeros_like(mask))
    assert torch.isnan(empty).all()
    assert depth_delta1(-pred, gt).eq(0).all()
    with pytest.raises(ValueError, match=r'\(2, 4\).*\(2, 3\)'):
        depth_abs_rel(pred, gt[:, :3])


def test_gradcheck_angles():
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    ra, rb = quaternion_xyzw_to_rotation_matrix(q), quaternion_xyzw_to_rotation_matrix(q + 0.3)
    assert gradcheck(rotation_angle_deg, (ra.requires_grad_(), rb.requires_grad_()))
    ta, tb = torch.randn(2, 3, 3, generator=gen, dtype=torch.float64).requires_grad_()
    assert gradcheck(translation_angle_deg, (ta, tb))
