"""Bad user files: every failure is one InputFileError naming the file (and line), the cause and the fix;
``skip_bad_inputs`` covers videos and geometry files; NaN/inf depth is masked with one warning per file."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from geokit.datasets import geometry_io
from geokit.errors import InputFileError, InputFileNotFoundError
from geokit.registry import DATASETS
from tests.datasets.test_vsi_datasets import _two_item_split


def _bench(root, **kwargs):
    return DATASETS.build(dict(type='VSIBenchDataset', data_root=str(root), ann_file='bench.jsonl', **kwargs))


@pytest.mark.parametrize('field', ['question_type', 'ground_truth', 'id'])
def test_an_annotation_row_without_a_required_field_names_the_file_and_line(tiny_synthvsi, tmp_path, field):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    lines = (root / 'bench.jsonl').read_text().splitlines()
    row = json.loads(lines[1])
    del row[field]
    (root / 'bench.jsonl').write_text('\n'.join([lines[0], json.dumps(row)]) + '\n')
    with pytest.raises(InputFileError) as error:
        _bench(root)
    assert f"{root / 'bench.jsonl'}:2" in str(error.value) and field in str(error.value)
    assert 'Fix:' in str(error.value)


def test_a_broken_json_line_names_the_file_and_line(tiny_synthvsi, tmp_path):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    with (root / 'bench.jsonl').open('a') as handle:
        handle.write('{"id": 3, "question"\n')
    with pytest.raises(InputFileError, match=r'bench.jsonl:3: not valid JSON'):
        _bench(root)


def _geometry(root):
    row = json.loads((root / 'bench.jsonl').read_text().splitlines()[0])
    return root / row['geometry']


def test_a_truncated_geometry_file_names_its_path_and_is_skipped_when_asked(tiny_synthvsi, tmp_path):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    geometry = _geometry(root)
    geometry.write_bytes(geometry.read_bytes()[:-500])
    with pytest.raises(InputFileError) as error:
        _bench(root)[0]
    assert str(geometry) in str(error.value) and 'skip_bad_inputs' in str(error.value)
    assert _bench(root, skip_bad_inputs=True)[0]['meta']['id'] == 1
    assert _bench(root, skip_bad_videos=True)[0]['meta']['id'] == 1  # the deprecated name still works


def test_a_geometry_file_with_fewer_frames_than_the_video_names_both_counts(tiny_synthvsi, tiny_params, tmp_path):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    geometry = _geometry(root)
    tensors = load_file(str(geometry))
    save_file({key: value[:5].contiguous() for key, value in tensors.items()}, str(geometry))
    with pytest.raises(InputFileError) as error:
        _bench(root)[0]
    assert str(geometry) in str(error.value)
    assert '5 frames' in str(error.value) and f'{tiny_params.frames} frames' in str(error.value)


def test_a_missing_geometry_file_named_by_the_row_is_an_error_naming_it(tiny_synthvsi, tmp_path):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    geometry = _geometry(root)
    geometry.unlink()
    with pytest.raises(InputFileNotFoundError) as error:
        _bench(root)
    assert str(geometry) in str(error.value)
    assert len(_bench(root, skip_bad_inputs=True)) == 1


def test_nan_depth_in_a_geometry_file_is_masked_with_one_warning_per_file(tiny_synthvsi, tmp_path, monkeypatch):
    root, _ = _two_item_split(tiny_synthvsi, tmp_path, lambda path: None)
    geometry = _geometry(root)
    whole = int(_bench(root, load_geometry=False)[0]['frame_indices'][1])
    tensors = load_file(str(geometry))
    depth = tensors['depth'].clone()
    depth.view(len(depth), -1)[:, ::100] = float('inf')  # 1 % of every frame
    depth[whole] = float('nan')                            # and a whole frame
    save_file(dict(tensors, depth=depth), str(geometry))
    dataset = _bench(root)
    logged = []
    monkeypatch.setattr(geometry_io, 'print_log', lambda message, **kwargs: logged.append(message))
    first, again = dataset[0], dataset[0]
    for sample in (first, again):
        assert torch.isfinite(sample['geometry']['depth']).all()
        assert (sample['geometry']['depth'][1] == 0).all()
    warnings = [message for message in logged if str(geometry) in message]
    assert len(warnings) == 1 and 'NaN/inf' in warnings[0]
