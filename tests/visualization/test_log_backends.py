"""Logging-backend switches (TensorBoard, W&B on top of the local backend) and the training-curves plot."""
import importlib.util
import json
import os.path as osp

import pytest

from geokit.registry import VISUALIZERS
from geokit.visualization import log_backends
from geokit.visualization.curves import find_scalars, plot_training_curves, read_scalars

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def installed(monkeypatch):
    """Pretend exactly the given packages are installed (find_spec as the switches see it)."""
    def pretend(*packages):
        real = importlib.util.find_spec
        monkeypatch.setattr(log_backends.importlib.util, 'find_spec',
                            lambda name, *a: object() if name in packages else
                            (None if name in ('tensorboard', 'wandb') else real(name, *a)))
    return pretend


def test_auto_uses_a_backend_only_when_its_package_is_installed(installed):
    installed()
    assert log_backends.logging_backends() == [dict(type='LocalVisBackend')]
    assert log_backends.logging_backends(tensorboard='auto', wandb='auto') == [dict(type='LocalVisBackend')]
    installed('tensorboard', 'wandb')
    assert [b['type'] for b in log_backends.logging_backends()] == ['LocalVisBackend', 'TensorboardVisBackend']
    assert log_backends.logging_backends(tensorboard=False, wandb=dict(init_kwargs=dict(mode='offline'))) == [
        dict(type='LocalVisBackend'), dict(type='WandbVisBackend', init_kwargs=dict(mode='offline'))]


def test_a_backend_asked_for_and_missing_names_the_package(installed):
    installed()
    with pytest.raises(ImportError, match='`tensorboard` package is not installed: pip install tensorboard'):
        log_backends.logging_backends(tensorboard=True)
    with pytest.raises(ImportError, match='visualizer.wandb is switched on but the `wandb` package'):
        log_backends.logging_backends(tensorboard=False, wandb=dict(init_kwargs=dict(project='p')))
    with pytest.raises(ValueError, match="use True, False, 'auto' or a dict"):
        log_backends.logging_backends(tensorboard='yes')


def test_default_runtime_builds_the_switched_visualizer(installed, tmp_path):
    from mmengine.config import Config

    installed()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.visualizer == dict(type='GeoKitVisualizer', tensorboard='auto', wandb=False)
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='test_switches', save_dir=str(tmp_path)))
    assert visualizer.backend_names == ['LocalVisBackend']
    visualizer.add_scalars({'loss': 1.5}, step=3)
    record = json.loads(open(tmp_path / 'vis_data' / 'scalars.json').read())
    assert record == {'loss': 1.5, 'step': 3}


def test_training_curves_plot(tmp_path):
    run = tmp_path / 'work_dir' / '20261201_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [dict(lr=1e-3, loss=3.0 - i, loss_lm=2.0 - i / 2, grad_norm=5.0, iter=10 * (i + 1), step=10 * (i + 1))
             for i in range(3)] + [dict(**{'vsibench/overall': 23.2}, step=30)]
    (run / 'scalars.json').write_text(''.join(json.dumps(line) + '\n' for line in lines))
    path = find_scalars(str(tmp_path / 'work_dir'))
    series = read_scalars(path)
    assert series['loss'] == [(10, 3.0), (20, 2.0), (30, 1.0)] and series['vsibench/overall'] == [(30, 23.2)]
    png = str(tmp_path / 'curves.png')
    assert plot_training_curves(series, png) == ['loss', 'loss_lm', 'lr']
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(KeyError, match='not in the log'):
        plot_training_curves(series, png, keys=['loss_depth'])
    with pytest.raises(FileNotFoundError, match='No scalars.json'):
        find_scalars(str(tmp_path / 'empty'))
