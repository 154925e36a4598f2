"""The shift-direction learnability probe and the from-scratch initialisation options of the VGGT aggregator."""
from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from geokit.models.teachers.direction_probe import direction_probe, shifted_pairs, windowed_accuracy
from geokit.models.teachers.vggt.aggregator import Aggregator
from geokit.models.teachers.vggt.model import VGGTNet
from geokit.registry import DATASETS

from .conftest import TINY_VGGT, plane_scene

REPO = Path(__file__).resolve().parents[2]
NET = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}


@DATASETS.register_module(force=True)
class _DirectionProbePlanes(Dataset):
    """Two synthetic 56 x 56 videos (test-only)."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> dict:
        return plane_scene(num_frames=3, height=56, width=56, seed=index)


def test_shifted_pairs_roll_by_direction():
    images = torch.rand(2, 3, 8, 10)
    pairs = shifted_pairs(images, torch.tensor([1, -1]), shift=3)
    assert pairs.shape == (2, 2, 3, 8, 10)
    assert torch.equal(pairs[:, 0], images)
    assert torch.equal(pairs[0, 1, ..., 3:], images[0, ..., :-3])  # moved right: column x shows x - 3
    assert torch.equal(pairs[1, 1, ..., :-3], images[1, ..., 3:])  # moved left
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
    spec = importlib.util.spec_from_file_location('probe_teacher_direction',
                                                  REPO / 'tools' / 'probe_teacher_direction.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    result = tool.main([str(config), '--steps', '2', '--batch-size', '2', '--shift', '5', '--token-init-std', '1',
                        '--work-dir', str(tmp_path / 'out')])
    saved = json.loads((tmp_path / 'out' / 'direction_probe.json').read_text())
    assert saved == json.loads(json.dumps(result))
    assert result['frames'] == 6 and result['net']['token_init_std'] == 1.0
    assert len(result['accuracy_per_50_steps']) == 1 and 0.0 <= result['accuracy_per_50_steps'][0] <= 1.0
