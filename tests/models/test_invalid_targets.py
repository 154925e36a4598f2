"""Bad values never reach an objective: NaN/inf targets are masked, samples without a valid pixel are excluded,
and the model's guard names the sample whose target is still not finite."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from geokit.registry import MODELS, TEACHERS
from geokit.structures import TeacherTargets

from .conftest import FakeTeacher, make_sample, model_config


@TEACHERS.register_module(force=True)
class PoisonedTeacher(nn.Module):
    """FakeTeacher's targets with NaN/inf in them, as a broken teacher or ground truth would give; test-only."""

    def __init__(self, poison: str) -> None:
        super().__init__()
        self.inner, self.poison = FakeTeacher(), poison

    def forward(self, frames, meta, geometry) -> TeacherTargets:
        targets = self.inner(frames, meta, geometry)
        depth, pose = targets.depth.clone(), targets.pose_enc.clone()
        if self.poison == 'depth':
            depth[0].view(-1)[::100] = float('nan')  # 1 % of sample 0
            depth[1, 2] = float('inf')                # a whole frame of sample 1
        elif self.poison == 'pose':
            pose[1, 0, 0] = float('nan')              # sample 1 is unusable for every objective
        elif self.poison == 'all':
            depth[:] = float('nan')
        elif self.poison == 'first sample':
            depth[0] = float('nan')
        targets.depth, targets.pose_enc = depth, pose
        return targets


@pytest.mark.parametrize('poison', ['depth', 'pose', 'all'])
def test_losses_stay_finite_and_trainable_with_invalid_targets(poison):
    torch.manual_seed(0)
    model = MODELS.build(model_config(teacher=dict(type='PoisonedTeacher', poison=poison)))
    data = model.data_preprocessor([make_sample(0, size=32), make_sample(1, size=32)], True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert all(torch.isfinite(v).all() for v in losses.values()), {k: float(v) for k, v in losses.items()}
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_masked_invalid_masks_pixels_and_excludes_unusable_samples():
    depth = torch.ones(3, 2, 4, 4)
    depth[0, 0, 0, 0] = float('nan')
    depth[2] = float('inf')
    targets = TeacherTargets(pose_enc=torch.zeros(3, 2, 9), depth=depth, depth_conf=torch.ones_like(depth),
                             metric_scale=torch.tensor([2.0, float('nan'), 1.0]),
                             features={4: torch.zeros(3, 2, 1, 1, 8)})
    clean = targets.masked_invalid(['a.mp4', 'b.mp4', 'c.mp4'])
    assert clean.sample_valid.tolist() == [True, False, False]
    assert clean.depth[0, 0, 0, 0] == 0 and clean.depth_conf[0, 0, 0, 0] == 0 and clean.depth_conf[0].sum() == 31
    assert all(torch.isfinite(t).all() for t in (clean.depth, clean.depth_conf, clean.metric_scale))
    clean.check_finite(['a.mp4', 'b.mp4', 'c.mp4'])


def test_the_guard_names_the_sample_with_a_non_finite_target():
    targets = TeacherTargets(pose_enc=torch.zeros(2, 2, 9), metric_scale=torch.tensor([1.0, float('inf')]))
    with pytest.raises(ValueError, match='metric_scale of scene_b.mp4 is not finite'):
        targets.check_finite(['scene_a.mp4', 'scene_b.mp4'])


def test_a_sample_without_valid_teacher_depth_gets_no_made_up_metric_scale():
    """The scale alignment used to return exactly 1.0 for a video whose depth was all NaN."""
    model = MODELS.build(model_config(teacher=dict(type='PoisonedTeacher', poison='first sample'),
                                      scale_teacher=dict(type='FakeTeacher')))
    data = model.data_preprocessor([make_sample(0, size=32), make_sample(1, size=32)], True)
    targets = model._teacher_targets(data['data_samples'])
    assert targets.sample_valid.tolist() == [False, True]
    assert float(targets.metric_scale[1]) != 1.0
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
