"""safetensors checkpoints: round trip of everything a training state holds, without pickle."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from geokit.engine.checkpoint import load_checkpoint_safetensors, save_checkpoint_safetensors
from geokit.engine.runner import load_checkpoint_file


def _training_state():
    embedding = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight  # tied weights share storage
    model = torch.nn.Sequential(embedding, head)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([1, 2])).sum().backward()
    optimizer.step()
    return model, {
        'meta': {'iter': 6, 'epoch': 0, 'seed': 7, 'cfg': "model = dict(type='X')"},
        'state_dict': model.state_dict(),
        'optimizer': optimizer.state_dict(),
        'message_hub': {'log_scalars': {'train/loss': HistoryBuffer([1.0, 0.5], [1, 1], 10)},
                        'runtime_info': {'iter': 6, 'max_iters': 12}, 'resumed_keys': {'iter': True}},
        'rng_state': {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(), 'python': random.getstate()},
        'param_schedulers': [{'base_values': [1e-3], 'last_step': 6, 'by_epoch': False}],
    }


def test_round_trip_preserves_values_types_and_tied_storage(tmp_path):
    model, checkpoint = _training_state()
    path = tmp_path / 'iter_6.safetensors'
    save_checkpoint_safetensors(checkpoint, str(path))
    loaded = load_checkpoint_safetensors(str(path))

    assert loaded['meta'] == checkpoint['meta']
    for key, value in checkpoint['state_dict'].items():
        torch.testing.assert_close(loaded['state_dict'][key], value)
    assert loaded['state_dict']['0.weight'].data_ptr() == loaded['state_dict']['1.weight'].data_ptr()
    assert set(loaded['optimizer']['state']) == set(checkpoint['optimizer']['state'])  # int keys survive
    torch.testing.assert_close(loaded['optimizer']['state'][0]['exp_avg'],
                               checkpoint['optimizer']['state'][0]['exp_avg'])
    assert loaded['optimizer']['param_groups'][0]['betas'] == (0.9, 0.999)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 0.5
    numpy_state = loaded['rng_state']['numpy']
    assert numpy_state[0] == 'MT19937' and np.array_equal(numpy_state[1], checkpoint['rng_state']['numpy'][1])
    assert loaded['rng_state']['python'][1] == checkpoint['rng_state']['python'][1]
    assert loaded['param_schedulers'] == checkpoint['param_schedulers']

    restored = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    restored.load_state_dict(loaded['state_dict'])
    torch.testing.assert_close(restored[1].weight, model[1].weight)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    _, checkpoint = _training_state()
    save_checkpoint_safetensors(checkpoint, str(tmp_path / 'a.safetensors'))
    assert [p.name for p in tmp_path.iterdir()] == ['a.safetensors']


def test_pickled_checkpoints_are_refused_with_a_fix(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'state_dict': {}, 'meta': {'history': HistoryBuffer([1.0], [1], 5)}}, path)
    with pytest.raises(RuntimeError, match='never unpickles untrusted files'):
        load_checkpoint_file(str(path))


def test_plain_weights_pth_still_loads(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.ones(2)}, path)
    assert torch.equal(load_checkpoint_file(str(path))['state_dict']['w'], torch.ones(2))
