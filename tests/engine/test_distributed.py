"""torchrun + mmengine DDP on CPU (gloo): two processes train exactly like one on the same global batch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from geokit.engine.checkpoint import load_checkpoint_safetensors

from .test_train_resume import CONFIG, PLUGIN, REPO


def _train(tmp_path: Path, work: str, nproc: int, batch_size: int) -> dict[str, torch.Tensor]:
    options = [f'train_dataloader.batch_size={batch_size}', 'train_cfg.max_iters=3', 'model.dropout=0.0',
               'default_hooks.checkpoint.interval=3']
    if nproc == 1:
        command = [sys.executable, str(REPO / 'tools' / 'train.py')]
        launcher = []
    else:
        command = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', str(nproc),
                   '--master-port', str(29500 + os.getpid() % 1000), str(REPO / 'tools' / 'train.py')]
        launcher = ['--launcher', 'pytorch']
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
               OMP_NUM_THREADS='1')
    result = subprocess.run(command + [str(tmp_path / 'user_config.py'), '--work-dir', str(tmp_path / work)]
                            + launcher + ['--cfg-options', *options], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return load_checkpoint_safetensors(str(tmp_path / work / 'iter_3.safetensors'))['state_dict']


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    (tmp_path / 'user_plugin.py').write_text(PLUGIN)
    (tmp_path / 'user_config.py').write_text(CONFIG.format(repo=REPO))
    single = _train(tmp_path, 'single', nproc=1, batch_size=8)
    double = _train(tmp_path, 'ddp', nproc=2, batch_size=4)
    for key, value in single.items():
        torch.testing.assert_close(double[key], value, rtol=1e-5, atol=1e-6, msg=key)
