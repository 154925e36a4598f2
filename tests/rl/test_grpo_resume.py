"""GRPO through tools/train.py on the embedded Spatial-MLLM config: resuming mid-run reproduces the uninterrupted run
bitwise (weights, logged rewards and losses), sampling included."""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch

from geokit.datasets import ensure_synthvsi

pytestmark = pytest.mark.slow  # end-to-end training runs

REPO = Path(__file__).resolve().parents[2]

CONFIG = textwrap.dedent('''
    _base_ = ['{repo}/projects/spatial_mllm/grpo.py']
    load_from = None                     # a random policy resumes just as exactly as a trained one
    model = dict(grpo=dict(group_size=2, max_new_tokens=3, temperature=1.5))
    train_dataloader = dict(batch_size=1, dataset=dict(data_root='{data}', generate_if_missing=None,
                                                       frame_sampler=dict(num_frames=4)))
    val_cfg = None
    val_dataloader = None
    val_evaluator = None
    max_iters = 4
    train_cfg = dict(max_iters=max_iters, val_interval=1000)
    param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)]
    optim_wrapper = dict(optimizer=dict(lr=1e-3))
    default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    log_level = 'WARNING'
''')


def _train_tool():
    spec = importlib.util.spec_from_file_location('geokit_train_tool_rl', REPO / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> Path:
    data = ensure_synthvsi(tmp_path_factory.mktemp('synthvsi') / 'data', num_scenes=3, frames=4,
                           resolution=(32, 48), seed=0)
    path = tmp_path_factory.mktemp('cfg') / 'grpo_tiny.py'
    path.write_text(CONFIG.format(repo=REPO, data=data))
    return path


def _history(runner, key: str) -> list[float]:
    return [float(v) for v in runner.message_hub.get_scalar(f'train/{key}').data[0]]


def test_resume_mid_grpo_is_exact(config, tmp_path):
    train = _train_tool()
    straight = train.main([str(config), '--work-dir', str(tmp_path / 'straight')])
    train.main([str(config), '--work-dir', str(tmp_path / 'halves'), '--cfg-options', 'train_cfg.max_iters=2'])
    resumed = train.main([str(config), '--work-dir', str(tmp_path / 'halves'), '--resume'])
    assert resumed.iter == straight.iter == 4
    assert int(resumed.model.rollout_step) == 4
    for key in ('reward', 'completion_length', 'loss', 'grad_norm'):
        assert _history(resumed, key) == _history(straight, key), key
    assert len(set(_history(straight, 'completion_length')) | set(_history(straight, 'reward'))) > 1
    weights = straight.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    initial = train.main([str(config), '--work-dir', str(tmp_path / 'zero'), '--cfg-options',
                          'train_cfg.max_iters=0']).model.state_dict()
    changed = sum(not torch.equal(initial[name], value) for name, value in weights.items())
    assert changed > 0                                                   # the run trained something
