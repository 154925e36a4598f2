"""tools/cache_teacher.py + CachedTeacher: cached targets equal online targets; resumable, atomic."""
from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from geokit.models.teachers import CachedTeacher, VGGTTeacher
from geokit.models.teachers.cached import pool_features
from geokit.registry import DATASETS

from .conftest import TINY_VGGT, plane_scene

REPO = Path(__file__).resolve().parents[2]


@DATASETS.register_module(force=True)
class _TeacherCachePlanes(Dataset):
    """Three synthetic videos with ground truth (test-only)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        return plane_scene(num_frames=2 + index % 2, height=42, width=56, seed=index)


def _load_tool():
    spec = importlib.util.spec_from_file_location('cache_teacher', REPO / 'tools' / 'cache_teacher.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config_file(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / 'tiny.safetensors'
    from geokit.models.teachers.vggt import save_vggt_weights
    save_vggt_weights(VGGTTeacher(**TINY_VGGT).net, weights)
    path = tmp_path / 'cfg.py'
    path.write_text(textwrap.dedent(f'''
        default_scope = 'geokit'
        teacher = dict(type='VGGTTeacher', load_from={str(weights)!r}, **{TINY_VGGT!r})
        train_dataloader = dict(dataset=dict(type='_TeacherCachePlanes'))
    '''))
    return path, weights


@pytest.mark.parametrize('pool', [1, 2])
def test_cached_targets_equal_online(tmp_path, config_file, pool):
    cfg_path, weights = config_file
    tool = _load_tool()
    out = tmp_path / f'cache{pool}'
    summary = tool.main([str(cfg_path), '--out', str(out), '--pool', str(pool), '--device', 'cpu'])
    assert summary['written'] == 3 and summary['bytes_per_sample'] > 0
    assert not list(out.glob('*.tmp')) and not list(out.glob('.*.tmp'))
    again = tool.main([str(cfg_path), '--out', str(out), '--pool', str(pool), '--device', 'cpu'])
    assert again['written'] == 0 and again['skipped'] == 3  # resumable: done shards are skipped

    online_teacher = VGGTTeacher(load_from=weights, **TINY_VGGT)
    cached_teacher = CachedTeacher(cache_dir=out)
    dataset = _TeacherCachePlanes()
    for index in range(len(dataset)):
        sample = dataset[index]
        meta = dict(sample['meta'], frame_indices=sample['frame_indices'].tolist())
        online = online_teacher(sample['frames'][None], [meta], [sample['geometry']])
        cached = cached_teacher(sample['frames'][None], [meta], [sample['geometry']])
        for name in ('pose_enc', 'depth', 'depth_conf'):
            assert torch.equal(getattr(online, name), getattr(cached, name)), name
        assert cached.image_hw == online.image_hw and sorted(cached.features) == sorted(online.features)
        for layer, feature in online.features.items():
            expected = pool_features(feature[0], pool).half().float()
            assert torch.equal(cached.features[layer][0], expected)
        # without frame indices, a sample id with a single shard is still found
        assert torch.equal(cached_teacher(None, [sample['meta']], [None]).depth, online.depth)


def test_cache_refuses_other_settings_and_missing(tmp_path, config_file):
    cfg_path, _ = config_file
    tool = _load_tool()
    out = tmp_path / 'cache'
    tool.main([str(cfg_path), '--out', str(out), '--layers', '1', '--max-samples', '1', '--device', 'cpu'])
    assert json.loads((out / 'cache_info.json').read_text())['feature_layers'] == [1]
    with pytest.raises(ValueError, match='different settings'):
        tool.main([str(cfg_path), '--out', str(out), '--pool', '2', '--device', 'cpu'])
    teacher = CachedTeacher(cache_dir=out)
    with pytest.raises(FileNotFoundError, match='cache_teacher'):
        teacher(None, [dict(id='plane-2', frame_indices=[0, 3])], [None])
    with pytest.raises(FileNotFoundError, match='cache_teacher'):
        CachedTeacher(cache_dir=tmp_path / 'nothing')
