"""The shift-direction learnability probe and the from-scratch initialisation options of the VGGT aggregator."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

from geokit.geometry.pose_encoding import extrinsics_intrinsics_to_pose_encoding
from geokit.models.teachers.vggt.aggregator import Aggregator
from geokit.models.teachers.vggt.model import VGGTNet
from geokit.registry import DATASETS, HOOKS
from projects.tiny_teacher.tiny_teacher import PanPretrainHook, VGGTGeometryModel
from projects.tiny_teacher.tiny_teacher.direction_probe import (
    QY_INDEX,
    direction_probe,
    shifted_pairs,
    windowed_accuracy,
)

from ...teachers.conftest import TINY_VGGT, plane_scene
from ...tool_loader import load_tool

REPO = Path(__file__).resolve().parents[3]
PROJECT_TOOLS = REPO / 'projects' / 'tiny_teacher' / 'tools'
NET = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}


@DATASETS.register_module(force=True)
class _DirectionProbePlanes(Dataset):
    """Two synthetic 56 x 56 videos (test-only)."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> dict:
        return plane_scene(num_frames=3, height=56, width=56, seed=index)


def test_shifted_pairs_are_seamless_crops_moved_by_direction():
    images = torch.rand(2, 3, 8, 20)
    pairs = shifted_pairs(images, torch.tensor([1, -1]), shift=3)
    assert pairs.shape == (2, 2, 3, 8, 14)
    assert torch.equal(pairs[:, 0], images[..., 3:17])
    assert torch.equal(pairs[0, 1], images[0, ..., 6:20])  # view moved right
    assert torch.equal(pairs[1, 1], images[1, ..., 0:14])  # view moved left
    assert torch.equal(pairs[0, 1, ..., :-3], pairs[0, 0, ..., 3:])  # shared content, shifted: no wrapped column
    snapped = shifted_pairs(images, torch.tensor([1, 1]), shift=3, multiple=4)
    assert snapped.shape[-1] == 12 and torch.equal(snapped[0, 0], images[0, ..., 4:16])
    with pytest.raises(ValueError, match='shift must be'):
        shifted_pairs(images, torch.tensor([1, 1]), shift=10)
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        shifted_pairs(images[0], torch.tensor([1]), shift=1)


def test_token_init_std_and_init_values_change_only_the_initialisation():
    torch.manual_seed(0)
    default = Aggregator(img_size=56, embed_dim=32, depth=1, num_heads=2, patch_embed='conv')
    scratch = Aggregator(img_size=56, embed_dim=32, depth=1, num_heads=2, patch_embed='conv', init_values=1.0,
                         token_init_std=1.0)
    assert default.camera_token.abs().max() < 1e-4 and 0.5 < scratch.register_token.std() < 1.5
    assert torch.allclose(scratch.frame_blocks[0].ls1.gamma, torch.ones(32))
    assert torch.allclose(default.frame_blocks[0].ls1.gamma, torch.full((32,), 0.01))
    shapes = lambda module: {k: tuple(v.shape) for k, v in module.state_dict().items()}  # noqa: E731
    assert shapes(default) == shapes(scratch)  # same checkpoint layout


@pytest.mark.parametrize('readout', ['camera-token', 'camera-head'])
def test_direction_probe_trains_the_network(readout):
    torch.manual_seed(0)
    net = VGGTNet(**NET)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images = torch.rand(4, 3, 56, 56)
    accuracies = direction_probe(net, images, shift=7, steps=3, batch_size=4, readout=readout, progress=False)
    assert len(accuracies) == 3 and all(0.0 <= a <= 1.0 for a in accuracies)
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith('aggregator.') for k in changed)
    assert any(k.startswith('camera_head.') for k in changed) == (readout == 'camera-head')
    with pytest.raises(ValueError, match='readout must be one of'):
        direction_probe(net, images, shift=7, steps=1, readout='depth', progress=False)


def test_windowed_accuracy():
    assert windowed_accuracy([1.0, 0.0, 1.0, 1.0, 0.5], window=2) == [0.5, 1.0, 0.5]
    with pytest.raises(ValueError, match='window'):
        windowed_accuracy([1.0], window=0)


def test_probe_tool_writes_accuracies(tmp_path):
    config = tmp_path / 'probe_cfg.py'
    config.write_text(textwrap.dedent(f'''
        default_scope = 'geokit'
        model = dict(type='VGGTGeometryModel', net={NET!r}, image_size=56, mode='crop')
        train_dataloader = dict(dataset=dict(type='_DirectionProbePlanes'))
    '''))
    tool = load_tool('probe_teacher_direction', PROJECT_TOOLS)
    result = tool.main([str(config), '--steps', '2', '--batch-size', '2', '--shift', '5', '--token-init-std', '1',
                        '--work-dir', str(tmp_path / 'out')])
    saved = json.loads((tmp_path / 'out' / 'direction_probe.json').read_text())
    assert saved == json.loads(json.dumps(result))
    assert result['frames'] == 6 and result['net']['token_init_std'] == 1.0
    assert len(result['accuracy_per_50_steps']) == 1 and 0.0 <= result['accuracy_per_50_steps'][0] <= 1.0


def _runner(model, iteration: int = 0):
    dataloader = SimpleNamespace(dataset=_DirectionProbePlanes())
    return SimpleNamespace(model=model, iter=iteration, train_dataloader=dataloader)


def test_pan_pretrain_hook_trains_the_vggt_once_and_skips_on_resume():
    torch.manual_seed(0)
    model = VGGTGeometryModel(net=NET, image_size=56, mode='crop')
    hook = HOOKS.build(dict(type='PanPretrainHook', shift=7, steps=2, batch_size=2, videos=2))
    before = {k: v.clone() for k, v in model.vggt.state_dict().items()}
    hook.before_train(_runner(model, iteration=5))  # resumed: nothing to do
    assert all(torch.equal(v, before[k]) for k, v in model.vggt.state_dict().items())
    hook.before_train(_runner(model))
    changed = {k.split('.')[0] for k, v in model.vggt.state_dict().items() if not torch.equal(v, before[k])}
    assert {'aggregator', 'camera_head'} <= changed


def test_pan_pretrain_hook_rejects_models_without_a_vggt():
    hook = PanPretrainHook(steps=1)
    with pytest.raises(TypeError, match='VGGTGeometryModel'):
        hook.before_train(_runner(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match='steps >= 1'):
        PanPretrainHook(steps=0)


def test_a_camera_turned_right_has_negative_qy():
    """The camera-head readout's sign convention: a view moved right is a camera turned right, ``qy < 0``."""
    turn = torch.tensor(0.3)  # the camera's forward axis turns towards its +x (right) by 0.3 rad
    cam_to_world = torch.tensor([[turn.cos(), 0.0, turn.sin()], [0.0, 1.0, 0.0], [-turn.sin(), 0.0, turn.cos()]])
    extrinsics = torch.cat([cam_to_world.T, torch.zeros(3, 1)], dim=-1)
    pose_enc = extrinsics_intrinsics_to_pose_encoding(extrinsics, torch.eye(3) * 50, (100, 100))
    assert pose_enc[QY_INDEX] < -0.1


def test_pan_curriculum_config_builds_its_hooks_and_a_from_scratch_model():
    from geokit.engine.launch import load_config
    from geokit.registry import MODELS

    cfg = load_config(str(REPO / 'projects' / 'tiny_teacher' / 'configs' / 'vggt_tiny_synthvsi_pan.py'))
    hooks = [HOOKS.build(hook) for hook in cfg.custom_hooks]
    assert [type(h).__name__ for h in hooks] == ['RNGStateHook', 'PanPretrainHook']
    model = MODELS.build(cfg.model)
    assert torch.allclose(model.vggt.aggregator.frame_blocks[0].ls1.gamma, torch.ones(64))
