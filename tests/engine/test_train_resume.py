"""tools/train.py end to end on a user plug-in model: exact resume, safetensors checkpoints."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from ..tool_loader import load_tool

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent('''
    """A user's own model and dataset, registered from outside the geokit package."""
    import torch
    from mmengine.model import BaseModel
    from torch.utils.data import Dataset

    from geokit.registry import DATASETS, LOSSES, MODELS


    @LOSSES.register_module()
    class UserHuberLoss(torch.nn.Module):
        def __init__(self, loss_weight=1.0, delta=0.5):
            super().__init__()
            self.loss_weight, self.delta = loss_weight, delta

        def forward(self, pred, target):
            return self.loss_weight * torch.nn.functional.huber_loss(pred, target, delta=self.delta)


    @DATASETS.register_module()
    class UserRegressionSet(Dataset):
        def __init__(self, size=64, dim=8):
            generator = torch.Generator().manual_seed(1234)
            self.x = torch.randn(size, dim, generator=generator)
            self.y = self.x.sum(-1, keepdim=True).sin()

        def __len__(self):
            return len(self.x)

        def __getitem__(self, index):
            return dict(x=self.x[index], y=self.y[index])


    @MODELS.register_module()
    class UserDropoutMLP(BaseModel):
        def __init__(self, dim=8, loss=None, dropout=0.3):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(dim, 32), torch.nn.GELU(), torch.nn.Dropout(dropout),
                                           torch.nn.Linear(32, 1))
            self.loss = LOSSES.build(loss)

        def forward(self, x, y, mode='loss'):
            pred = self.net(torch.stack(x) if isinstance(x, list) else x)
            target = torch.stack(y) if isinstance(y, list) else y
            if mode == 'loss':
                return dict(loss_reg=self.loss(pred, target))
            return pred
''')

CONFIG = textwrap.dedent('''
    _base_ = ['{repo}/configs/_base_/default_runtime.py', '{repo}/configs/_base_/schedules/adamw_iters.py']
    custom_imports = dict(imports=['user_plugin'], allow_failed_imports=False)
    model = dict(type='UserDropoutMLP', loss=dict(type='UserHuberLoss', loss_weight=2.0))
    train_dataloader = dict(batch_size=8, num_workers=0, collate_fn=dict(type='default_collate'),
                            sampler=dict(type='InfiniteSampler', shuffle=True),
                            dataset=dict(type='UserRegressionSet'))
    train_cfg = dict(type='IterBasedTrainLoop', max_iters=12, val_interval=1000)
    val_cfg = None
    val_dataloader = None
    param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
                       dict(type='CosineAnnealingLR', by_epoch=False, begin=5, end=12, eta_min_ratio=0.01)]
    default_hooks = dict(checkpoint=dict(interval=6), logger=dict(interval=1))
    randomness = dict(seed=7)
''')


@pytest.fixture(scope='module')
def plugin_config(tmp_path_factory):
    """The user's plug-in file lives outside the package; it is imported once (registration is global)."""
    folder = tmp_path_factory.mktemp('user_code')
    (folder / 'user_plugin.py').write_text(PLUGIN)
    config = folder / 'user_config.py'
    config.write_text(CONFIG.format(repo=REPO))
    sys.path.insert(0, str(folder))
    yield config
    sys.path.remove(str(folder))


def _final_loss(runner) -> float:
    return float(runner.message_hub.get_scalar('train/loss').current())


def _weights(runner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def test_resume_is_exact(plugin_config, tmp_path):
    train = load_tool('train')
    straight = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'straight')])
    straight_loss, straight_weights = _final_loss(straight), _weights(straight)

    # first half, then a fresh process-like runner resumes from the latest checkpoint for the second half
    train.main([str(plugin_config), '--work-dir', str(tmp_path / 'halves'), '--cfg-options',
                'train_cfg.max_iters=6'])
    resumed = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'halves'), '--resume'])
    assert resumed.iter == 12
    assert abs(_final_loss(resumed) - straight_loss) < 1e-6
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, straight_weights[key], rtol=0, atol=1e-6, msg=key)


def test_resume_from_explicit_path_and_checkpoint_is_safetensors(plugin_config, tmp_path):
    train = load_tool('train')
    work = tmp_path / 'explicit'
    train.main([str(plugin_config), '--work-dir', str(work)])
    checkpoint = work / 'iter_6.safetensors'
    assert checkpoint.is_file() and not list(work.glob('*.pth'))
    with safe_open(str(checkpoint), 'pt') as handle:
        assert 'geokit' in handle.metadata()
        assert any(key.startswith('ckpt.optimizer') for key in handle.keys())
    resumed = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'other'), '--resume', str(checkpoint),
                          '--cfg-options', 'train_cfg.max_iters=8'])
    assert resumed.iter == 8


def test_resume_missing_checkpoint_names_the_path(plugin_config, tmp_path):
    train = load_tool('train')
    with pytest.raises(FileNotFoundError, match='does-not-exist.safetensors'):
        train.main([str(plugin_config), '--work-dir', str(tmp_path / 'w'), '--resume',
                    str(tmp_path / 'does-not-exist.safetensors')])
