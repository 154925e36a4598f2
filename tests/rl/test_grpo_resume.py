"""GRPO through tools/train.py on the embedded Spatial-MLLM config: resuming mid-run reproduces the uninterrupted run
bitwise (weights, logged rewards and losses), sampling included."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from geokit.datasets import ensure_synthvsi

from ..tool_loader import load_tool

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
    train = load_tool('train')
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


def test_grpo_starts_from_an_sft_checkpoint_under_strict_loading(config, tmp_path):
    """``load_from`` an SFT checkpoint (no rollout counter) loads strictly; the run then starts at rollout 0."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from geokit.engine.checkpoint import save_checkpoint_safetensors
    from geokit.registry import MODELS

    init_default_scope('geokit')
    sft_cfg = Config.fromfile(str(REPO / 'projects' / 'spatial_mllm' / 'config.py'))
    sft = MODELS.build(dict(sft_cfg.model, teacher=None, scale_teacher=None))
    sft_path = tmp_path / 'sft.safetensors'
    save_checkpoint_safetensors({'state_dict': sft.state_dict(), 'meta': {}}, str(sft_path))
    runner = load_tool('train').main([str(config), '--work-dir', str(tmp_path / 'from_sft'), '--cfg-options',
                                 f'load_from={sft_path}', 'train_cfg.max_iters=1'])
    assert runner.iter == 1 and int(runner.model.rollout_step) == 1
    broken = {k: v for k, v in sft.state_dict().items() if not k.startswith('fusion.connector')}
    save_checkpoint_safetensors({'state_dict': broken, 'meta': {}}, str(sft_path))
    with pytest.raises(Exception, match='missing keys: fusion.connector'):
        load_tool('train').main([str(config), '--work-dir', str(tmp_path / 'broken'), '--cfg-options',
                            f'load_from={sft_path}', 'train_cfg.max_iters=1'])
