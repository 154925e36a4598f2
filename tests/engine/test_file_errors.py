"""Unreadable checkpoints and cache shards: one InputFileError naming the file, the cause and the fix."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.engine.runner import load_checkpoint_file
from geokit.errors import InputFileError, InputFileNotFoundError
from geokit.models.teachers import OracleTeacher
from geokit.models.teachers.cached import read_shard


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_a_truncated_safetensors_checkpoint_names_its_path(tmp_path):
    path = tmp_path / 'iter_6.safetensors'
    save_checkpoint_safetensors({'state_dict': {'w': torch.ones(1000)}, 'meta': {'iter': 6}}, str(path))
    _truncate(path)
    with pytest.raises(InputFileError) as error:
        load_checkpoint_file(str(path))
    assert str(error.value).startswith(f'{path}: ') and 'truncated or corrupt' in str(error.value)
    assert 'Fix:' in str(error.value)


def test_a_truncated_pth_is_called_truncated_not_unsafe(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.ones(1000)}, path)
    _truncate(path)
    with pytest.raises(InputFileError) as error:
        load_checkpoint_file(str(path))
    assert str(path) in str(error.value) and 'truncated or corrupt' in str(error.value)
    assert 'arbitrary Python objects' not in str(error.value)


def test_a_missing_checkpoint_is_an_input_file_not_found_error(tmp_path):
    with pytest.raises(InputFileNotFoundError, match='nope.safetensors: checkpoint does not exist'):
        load_checkpoint_file(str(tmp_path / 'nope.safetensors'))


def test_a_truncated_cache_shard_names_its_path(tmp_path):
    path = tmp_path / 'shard.safetensors'
    save_file({'depth': torch.ones(4, 64, 64)}, str(path), metadata={'id': '"s0"'})
    _truncate(path, 0.9)
    with pytest.raises(InputFileError, match='shard.safetensors: cannot read this teacher-cache shard'):
        read_shard(path)


def test_the_oracle_without_geometry_suggests_the_right_fix():
    teacher = OracleTeacher(image_size=28, patch_size=14)
    frames = torch.zeros(1, 2, 28, 28, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"\['scene_7/video.mp4'\] have none.*load_geometry=True"):
        teacher(frames, [{'id': 7, 'video': 'scene_7/video.mp4'}], [None])


def test_a_truncated_teacher_checkpoint_names_its_path(tmp_path):
    from geokit.models.teachers.vggt.checkpoint import checkpoint_shapes
    path = tmp_path / 'model.safetensors'
    save_file({'aggregator.w': torch.ones(4000)}, str(path))
    _truncate(path)
    with pytest.raises(InputFileError, match='model.safetensors: cannot read this VGGT checkpoint'):
        checkpoint_shapes(path)
