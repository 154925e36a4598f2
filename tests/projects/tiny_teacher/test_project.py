"""The tiny-teacher project as a project: geokit registers none of it, its configs and tools run from a fresh clone.

"Fresh clone" here: a Python path that holds geokit (as an installed or editable geokit provides it) but not the
checkout's root, and a current directory outside the checkout; the project must then be found through the config's
``custom_imports`` (:func:`geokit.engine.launch.load_config`) or the tool's own location.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config

import geokit
from geokit.engine.launch import load_config

from ...tool_loader import load_tool

REPO = Path(__file__).resolve().parents[3]
PROJECT = REPO / 'projects' / 'tiny_teacher'
CONFIG = PROJECT / 'configs' / 'vggt_tiny_synthvsi_pan.py'

def _fresh_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python path holds this checkout's geokit and nothing else of the checkout."""
    site = tmp_path / 'site'
    site.mkdir(exist_ok=True)
    link = site / 'geokit'
    if not link.exists():
        link.symlink_to(Path(geokit.__file__).resolve().parent)
    env = dict(os.environ, PYTHONPATH=str(site))
    return env


def _run(args: list[str], tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=tmp_path, env=_fresh_env(tmp_path), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_geokit_registers_none_of_the_projects_components_until_a_config_imports_it(tmp_path):
    """Fresh interpreter, outside the checkout: import every geokit package; none of the project's components is
    registered. mmengine's own ``Config.fromfile`` cannot import the project ("No module named 'projects'");
    ``load_config`` can, and what it adds to the registries is exactly the project's components."""
    script = textwrap.dedent(f'''
        import importlib, json, pkgutil, sys
        from mmengine.config import Config
        from mmengine.registry import Registry
        import geokit
        from geokit import registry
        from geokit.engine.launch import load_config

        def snapshot():
            return {{name: sorted(value.module_dict) for name, value in vars(registry).items()
                    if isinstance(value, Registry)}}

        for info in pkgutil.walk_packages(geokit.__path__, 'geokit.'):
            if info.ispkg:
                importlib.import_module(info.name)
        toolkit = snapshot()
        leaked = sorted(name for name in sys.modules if name == 'projects' or name.startswith('projects.'))
        try:
            Config.fromfile({str(CONFIG)!r})
            mmengine_alone = 'loaded'
        except ImportError as error:
            mmengine_alone = str(error)
        load_config({str(CONFIG)!r})
        with_project = snapshot()
        added = {{name: sorted(set(with_project[name]) - set(toolkit[name])) for name in toolkit}}
        print(json.dumps(dict(added={{k: v for k, v in added.items() if v}}, leaked=leaked,
                              toolkit_models=toolkit['MODELS'], mmengine_alone=mmengine_alone)))
    ''')
    report = json.loads(_run(['-c', script], tmp_path).stdout.strip().splitlines()[-1])
    assert report['leaked'] == []
    assert 'GeometricMLLM' in report['toolkit_models']  # the toolkit's own models did register
    assert 'Failed to import custom modules' in report['mmengine_alone']
    assert report['added'] == {'MODELS': ['VGGTGeometryModel'], 'HOOKS': ['PanPretrainHook']}


def test_load_config_names_a_missing_module_and_the_fix(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text("custom_imports = dict(imports=['no_such_geokit_plugin'], allow_failed_imports=False)\n")
    with pytest.raises(ImportError, match=r"custom_imports module 'no_such_geokit_plugin' cannot be imported.*Fix"):
        load_config(str(config))
    config.write_text("custom_imports = dict(imports=['no_such_geokit_plugin'], allow_failed_imports=True)\n")
    with pytest.warns(UserWarning, match='no_such_geokit_plugin'):
        assert load_config(str(config)).custom_imports.allow_failed_imports


def test_load_config_puts_the_ancestor_holding_the_package_on_sys_path(tmp_path, monkeypatch):
    """A package two folders above the config is found; the folder is the config's ancestor, not the cwd."""
    package = tmp_path / 'checkout' / 'userpkg_21a'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('VALUE = 7\n')
    config = tmp_path / 'checkout' / 'configs' / 'deep' / 'cfg.py'
    config.parent.mkdir(parents=True)
    config.write_text("custom_imports = dict(imports=['userpkg_21a'])\nvalue = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'path', list(sys.path))
    assert load_config(str(config)).value == 1
    assert sys.path[0] == str(tmp_path / 'checkout') and sys.modules['userpkg_21a'].VALUE == 7
    monkeypatch.delitem(sys.modules, 'userpkg_21a')


def test_load_config_of_an_in_memory_config_looks_in_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / 'userpkg_mem').mkdir()
    (tmp_path / 'userpkg_mem' / '__init__.py').write_text('VALUE = 3\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'path', [p for p in sys.path if p not in ('', str(tmp_path))])
    cfg = load_config(Config(dict(custom_imports=dict(imports=['userpkg_mem']), value=1)), dict(value=2))
    assert cfg.value == 2 and sys.path[0] == str(tmp_path) and sys.modules['userpkg_mem'].VALUE == 3
    monkeypatch.delitem(sys.modules, 'userpkg_mem')


#: tiny sizes for a few seconds of training: 3 SynthVSI scenes of 4 frames, 3 iterations, 2 pan-pretraining steps
TINY_OPTIONS = ['train_cfg.max_iters=3', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3',
                'custom_hooks.1.steps=2', 'custom_hooks.1.videos=1', 'custom_hooks.1.batch_size=2',
                'train_dataloader.dataset.frame_sampler.num_frames=4',
                'teacher_eval_dataloader.dataset.frame_sampler.num_frames=4']


def _data_options(root: Path) -> list[str]:
    return [f'{split}.dataset.{key}' for split in ('train_dataloader', 'teacher_eval_dataloader') for key in
            (f'data_root={root}', 'generate_if_missing.num_scenes=3', 'generate_if_missing.frames=4',
             'generate_if_missing.resolution=(64,64)')]


def test_project_config_trains_exports_and_evaluates_through_its_tool(tmp_path):
    """train_teacher.py from another directory without PYTHONPATH: train, export, evaluate; then the export paths
    (a runner checkpoint -> weights; evaluate weights only) reproduce the trained teacher's numbers exactly."""
    work_dir, weights = tmp_path / 'work', tmp_path / 'teacher.safetensors'
    options = TINY_OPTIONS + _data_options(tmp_path / 'synthvsi')
    _run([str(PROJECT / 'tools' / 'train_teacher.py'), str(CONFIG), '--work-dir', str(work_dir), '--export',
          str(weights), '--cfg-options', *options], tmp_path)
    trained = json.loads((work_dir / 'teacher_eval.json').read_text())
    assert trained['weights'] == str(weights) and weights.is_file()
    assert trained['trained']['videos'] == 1 and trained['trained']['pairs'] == 6  # 4 frames: 6 pairs
    assert set(trained['references']['auc30']) >= {'gt rotation, static centres'}

    tool = load_tool('train_teacher', PROJECT / 'tools')
    exported = tmp_path / 'from_checkpoint.safetensors'
    again = tool.main([str(CONFIG), '--work-dir', str(tmp_path / 'export'), '--export-from',
                       str(work_dir / 'iter_3.safetensors'), '--export', str(exported), '--cfg-options', *options])
    assert again['trained'] == trained['trained'] and again['untrained'] == trained['untrained']
    only = tool.main([str(CONFIG), '--work-dir', str(tmp_path / 'eval'), '--eval-only', '--weights', str(exported),
                      '--cfg-options', *options])
    assert only['trained'] == trained['trained']
    with pytest.raises(ValueError, match='--eval-only needs --weights'):
        tool.main([str(CONFIG), '--work-dir', str(tmp_path / 'eval'), '--eval-only', '--cfg-options', *options])


def test_toolkit_train_tool_runs_the_project_config_from_another_directory(tmp_path):
    options = TINY_OPTIONS[:2] + ['default_hooks.checkpoint.interval=100', 'custom_hooks.1.steps=1',
                                  'custom_hooks.1.videos=1', 'custom_hooks.1.batch_size=2',
                                  'train_dataloader.dataset.frame_sampler.num_frames=4']
    options += [option for option in _data_options(tmp_path / 'synthvsi') if option.startswith('train_')]
    result = _run([str(REPO / 'tools' / 'train.py'), str(CONFIG), '--work-dir', str(tmp_path / 'work'),
                   '--cfg-options', *options], tmp_path)
    log = result.stdout + result.stderr
    assert 'pan pretraining' in log and 'Iter(train) [3/3]' in log
