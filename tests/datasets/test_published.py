"""The published VSI-Bench / VSI-590K / Spatial-MLLM files as distributed: readers and tools/prepare_data.py."""
import json
import os.path as osp
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geokit.datasets import VSI590KDataset, VSIBenchDataset, build_vsibench_prompt, write_video
from geokit.datasets.published import read_annotation_rows

from ..tool_loader import load_tool

FIXTURES = osp.join(osp.dirname(__file__), 'published')
FPS, FRAMES = 5, 4
ANNOTATIONS = {'vsibench': 'test.jsonl', 'vsi590k': 'vsi_590k.jsonl',
               'spatial_mllm': 'annotations/spatial-mllm-mix-133k.jsonl'}


def referenced_videos(layout):
    rows = read_annotation_rows(osp.join(FIXTURES, layout, ANNOTATIONS[layout]))
    if layout == 'vsibench':
        return sorted({f"{row['dataset']}/{row['scene_name']}.mp4" for row in rows})
    videos = [row['video'][0] if isinstance(row.get('video'), list) else row.get('video') for row in rows]
    return sorted({video for video in videos if video})


def published_copy(layout, tmp_path, without=()):
    """The fixture's annotation files plus a tiny video for every referenced video except ``without``."""
    root = tmp_path / layout
    shutil.copytree(osp.join(FIXTURES, layout), root)
    for index, video in enumerate(referenced_videos(layout)):
        if video in without:
            continue
        (root / video).parent.mkdir(parents=True, exist_ok=True)
        frames = np.full((FRAMES, 32, 32, 3), 40 * index, dtype=np.uint8)
        write_video(root / video, frames, fps=FPS)
    return root


def test_vsibench_test_jsonl_and_parquet_as_distributed(tmp_path):
    root = published_copy('vsibench', tmp_path)
    rows = read_annotation_rows(root / 'test.jsonl')
    pq.write_table(pa.Table.from_pylist(rows), root / 'test-00000-of-00001.parquet')
    sampler = dict(type='UniformSampler', num_frames=2)
    for ann_file in ('test.jsonl', 'test-00000-of-00001.parquet'):
        dataset = VSIBenchDataset(ann_file=ann_file, data_root=str(root), frame_sampler=sampler, load_geometry=False)
        assert len(dataset) == 6
        for index, row in enumerate(rows):
            sample = dataset[index]
            assert sample['meta']['video'] == str(root / row['dataset'] / f"{row['scene_name']}.mp4")
            assert sample['conversations'][0]['value'] == '<video>\n' + build_vsibench_prompt(row)
            assert sample['meta']['ground_truth'] == row['ground_truth'] and sample['frames'].shape == (2, 32, 32, 3)
        assert dataset[1]['meta']['options'] == ['A. sofa', 'B. stool', 'C. table', 'D. tv']
        assert dataset.metainfo['data_root'] == str(root)   # VSIBenchMetric resolves prior/subset files against it


def test_vsi590k_jsonl_as_distributed(tmp_path):
    root = published_copy('vsi590k', tmp_path)
    dataset = VSI590KDataset(ann_file='vsi_590k.jsonl', data_root=str(root), load_geometry=False,
                             frame_sampler=dict(type='UniformSampler', num_frames=2))
    assert len(dataset) == 4                                     # the image-only row is left out
    metas = [dataset.get_data_info(i)['meta'] for i in range(4)]
    assert [m['question_type'] for m in metas] == ['object_counting', 'object_size_estimation',
                                                   'object_rel_distance', 'relative_size_object']
    sample = dataset[2]
    human = sample['conversations'][0]['value']
    assert human.startswith('<video>\nThese are frames of a video.') and '<image>' not in human
    assert sample['meta']['ground_truth'] == 'B' and sample['meta']['video'].endswith('arkitscenes/videos/47333462.mp4')


def test_spatial_mllm_annotations_as_distributed(tmp_path):
    root = published_copy('spatial_mllm', tmp_path)
    dataset = VSI590KDataset(ann_file=ANNOTATIONS['spatial_mllm'], data_root=str(root), load_geometry=False,
                             frame_sampler=dict(type='UniformSampler', num_frames=2))
    assert len(dataset) == 3
    assert dataset[1]['meta']['video'].endswith('visuals/scannetpp/7b6477cb95.mp4')   # a one-element video list
    assert dataset[2]['meta']['question_type'] == 'object_counting'


def test_prepare_data_reports_a_missing_video_by_name(tmp_path, capsys):
    root = published_copy('vsibench', tmp_path, without=('scannet/scene0011_00.mp4',))
    tool = load_tool('prepare_data')
    assert tool.main(['vsibench', str(root)]) == 1
    out = capsys.readouterr().out
    assert 'missing video: scannet/scene0011_00.mp4' in out and 'nothing written' in out
    assert out.count('missing video:') == 1 and not (root / 'geokit_test.jsonl').exists()
    assert (root / 'missing_videos.txt').read_text() == 'missing video: scannet/scene0011_00.mp4\n'

    assert tool.main(['vsibench', str(root), '--allow-missing']) == 1
    rows = read_annotation_rows(root / 'geokit_test.jsonl')
    assert [row['id'] for row in rows] == [0, 1, 4, 5]          # the two scannet questions are left out


def test_prepare_data_writes_rows_with_frame_rate_and_duration(tmp_path, capsys):
    root = published_copy('vsibench', tmp_path)
    assert load_tool('prepare_data').main(['vsibench', str(root)]) == 0
    out = capsys.readouterr().out
    assert f'subset debiased: {root / "pruned_ids.txt"}' in out and 'missing' not in out
    rows = read_annotation_rows(root / 'geokit_test.jsonl')
    assert len(rows) == 6 and {row['fps'] for row in rows} == {FPS}
    assert {row['num_frames'] for row in rows} == {FRAMES} and rows[0]['duration'] == pytest.approx(FRAMES / FPS)
    assert rows[2]['video'] == 'scannet/scene0011_00.mp4'
    dataset = VSIBenchDataset(ann_file='geokit_test.jsonl', data_root=str(root), load_geometry=False,
                              frame_sampler=dict(type='UniformSampler', num_frames=2))
    assert dataset[5]['meta']['question_type'] == 'obj_appearance_order'


def test_prepare_data_training_layouts(tmp_path, capsys):
    tool = load_tool('prepare_data')
    root = published_copy('vsi590k', tmp_path)
    assert tool.main(['vsi590k', str(root)]) == 0
    assert '1 image-only rows left out' in capsys.readouterr().out
    rows = read_annotation_rows(root / 'geokit_train.jsonl')
    assert len(rows) == 4 and rows[0]['source_question_type'] == 'absolute_count'
    assert all(row['conversations'][0]['value'].startswith('<video>') for row in rows)
    root = published_copy('spatial_mllm', tmp_path)
    assert tool.main(['spatial_mllm', str(root), '--ann-file', ANNOTATIONS['spatial_mllm'], '--check-only']) == 0
    assert not (root / 'geokit_train.jsonl').exists()
    with pytest.raises(FileNotFoundError, match='Pass --ann-file'):
        tool.main(['spatial_mllm', str(root)])


def test_unreadable_annotations_name_the_file(tmp_path):
    not_a_list = tmp_path / 'rows.json'
    not_a_list.write_text(json.dumps({'not': 'a list'}))
    with pytest.raises(ValueError, match='rows.json must hold a JSON list'):
        read_annotation_rows(not_a_list)
    csv = tmp_path / 'rows.csv'
    csv.write_text('x')
    with pytest.raises(ValueError, match="unknown annotation format '.csv'"):
        read_annotation_rows(csv)
    broken = tmp_path / 'rows.jsonl'
    broken.write_text('{"id": 0}\n{oops\n')
    with pytest.raises(ValueError, match='rows.jsonl:2 is not valid JSON'):
        read_annotation_rows(broken)
