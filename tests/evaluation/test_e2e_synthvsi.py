"""End to end on a few SynthVSI items with the embedded tiny GeoVR model: tools/test.py and tools/probe.py."""
import json
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from geokit.datasets import ensure_synthvsi
from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.evaluation.vsibench import TASKS
from geokit.registry import MODELS

from ..tool_loader import load_tool

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CONFIG = osp.join(ROOT, 'projects', 'geovr', 'config.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """8 tiny scenes (6 train videos, 1 val, 1 test with ~17 questions), 4 frames of 32 x 48."""
    return str(ensure_synthvsi(tmp_path_factory.mktemp('synthvsi8') / 'data', num_scenes=8, frames=4,
                               resolution=(32, 48), seed=0))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The config's model at initialisation, saved as a geokit checkpoint (teachers are not in the state dict)."""
    cfg = Config.fromfile(CONFIG)
    init_default_scope('geokit')
    model = MODELS.build(dict(cfg.model, teacher=None, scale_teacher=None))
    path = str(tmp_path_factory.mktemp('ckpt') / 'iter_0.safetensors')
    save_checkpoint_safetensors({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def split_options(split, data_root, **extra):
    options = {f'{split}_dataloader.dataset.data_root': data_root,
               f'{split}_dataloader.dataset.generate_if_missing': None,
               f'{split}_dataloader.dataset.frame_sampler.num_frames': 4}
    options.update({f'{split}_dataloader.{key}': value for key, value in extra.items()})
    return [f'{key}={value}' for key, value in options.items()]


def test_tools_test_on_synthvsi(data_root, checkpoint, tmp_path):
    work_dir = str(tmp_path / 'eval')
    options = split_options('test', data_root, **{'dataset.indices': 3, 'batch_size': 2})
    metrics = load_tool('test').main([CONFIG, checkpoint, '--work-dir', work_dir, '--cfg-options', *options,
                                      'log_level=WARNING'])
    out_dir = osp.join(work_dir, 'vsibench')
    records = [json.loads(line) for line in open(osp.join(out_dir, 'predictions.jsonl'))]
    assert len(records) == 3 and len({r['id'] for r in records}) == 3
    items = {str(i['id']): i for i in map(json.loads, open(osp.join(data_root, 'test.jsonl')))}
    for record in records:
        assert set(record) >= {'id', 'question_type', 'prediction', 'ground_truth', 'score'}
        assert record['question_type'] == items[record['id']]['question_type']
        assert isinstance(record['prediction'], str) and 0 <= record['score'] <= 1
    summary = json.load(open(osp.join(out_dir, 'summary.json')))
    assert summary['num_samples'] == 3 and 0 <= summary['overall'] <= 1
    assert '| Overall |' in open(osp.join(out_dir, 'summary.md')).read()
    assert 0 <= metrics['vsibench/overall'] <= 100
    assert set(k.split('/')[1] for k in metrics) - {'overall'} <= set(TASKS)


def test_tools_probe_on_synthvsi(data_root, checkpoint, tmp_path):
    out = str(tmp_path / 'probes')
    summary = load_tool('probe').main([CONFIG, checkpoint, '--split', 'train', '--layers', '1', '-1',
                                       '--max-videos', '4', '--val-fraction', '0.5', '--out', out,
                                       '--cfg-options', *split_options('train', data_root)])
    assert summary['videos'] == 4 and summary['pose_rows'] == 4 * 2  # 4 frames in temporal groups of 2
    results = json.load(open(osp.join(out, 'probe_results.json')))['results']
    for task, metric in (('depth', 'abs_rel'), ('pose', 'rot_err_deg')):
        assert [r['layer'] for r in results[task]] == [1, 4]
        for row in results[task]:
            assert math.isfinite(row['val_metrics'][metric]) and row['val_metrics'][metric] >= 0
    assert 0 <= results['pose'][0]['val_metrics']['auc30'] <= 1
    table = open(osp.join(out, 'probe_results.md')).read()
    assert '**depth** probe' in table and '| constant |' in table
    assert open(osp.join(out, 'probe_errors.png'), 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='at least 2'):
        load_tool('probe').main([CONFIG, checkpoint, '--out', out, '--cfg-options', *split_options('test', data_root)])


def test_tools_test_geometry_eval_on_synthvsi(data_root, checkpoint, tmp_path):
    """projects/geovr/geometry_eval.py: the heads' geometry scored against SynthVSI ground truth by tools/test.py."""
    config = osp.join(ROOT, 'projects', 'geovr', 'geometry_eval.py')
    options = split_options('test', data_root, **{'dataset.indices': 2, 'batch_size': 2})
    metrics = load_tool('test').main([config, checkpoint, '--work-dir', str(tmp_path / 'geo'), '--cfg-options',
                                      *options, 'log_level=WARNING'])
    assert 0 <= metrics['geometry/depth_abs_rel'] and 0 <= metrics['geometry/depth_delta1'] <= 1
    assert 0 <= metrics['geometry/pose_auc30'] <= 1 and 0 <= metrics['geometry/rot_err_deg'] <= 180
    assert math.isfinite(metrics['geometry/scale_rel_err']) and 'vsibench/overall' in metrics
