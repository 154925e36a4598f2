"""Shared fixtures for the model tests: tiny samples, a fake teacher, tiny GeometricMLLM configs."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

NUM_FRAMES, SIZE = 4, 64
TEACHER_HW, TEACHER_GRID, TEACHER_DIM = (32, 32), (4, 4), 16
TEACHER_LAYERS, TEACHER_DEPTH = (1, 3), 4
QUESTIONS = [('How many chair(s) are in this room?', '3'), ('What is the size of this room (in square meters)?',
                                                            '12.5')]


def make_sample(seed: int, num_frames: int = NUM_FRAMES, size: int = SIZE) -> dict:
    g = torch.Generator().manual_seed(seed)
    question, answer = QUESTIONS[seed % len(QUESTIONS)]
    return {
        'frames': torch.randint(0, 256, (num_frames, size, size, 3), dtype=torch.uint8, generator=g),
        'frame_indices': torch.arange(num_frames) * 3,
        'conversations': [{'from': 'human', 'value': f'<video>\n{question}'}, {'from': 'gpt', 'value': answer}],
        'meta': {'id': f's{seed}', 'dataset': 'fake', 'scene_name': f'scene{seed}', 'question_type': 'x',
                 'options': None, 'ground_truth': answer, 'video': 'v.mp4'},
        'geometry': None,
    }


@TEACHERS.register_module(force=True)
class FakeTeacher(nn.Module):
    """Deterministic targets computed from the frames (so a model can fit them); test-only."""

    def __init__(self, feature_layers=TEACHER_LAYERS, dim: int = TEACHER_DIM) -> None:
        super().__init__()
        self.feature_layers, self.dim = tuple(feature_layers), dim
        self.register_buffer('proj', torch.randn(3, dim, generator=torch.Generator().manual_seed(0)))

    @torch.no_grad()
    def forward(self, frames, meta, geometry) -> TeacherTargets:
        x = frames.float().div(255).permute(0, 1, 4, 2, 3)                    # (B, T, 3, H, W)
        b, t = x.shape[:2]
        small = nn.functional.interpolate(x.flatten(0, 1), size=TEACHER_HW, mode='area').unflatten(0, (b, t))
        depth = 1 + small.mean(2)                                              # (B, T, H, W)
        grid = nn.functional.interpolate(x.flatten(0, 1), size=TEACHER_GRID, mode='area')
        feat = (grid.permute(0, 2, 3, 1) @ self.proj).unflatten(0, (b, t))     # (B, T, h, w, C)
        mean = x.mean((2, 3, 4))                                               # (B, T)
        pose = torch.stack([mean * k for k in range(1, 10)], -1)
        return TeacherTargets(pose_enc=pose, depth=depth, depth_conf=torch.ones_like(depth) * 2,
                              features={layer: feat * (i + 1) for i, layer in enumerate(self.feature_layers)},
                              metric_scale=1 + mean.mean(1), image_hw=TEACHER_HW)


OBJECTIVES = {
    'pose': dict(name='pose', tap=dict(tokens='camera'), head=dict(type='CameraHead'),
                 loss=dict(type='CameraPoseLoss', loss_weight=2.5)),
    'depth': dict(name='depth', tap=dict(tokens='video', teacher_layers=[0, 1, 2, 3], teacher_num_layers=4),
                  head=dict(type='DPTDepthHead', features=16, out_channels=[8, 16, 32, 32]),
                  loss=dict(type='ConfidenceDepthLoss')),
    'scale': dict(name='scale', tap=dict(tokens='scale'), head=dict(type='ScaleHead'),
                  loss=dict(type='MetricScaleLoss')),
    'align': dict(name='align', tap=dict(tokens='video', teacher_layers=list(TEACHER_LAYERS),
                                         teacher_num_layers=TEACHER_DEPTH),
                  head=dict(type='FeatureAlignmentHead', out_channels=TEACHER_DIM, num_layers=len(TEACHER_LAYERS)),
                  loss=dict(type='FeatureAlignmentLoss')),
}


def model_config(backbone: str = 'Qwen3VLBackbone', objectives=('pose', 'depth', 'scale', 'align'), **kwargs):
    path = {'Qwen3VLBackbone': 'geokit://mllms/tiny-qwen3vl', 'Qwen25VLBackbone': 'geokit://mllms/tiny-qwen2_5vl'}
    cfg = dict(type='GeometricMLLM', backbone=dict(type=backbone, path=path[backbone], load_weights=False),
               teacher=dict(type='FakeTeacher'), objectives=[copy.deepcopy(OBJECTIVES[o]) for o in objectives],
               max_new_tokens=4)
    cfg.update(kwargs)
    return cfg


@pytest.fixture
def samples():
    return [make_sample(0), make_sample(1)]
