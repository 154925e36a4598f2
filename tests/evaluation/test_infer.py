"""tools/infer.py: answers a question about a SynthVSI test video, the same answer the test loop gives."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from geokit.datasets import VSIBenchDataset, probe_video
from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.inference import load_model
from geokit.models.mllms.export import export_hf
from geokit.registry import MODELS

from ..tool_loader import load_tool

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CONFIG = osp.join(ROOT, 'projects', 'geovr', 'config.py')
FOUR_FRAMES = ['--cfg-options', 'test_dataloader.dataset.frame_sampler.num_frames=4']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The embedded-default GeoVR model, weights moved off their init (so no layer is trivially zero)."""
    cfg = Config.fromfile(CONFIG)
    init_default_scope('geokit')
    model = MODELS.build(dict(cfg.model, teacher=None, scale_teacher=None))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    path = str(tmp_path_factory.mktemp('ckpt') / 'iter_1.safetensors')
    save_checkpoint_safetensors({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def test_item(synthvsi_root):
    """The first multiple-choice test question of the tiny SynthVSI and its dataset sample."""
    rows = [json.loads(line) for line in open(osp.join(synthvsi_root, 'test.jsonl'))]
    index = next(i for i, row in enumerate(rows) if row['options'])
    dataset = VSIBenchDataset(ann_file='test.jsonl', data_root=synthvsi_root, load_geometry=False,
                              frame_sampler=dict(type='UniformSampler', num_frames=4))
    sample = dataset[index]
    sample['meta']['fps'] = probe_video(sample['meta']['video'])[1]   # what infer.py reads from the video
    return rows[index], sample


def infer_args(checkpoint, row, root, *extra):
    return [CONFIG, checkpoint, '--video', osp.join(root, row['video']), '--question', row['question'],
            '--question-type', row['question_type'], '--options', *row['options'], *extra, *FOUR_FRAMES]


def test_infer_gives_the_test_loop_answer(checkpoint, test_item, synthvsi_root, capsys):
    row, sample = test_item
    output = load_tool('infer').main(infer_args(checkpoint, row, synthvsi_root))
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == output['prediction']
    model = load_model(CONFIG, checkpoint)
    expected = model.test_step([sample])[0]['prediction']
    assert output['prediction'] == expected


def test_infer_exported_checkpoint_and_geometry(checkpoint, test_item, synthvsi_root, tmp_path, capsys):
    row, _ = test_item
    infer = load_tool('infer')
    exported = str(tmp_path / 'exported')
    load_tool('export_hf').main([CONFIG, checkpoint, '--out', exported])
    assert infer.main(infer_args(exported, row, synthvsi_root))['prediction'] == \
        infer.main(infer_args(checkpoint, row, synthvsi_root))['prediction']
    outputs = {}
    for name, ckpt in (('trained', checkpoint), ('exported', exported)):
        png = str(tmp_path / f'{name}.png')
        outputs[name] = infer.main(infer_args(ckpt, row, synthvsi_root, '--geometry', png, '--backend',
                                              'matplotlib'))
        assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
        assert f'geometry (matplotlib): {png}' in capsys.readouterr().out
    geometry = outputs['trained']['geometry_pred']
    assert geometry['depth'].dim() == 3 and geometry['pose_enc'].shape == (4, 9)
    for key, value in geometry.items():              # the exported heads are the trained heads
        torch.testing.assert_close(outputs['exported']['geometry_pred'][key], value)


def test_infer_errors_name_the_problem(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_model(CONFIG, str(tmp_path / 'missing.safetensors'))
    spatial = osp.join(ROOT, 'projects', 'spatial_mllm', 'config.py')
    with pytest.raises(KeyError, match='lacks'):
        load_model(spatial, checkpoint)


def test_infer_spatial_mllm_fusion_checkpoint(test_item, synthvsi_root, tmp_path, capsys):
    """A fusion model (Spatial-MLLM: VGGT tokens added to the ViT's) answers through the same entry point."""
    config = osp.join(ROOT, 'projects', 'spatial_mllm', 'config.py')
    cfg = Config.fromfile(config)
    init_default_scope('geokit')
    model = MODELS.build(dict(cfg.model, teacher=None, scale_teacher=None))
    assert model.fusion is not None
    path = str(tmp_path / 'iter_0.safetensors')
    save_checkpoint_safetensors({'state_dict': model.state_dict(), 'meta': {}}, path)
    row, _ = test_item
    output = load_tool('infer').main([config, path, '--video', osp.join(synthvsi_root, row['video']), '--question',
                                      row['question'], '--cfg-options',
                                      'test_dataloader.dataset.frame_sampler.num_frames=4'])
    assert capsys.readouterr().out.strip().splitlines()[0] == output['prediction']
    # the export of a fusion model carries its spatial encoder and connector: the same answer through infer
    exported = str(tmp_path / 'exported')
    export_hf(model, exported, fusion_cfg=cfg.model.fusion, data_preprocessor_cfg=cfg.model.data_preprocessor)
    again = load_tool('infer').main([config, exported, '--video', osp.join(synthvsi_root, row['video']),
                                     '--question', row['question'], '--cfg-options',
                                     'test_dataloader.dataset.frame_sampler.num_frames=4'])
    assert again['prediction'] == output['prediction']
    plain = tmp_path / 'plain'                  # a config.json alone is not a geokit export of a fusion model
    plain.mkdir()
    (plain / 'config.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match='geokit_export.json'):
        load_model(config, str(plain))
