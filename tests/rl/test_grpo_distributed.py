"""GRPO under torchrun with two CPU (gloo) processes: mmengine DDP and geokit's FSDP strategy. Rollouts run inside
the wrapped forward (generate with synced_gpus), the step trains, the checkpoint is one safetensors file."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from geokit.datasets import ensure_synthvsi
from geokit.engine.checkpoint import load_checkpoint_safetensors

from .test_grpo_resume import CONFIG, REPO

pytestmark = pytest.mark.slow  # end-to-end training runs

STRATEGY_OPTIONS = {
    'ddp': [],
    'fsdp': ['runner_type=FlexibleRunner', 'strategy.type=GeoKitFSDPStrategy', 'strategy.state_dict_cfg=full'],
}


@pytest.mark.parametrize('strategy', sorted(STRATEGY_OPTIONS))
def test_grpo_trains_on_two_gloo_processes(tmp_path, strategy):
    data = ensure_synthvsi(tmp_path / 'data', num_scenes=3, frames=4, resolution=(32, 48), seed=0)
    config = tmp_path / 'grpo_tiny.py'
    config.write_text(CONFIG.format(repo=REPO, data=data))
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2',
               '--master-port', str(29900 + os.getpid() % 90), str(REPO / 'tools' / 'train.py'), str(config),
               '--work-dir', str(tmp_path / 'work'), '--launcher', 'pytorch', '--cfg-options',
               'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', *STRATEGY_OPTIONS[strategy]]
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{os.environ.get("PYTHONPATH", "")}', OMP_NUM_THREADS='1')
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = load_checkpoint_safetensors(str(tmp_path / 'work' / 'iter_2.safetensors'))['state_dict']
    assert int(state['rollout_step']) == 2
    assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
