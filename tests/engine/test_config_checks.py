"""Strictness where a mistake is likely: misspelt keys and hook arguments fail before training, checkpoints load
strictly, tap layers are checked at build time, relative paths resolve, the paper-scale config starts."""
from __future__ import annotations

import copy

import pytest
from mmengine.config import Config

from geokit.engine.config_checks import resolve_relative_paths
from geokit.engine.launch import build_runner, prepare_config
from geokit.engine.runner import check_state_dict_fits
from geokit.errors import InputFileError
from geokit.models.mllms.qwen_vl import Qwen3VLBackbone
from geokit.registry import MODELS
from tests.engine.test_train_resume import REPO, plugin_config  # noqa: F401 (fixture)
from tests.models.conftest import model_config
from tests.tool_loader import load_tool


def _prepare(config, **options):
    return prepare_config(Config.fromfile(str(config)), str(config), work_dir='/tmp/unused', cfg_options=options)


def test_a_misspelt_top_level_option_fails_naming_the_right_key(plugin_config):  # noqa: F811
    with pytest.raises(KeyError, match='Did you mean `randomness`'):
        _prepare(plugin_config, **{'randomnes.seed': 5})
    assert _prepare(plugin_config, **{'randomness.seed': 5}).randomness.seed == 5


def test_a_misspelt_top_level_key_in_a_config_file_fails(plugin_config, tmp_path):  # noqa: F811
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{plugin_config}']\nrandomnes = dict(seed=5)\nmy_own_variable = 3\n")
    with pytest.raises(KeyError, match='`randomnes`.*Did you mean `randomness`'):
        _prepare(config)


def test_an_unknown_hook_argument_fails_before_training(plugin_config, tmp_path):  # noqa: F811
    with pytest.raises(TypeError, match='max_keep_ckpt.*Did you mean `max_keep_ckpts`'):
        _prepare(plugin_config, **{'default_hooks.checkpoint.max_keep_ckpt': 1})
    with pytest.raises(TypeError, match='custom_hooks\\[0\\]: RNGStateHook has no argument `seed`'):
        _prepare(plugin_config, custom_hooks=[dict(type='RNGStateHook', seed=1)])
    assert _prepare(plugin_config, **{'default_hooks.checkpoint.max_keep_ckpts': 1})


def test_load_from_is_strict_and_names_the_checkpoint_and_its_origin(plugin_config, tmp_path):  # noqa: F811
    train = load_tool('train')
    train.main([str(plugin_config), '--work-dir', str(tmp_path / 'a'), '--cfg-options', 'train_cfg.max_iters=6'])
    checkpoint = tmp_path / 'a' / 'iter_6.safetensors'
    other = ['model.dim=9', 'train_dataloader.dataset.dim=9', f'load_from={checkpoint}', 'train_cfg.max_iters=2']
    with pytest.raises(InputFileError) as error:
        train.main([str(plugin_config), '--work-dir', str(tmp_path / 'b'), '--cfg-options', *other])
    message = str(error.value)
    assert str(checkpoint) in message and 'shape mismatch' in message and 'net.0.weight' in message
    assert "work_dir '" in message and 'UserDropoutMLP' in message and 'load_strict=False' in message
    assert not list((tmp_path / 'b').glob('*.safetensors'))
    relaxed = train.main([str(plugin_config), '--work-dir', str(tmp_path / 'c'), '--cfg-options', *other,
                          'load_strict=False'])
    assert relaxed.iter == 2


def test_a_checkpoint_of_the_other_project_does_not_load_into_this_one():
    geovr = MODELS.build(copy.deepcopy(Config.fromfile(str(REPO / 'projects/geovr/config.py')).model))
    smllm = MODELS.build(copy.deepcopy(Config.fromfile(str(REPO / 'projects/spatial_mllm/config.py')).model))
    meta = {'cfg': "model = dict(\n    backbone=dict(type='Qwen3VLBackbone'))\nwork_dir = 'work_dirs/geovr'\n"}
    with pytest.raises(InputFileError) as error:
        check_state_dict_fits(smllm, geovr.state_dict(), 'geovr.safetensors', meta)
    message = str(error.value)
    assert message.startswith('geovr.safetensors: ') and 'missing keys' in message and 'unexpected keys' in message
    assert "work_dir 'work_dirs/geovr'" in message and 'Qwen3VLBackbone' in message
    check_state_dict_fits(geovr, geovr.state_dict(), 'geovr.safetensors', meta)  # its own config: fine


def test_a_teacher_layer_beyond_the_teachers_depth_fails_at_build_time():
    cfg = model_config(objectives=('depth',))
    cfg['objectives'][0]['tap'] = dict(tokens='video', teacher_layers=[0, 1, 2, 7], teacher_num_layers=4)
    with pytest.raises(ValueError, match=r'teacher_layers \[7\] are outside 0..3'):
        MODELS.build(cfg)


def test_a_backbone_path_at_an_empty_folder_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match='model.backbone.path.*without a Hugging Face checkpoint'):
        Qwen3VLBackbone(str(tmp_path))


def test_relative_paths_resolve_against_the_config_folder_and_the_repo(tmp_path, monkeypatch):
    config_dir = tmp_path / 'configs'
    (config_dir / 'weights').mkdir(parents=True)
    config = config_dir / 'c.py'
    config.write_text('')
    cfg = Config(dict(model=dict(backbone=dict(path='weights'), teacher=dict(path='geokit://teachers/x')),
                      train_dataloader=dict(dataset=dict(data_root='projects/geovr')),
                      test_dataloader=dict(dataset=dict(data_root='nowhere/at/all'))))
    monkeypatch.chdir(tmp_path / 'configs' / 'weights')  # neither the repo nor the config's folder
    resolve_relative_paths(cfg, str(config))
    assert cfg.model.backbone.path == str(config_dir / 'weights')
    assert cfg.train_dataloader.dataset.data_root == str(REPO / 'projects/geovr')
    assert cfg.model.teacher.path == 'geokit://teachers/x' and cfg.test_dataloader.dataset.data_root == 'nowhere/at/all'
    with pytest.raises(FileNotFoundError, match='a relative path'):
        Qwen3VLBackbone('nowhere/at/all')


def test_the_paper_scale_geovr_config_can_start(tmp_path):
    path = REPO / 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py'
    cfg = prepare_config(Config.fromfile(str(path)), str(path), work_dir=str(tmp_path))
    assert cfg.test_cfg == dict(type='TestLoop')
    runner = build_runner(cfg)
    assert runner.work_dir == str(tmp_path)


def test_the_two_projects_main_configs_get_separate_default_work_dirs():
    from geokit.engine.launch import default_work_dir
    geovr, spatial = default_work_dir('projects/geovr/config.py'), default_work_dir('projects/spatial_mllm/config.py')
    assert geovr == 'work_dirs/geovr/config' and spatial == 'work_dirs/spatial_mllm/config'
    assert default_work_dir('projects/tiny_teacher/configs/vggt_tiny_synthvsi.py') == \
        'work_dirs/tiny_teacher/vggt_tiny_synthvsi'
    assert default_work_dir('configs/teachers/vggt_1b.py') == 'work_dirs/teachers/vggt_1b'
