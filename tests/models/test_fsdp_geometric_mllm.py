"""GeometricMLLM under FSDP (the paper configs' strategy) on 2 gloo CPU processes: the same weights as 1 process.

Each process trains on half of the same global batch; the samples have equal token counts (one-digit answers,
equal frame counts), so the mean of the per-process losses is the global mean and the weights must agree.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from geokit.engine.checkpoint import load_checkpoint_safetensors

from .conftest import model_config

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent('''
    """Tiny video QA samples of equal length for the FSDP check (test-only)."""
    from torch.utils.data import Dataset

    from geokit.registry import DATASETS
    from tests.models.conftest import make_sample


    @DATASETS.register_module()
    class EqualLengthVideoQA(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, index):
            sample = make_sample(index)
            sample['conversations'][0]['value'] = '<video>\\nHow many chair(s) are in this room?'
            sample['conversations'][1]['value'] = str(index % 9 + 1)
            return sample
''')

CONFIG = textwrap.dedent('''
    _base_ = ['{repo}/configs/_base_/default_runtime.py', '{repo}/configs/_base_/strategies.py']
    custom_imports = dict(imports=['geokit.models', 'tests.models.conftest', 'fsdp_plugin'],
                          allow_failed_imports=False)
    model = {model!r}
    train_dataloader = dict(batch_size=2, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
                            sampler=dict(type='InfiniteSampler', shuffle=False),
                            dataset=dict(type='EqualLengthVideoQA'))
    optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.0),
                         paramwise_cfg=dict(bypass_duplicate=True))
    param_scheduler = []
    train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
    val_cfg = None
    val_dataloader = None
    runner_type = 'FlexibleRunner'
    # the paper configs' policy wraps every block of >= 1e7 parameters; 1e3 wraps the tiny model's blocks the same way
    strategy = dict(type='GeoKitFSDPStrategy', state_dict_cfg='full', model_wrapper=dict(
        sharding_strategy='SHARD_GRAD_OP', use_orig_params=True,
        auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy', min_num_params=1000)))
    default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    randomness = dict(seed=3)
''')


def _train(tmp_path: Path, work: str, nproc: int, batch_size: int) -> dict[str, torch.Tensor]:
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', str(nproc),
               '--master-port', str(29300 + os.getpid() % 200 + nproc), str(REPO / 'tools' / 'train.py'),
               str(tmp_path / 'fsdp_config.py'), '--work-dir', str(tmp_path / work), '--launcher', 'pytorch',
               '--cfg-options', f'train_dataloader.batch_size={batch_size}']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO), os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1')
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return load_checkpoint_safetensors(str(tmp_path / work / 'iter_2.safetensors'))['state_dict']


@pytest.mark.slow
def test_geometric_mllm_fsdp_on_two_processes_matches_one(tmp_path):
    model = model_config()
    (tmp_path / 'fsdp_plugin.py').write_text(PLUGIN)
    (tmp_path / 'fsdp_config.py').write_text(CONFIG.format(repo=REPO, model=model))
    single = _train(tmp_path, 'single', nproc=1, batch_size=2)
    double = _train(tmp_path, 'double', nproc=2, batch_size=1)
    assert set(single) == set(double) and any(key.startswith('heads.') for key in single)
    # Plain SGD keeps the step linear in the gradient, so the all-reduce order only adds float rounding (AdamW's
    # normalised first step turns the rounding noise of a ~0 gradient into a step of up to lr). A wrong reduction
    # (sum instead of mean, a missing rank) changes the step by its whole size.
    for key, value in single.items():
        torch.testing.assert_close(double[key], value, rtol=0, atol=1e-6, msg=key)
    # the tolerance can tell a missing rank: one process on half of each batch ends far from the full-batch weights
    half = _train(tmp_path, 'half', nproc=1, batch_size=1)
    assert max((half[k] - v).abs().max().item() for k, v in single.items()) > 1e-3
