"""FlexibleRunner strategies with safetensors checkpoints: exact resume, config checks, CPU DDP and FSDP."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from geokit.engine.checkpoint import load_checkpoint_safetensors
from geokit.engine.launch import prepare_config
from geokit.registry import STRATEGIES, check_config_types
from tests.tool_loader import load_tool

from .test_train_resume import CONFIG, PLUGIN, REPO, _final_loss, plugin_config  # noqa: F401

PAPER_CONFIGS = ['projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py',
                 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k_deepspeed-zero3.py',
                 'projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py']


@pytest.mark.parametrize('path', PAPER_CONFIGS)
def test_paper_strategy_configs_resolve(path):
    cfg = Config.fromfile(str(REPO / path))
    check_config_types(cfg.to_dict())
    assert cfg.runner_type == 'FlexibleRunner'
    assert STRATEGIES.get(cfg.strategy['type']) is not None
    if cfg.strategy['type'] == 'GeoKitFSDPStrategy':
        assert cfg.strategy['state_dict_cfg'] == 'full'
        assert cfg.default_hooks.checkpoint.filename_tmpl.endswith('.safetensors')


def test_pickling_strategy_is_refused_with_the_fix(tmp_path):
    cfg = Config(dict(runner_type='FlexibleRunner', strategy=dict(type='FSDPStrategy')))
    with pytest.raises(ValueError, match="GeoKitFSDPStrategy"):
        prepare_config(cfg, config_path=str(tmp_path / 'x.py'))


def test_flexible_runner_resume_is_exact(plugin_config, tmp_path):  # noqa: F811
    train = load_tool('train')
    flexible = ['runner_type=FlexibleRunner']
    straight = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'straight'), '--cfg-options', *flexible])
    # read now: runners built within the same second share mmengine's MessageHub instance (named by timestamp)
    straight_loss = _final_loss(straight)
    assert type(straight.strategy).__name__ == 'GeoKitSingleDeviceStrategy'
    checkpoint = load_checkpoint_safetensors(str(tmp_path / 'straight' / 'iter_12.safetensors'))
    assert checkpoint['meta']['iter'] == 12 and 'optimizer' in checkpoint

    train.main([str(plugin_config), '--work-dir', str(tmp_path / 'halves'), '--cfg-options', *flexible,
                'train_cfg.max_iters=6'])
    resumed = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'halves'), '--resume', '--cfg-options',
                          *flexible])
    assert resumed.iter == 12
    assert abs(_final_loss(resumed) - straight_loss) < 1e-6
    final = load_checkpoint_safetensors(str(tmp_path / 'halves' / 'iter_12.safetensors'))['state_dict']
    for key, value in checkpoint['state_dict'].items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6, msg=key)


def _torchrun(tmp_path: Path, work: str, nproc: int, batch_size: int, strategy: str, iters: int = 3,
              resume: bool = False) -> dict[str, torch.Tensor]:
    options = ['runner_type=FlexibleRunner', f'strategy.type={strategy}', f'train_dataloader.batch_size={batch_size}',
               f'train_cfg.max_iters={iters}', 'model.dropout=0.0', 'default_hooks.checkpoint.interval=3']
    if strategy == 'GeoKitFSDPStrategy':
        options.append('strategy.state_dict_cfg=full')
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', str(nproc),
               '--master-port', str(29700 + os.getpid() % 200), str(REPO / 'tools' / 'train.py'),
               str(tmp_path / 'user_config.py'), '--work-dir', str(tmp_path / work), '--launcher', 'pytorch',
               *(['--resume'] if resume else []), '--cfg-options', *options]
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
               OMP_NUM_THREADS='1')
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return load_checkpoint_safetensors(str(tmp_path / work / f'iter_{iters}.safetensors'))['state_dict']


@pytest.mark.parametrize('strategy', ['GeoKitDDPStrategy', 'GeoKitFSDPStrategy'])
def test_two_gloo_processes_match_one_process(tmp_path, strategy):
    (tmp_path / 'user_plugin.py').write_text(PLUGIN)
    (tmp_path / 'user_config.py').write_text(CONFIG.format(repo=REPO))
    single = _torchrun(tmp_path, 'single', nproc=1, batch_size=8, strategy=strategy)
    double = _torchrun(tmp_path, 'double', nproc=2, batch_size=4, strategy=strategy)
    assert set(single) == set(double)
    for key, value in single.items():
        torch.testing.assert_close(double[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_fsdp_resume_on_two_processes_is_exact(tmp_path):
    """The full (gathered) safetensors checkpoint of GeoKitFSDPStrategy resumes sharded model and optimizer state."""
    (tmp_path / 'user_plugin.py').write_text(PLUGIN)
    (tmp_path / 'user_config.py').write_text(CONFIG.format(repo=REPO))
    straight = _torchrun(tmp_path, 'straight', nproc=2, batch_size=4, strategy='GeoKitFSDPStrategy', iters=6)
    _torchrun(tmp_path, 'halves', nproc=2, batch_size=4, strategy='GeoKitFSDPStrategy', iters=3)
    resumed = _torchrun(tmp_path, 'halves', nproc=2, batch_size=4, strategy='GeoKitFSDPStrategy', iters=6,
                        resume=True)
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)
