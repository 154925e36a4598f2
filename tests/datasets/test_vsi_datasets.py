"""VSI-Bench / VSI-590K readers, frame samplers, the official prompt, bad videos and generate-on-first-use."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from geokit.datasets import VideoReadError, build_vsibench_prompt, ensure_synthvsi
from geokit.datasets.synthvsi.generate import MARKER
from geokit.registry import DATASETS, FRAME_SAMPLERS


def test_official_prompt_strings():
    na = dict(question_type='object_counting', question='How many chair(s) are in this room?')
    assert build_vsibench_prompt(na) == ('These are frames of a video.\nHow many chair(s) are in this room?\n'
                                         'Please answer the question using a single word or phrase.')
    mc = dict(question_type='object_rel_direction_easy', question='Q?', options=['A. left', 'B. right'])
    assert build_vsibench_prompt(mc) == ("These are frames of a video.\nQ?\nOptions:\nA. left\nB. right\n"
                                         "Answer with the option's letter from the given choices directly.")
    with pytest.raises(ValueError, match='object_counting'):
        build_vsibench_prompt(dict(question_type='nope', question='?'))


def test_frame_samplers():
    uniform = FRAME_SAMPLERS.build(dict(type='UniformSampler', num_frames=4))
    assert uniform(10, 30.0).tolist() == [0, 3, 6, 9]
    assert uniform(2, None).tolist() == [0, 0, 0, 1]
    fps = FRAME_SAMPLERS.build(dict(type='FPSSampler', fps=2.0, max_frames=None))
    assert fps(30, 10.0).tolist() == [0, 5, 10, 15, 20, 25]
    capped = FRAME_SAMPLERS.build(dict(type='FPSSampler', fps=2.0, max_frames=3))
    assert capped(30, 10.0).tolist() == [0, 10, 25]
    assert fps(4, None).dtype == torch.long


def test_vsibench_reader_gives_the_contract_sample(tiny_synthvsi, tiny_params):
    dataset = DATASETS.build(dict(type='VSIBenchDataset', data_root=str(tiny_synthvsi), ann_file='test.jsonl',
                                  frame_sampler=dict(type='UniformSampler', num_frames=4)))
    sample = dataset[0]
    h, w = tiny_params.resolution
    assert sample['frames'].shape == (4, h, w, 3) and sample['frames'].dtype == torch.uint8
    assert sample['frame_indices'].tolist() == [0, 2, 4, 7]
    geometry = sample['geometry']
    assert geometry['depth'].shape == (4, h, w) and geometry['extrinsics'].shape == (4, 3, 4)
    assert geometry['intrinsics'].shape == (4, 3, 3) and geometry['instance'].dtype == torch.int32
    row = json.loads((tiny_synthvsi / 'test.jsonl').read_text().splitlines()[0])
    human, gpt = sample['conversations']
    assert human == {'from': 'human', 'value': '<video>\n' + build_vsibench_prompt(row)}
    assert gpt == {'from': 'gpt', 'value': row['ground_truth']}
    meta = sample['meta']
    assert {k: meta[k] for k in ('id', 'dataset', 'scene_name', 'question_type', 'options', 'ground_truth')} == \
        {k: row[k] for k in ('id', 'dataset', 'scene_name', 'question_type', 'options', 'ground_truth')}
    json.dumps(meta)
    # the decoded video matches the rendered geometry frame count and is close to a plausible image
    assert sample['frames'].float().std() > 5


def test_frame_indices_reads_the_header_only_and_matches_the_item(tiny_synthvsi, monkeypatch):
    dataset = DATASETS.build(dict(type='VSIBenchDataset', data_root=str(tiny_synthvsi), ann_file='test.jsonl',
                                  frame_sampler=dict(type='UniformSampler', num_frames=4)))
    expected = [dataset[index]['frame_indices'].tolist() for index in range(3)]

    def no_decoding(*args, **kwargs):
        raise AssertionError('frame_indices decoded a video')

    monkeypatch.setattr('geokit.datasets.vsi_datasets.read_video_frames', no_decoding)
    assert [dataset.frame_indices(index).tolist() for index in range(3)] == expected


def test_vsi590k_reader(tiny_synthvsi):
    dataset = DATASETS.build(dict(type='VSI590KDataset', data_root=str(tiny_synthvsi), ann_file='train.jsonl',
                                  frame_sampler=dict(type='FPSSampler', fps=2.0, max_frames=8),
                                  load_geometry=False))
    sample = dataset[len(dataset) - 1]
    assert sample['geometry'] is None
    assert sample['frame_indices'].tolist() == [0, 2, 4, 6]      # 4 fps video sampled at 2 fps
    assert sample['conversations'][0]['value'].startswith('<video>\n')
    assert sample['meta']['ground_truth'] == sample['conversations'][-1]['value']


def _two_item_split(tiny_synthvsi, tmp_path, break_video):
    root = tmp_path / 'data'
    shutil.copytree(tiny_synthvsi / 'test', root / 'test')
    shutil.copytree(tiny_synthvsi / 'val', root / 'val')
    rows = [json.loads(r) for r in (tiny_synthvsi / 'test.jsonl').read_text().splitlines()[:1]]
    rows += [json.loads(r) for r in (tiny_synthvsi / 'val.jsonl').read_text().splitlines()[:1]]
    rows[1]['id'] = 1
    (root / 'bench.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    bad = root / rows[0]['video']
    break_video(bad)
    return root, bad


@pytest.mark.parametrize('breaker', ['truncated', 'garbage'])
def test_corrupt_video_raises_naming_the_file_or_is_skipped(tiny_synthvsi, tmp_path, breaker):
    def break_video(path):
        if breaker == 'truncated':
            path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 3])
        else:
            path.write_bytes(b'\x00not a video at all' * 50)
    root, bad = _two_item_split(tiny_synthvsi, tmp_path, break_video)
    cfg = dict(type='VSIBenchDataset', data_root=str(root), ann_file='bench.jsonl', load_geometry=False)
    with pytest.raises(VideoReadError) as error:
        DATASETS.build(cfg)[0]
    assert str(bad) in str(error.value) and 'skip_bad_inputs=True' in str(error.value)
    skipping = DATASETS.build(dict(cfg, skip_bad_inputs=True))
    assert skipping[0]['meta']['id'] == 1


def test_missing_video_raises_or_is_dropped(tiny_synthvsi, tmp_path):
    root, bad = _two_item_split(tiny_synthvsi, tmp_path, lambda path: path.unlink())
    cfg = dict(type='VSIBenchDataset', data_root=str(root), ann_file='bench.jsonl', load_geometry=False)
    with pytest.raises(VideoReadError, match='not found'):
        DATASETS.build(cfg)[0]
    skipping = DATASETS.build(dict(cfg, skip_bad_videos=True))
    assert len(skipping) == 1 and skipping[0]['meta']['id'] == 1


def test_ensure_synthvsi_generates_once_and_detects_mismatch(tmp_path, single_thread):
    root = tmp_path / 'synth'
    params = dict(num_scenes=3, frames=4, resolution=(32, 32), seed=3, questions_per_type=1)
    assert ensure_synthvsi(root, **params) == root
    marker = (root / MARKER).stat().st_mtime_ns
    assert sorted(p.name for p in root.iterdir()) == sorted([MARKER, 'train', 'val', 'test', 'train.jsonl',
                                                              'val.jsonl', 'test.jsonl'])
    assert not list(tmp_path.glob('.synth.tmp-*'))
    ensure_synthvsi(root, **params)                                   # idempotent: nothing regenerated
    assert (root / MARKER).stat().st_mtime_ns == marker
    with pytest.raises(ValueError, match=r"'frames': \(4, 5\)"):
        ensure_synthvsi(root, **dict(params, frames=5))
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'x.txt').write_text('x')
    with pytest.raises(ValueError, match='not a'):
        ensure_synthvsi(tmp_path / 'other', **params)
    dataset = DATASETS.build(dict(type='VSIBenchDataset', data_root=str(root), ann_file='val.jsonl',
                                  generate_if_missing=params,
                                  frame_sampler=dict(type='UniformSampler', num_frames=2)))
    assert len(dataset) > 0 and dataset[0]['frames'].shape == (2, 32, 32, 3)


def test_readers_pass_the_video_fps_to_the_processor(tiny_synthvsi, tmp_path):
    """The probed fps goes into ``meta['fps']`` (the processor's timestamps), for both readers and a 30 fps clip."""
    from geokit.datasets.video_io import write_video
    for kind, ann in (('VSI590KDataset', 'train.jsonl'), ('VSIBenchDataset', 'test.jsonl')):
        dataset = DATASETS.build(dict(type=kind, data_root=str(tiny_synthvsi), ann_file=ann, load_geometry=False,
                                      frame_sampler=dict(type='UniformSampler', num_frames=4)))
        assert dataset[0]['meta']['fps'] == pytest.approx(4.0)            # SynthVSI is written at 4 fps
    clip = tmp_path / 'scene' / 'clip.mp4'
    clip.parent.mkdir()
    write_video(clip, torch.zeros(60, 32, 32, 3, dtype=torch.uint8), fps=30.0)
    row = {'video': 'scene/clip.mp4', 'conversations': [{'from': 'human', 'value': '<video>\nQ?'},
                                                         {'from': 'gpt', 'value': '1'}]}
    (tmp_path / 'train.jsonl').write_text(json.dumps(row) + '\n')
    dataset = DATASETS.build(dict(type='VSI590KDataset', data_root=str(tmp_path), ann_file='train.jsonl',
                                  load_geometry=False, frame_sampler=dict(type='UniformSampler', num_frames=4)))
    assert dataset[0]['meta']['fps'] == pytest.approx(30.0)
