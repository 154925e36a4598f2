"""The scale teacher's metric scale: the teacher's depth aligned to the reference's metric depth (known values)."""
from __future__ import annotations

import math

import pytest
import torch

from geokit.models.teachers.metric_scale import metres_per_teacher_unit, with_reference_metric_scale
from geokit.structures import TeacherTargets


def _depth(batch: int = 2) -> torch.Tensor:
    return torch.linspace(0.5, 4.0, batch * 2 * 3 * 3).reshape(batch, 2, 3, 3)


def test_reference_scale_is_metres_per_teacher_unit():
    teacher_depth = _depth()
    reference_depth = 2 * teacher_depth                  # reference units: two per teacher unit ...
    reference_depth[1] = 0                                # ... except video 1, which has no valid pixel
    reference = TeacherTargets(depth=reference_depth, metric_scale=torch.tensor([3.0, 5.0]))  # ... 3 m each
    targets = TeacherTargets(depth=teacher_depth, metric_scale=torch.tensor([9.0, 9.0]),
                             pose_enc=torch.zeros(2, 2, 9))
    out = with_reference_metric_scale(targets, reference)
    assert out.metric_scale[0].item() == pytest.approx(6.0, rel=1e-5) and math.isnan(out.metric_scale[1].item())
    assert out.depth is targets.depth and out.pose_enc is targets.pose_enc       # only metric_scale changes
    assert targets.metric_scale.tolist() == [9.0, 9.0]


def test_alignment_is_robust_to_outliers_and_honours_the_mask():
    teacher_depth = _depth(1)
    metric = 4 * teacher_depth
    metric[0, 0, 0, 0] = 1000.0                         # one wild pixel
    assert metres_per_teacher_unit(teacher_depth, metric).item() == pytest.approx(4.0, rel=1e-3)
    valid = torch.ones_like(metric, dtype=torch.bool)
    valid[0, 0, 0, 0] = False
    assert metres_per_teacher_unit(teacher_depth, metric, valid).item() == pytest.approx(4.0, rel=1e-6)


def test_mismatched_grids_and_missing_fields_are_errors():
    targets = TeacherTargets(depth=_depth())
    with pytest.raises(ValueError, match='same image_size/mode'):
        with_reference_metric_scale(targets, TeacherTargets(depth=_depth()[..., :2], metric_scale=torch.ones(2)))
    with pytest.raises(ValueError, match=r"model.scale_teacher needs teacher targets \['metric_scale'\]"):
        with_reference_metric_scale(targets, TeacherTargets(depth=_depth()))
