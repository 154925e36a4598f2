"""distinct_videos: the first index of each video of a dataset, read from the annotations without decoding."""
from __future__ import annotations

import json

import pytest

from geokit.datasets import distinct_videos
from geokit.registry import DATASETS


class _Annotated:
    """An mmengine-style dataset whose items must never be decoded (``__getitem__`` fails)."""

    def __init__(self, videos: list[str | None]) -> None:
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def get_data_info(self, index: int) -> dict:
        return dict(meta={} if self.videos[index] is None else dict(video=self.videos[index]))

    def __getitem__(self, index: int) -> dict:
        raise AssertionError('distinct_videos decoded an item of a dataset with get_data_info')


def test_first_index_of_each_video_from_the_annotations():
    dataset = _Annotated(['a.mp4', 'a.mp4', 'b.mp4', 'a.mp4', 'c.mp4', 'b.mp4'])
    assert distinct_videos(dataset) == [0, 2, 4]
    assert distinct_videos(dataset, max_videos=2) == [0, 2]
    assert distinct_videos(dataset, max_videos=10) == [0, 2, 4]
    assert distinct_videos(_Annotated([])) == []


def test_an_item_without_a_video_is_its_own_video():
    assert distinct_videos(_Annotated([None, 'a.mp4', None, 'a.mp4'])) == [0, 1, 2]


def test_sequences_of_samples_are_read_from_their_meta():
    samples = [dict(meta=dict(video='x')), dict(meta=dict(video='y')), dict(meta=dict(video='x')), dict(frames=None)]
    assert distinct_videos(samples) == [0, 1, 3]


def test_max_videos_must_be_positive():
    with pytest.raises(ValueError, match='max_videos must be >= 1'):
        distinct_videos(_Annotated(['a']), max_videos=0)


def test_synthvsi_questions_share_their_scene_video(tiny_synthvsi, tmp_path):
    """Questions of two scenes, interleaved: one index per scene, the first question of each, no video decoded."""
    scene_a = (tiny_synthvsi / 'test.jsonl').read_text().splitlines()
    scene_b = (tiny_synthvsi / 'val.jsonl').read_text().splitlines()
    assert len(scene_a) > 2 and len(scene_b) > 2
    rows = [scene_a[0], scene_b[0], scene_a[1], scene_b[1], scene_a[2]]
    ann = tmp_path / 'mixed.jsonl'
    ann.write_text('\n'.join(rows) + '\n')
    dataset = DATASETS.build(dict(type='VSIBenchDataset', data_root=str(tiny_synthvsi), ann_file=str(ann),
                                  frame_sampler=dict(type='UniformSampler', num_frames=2)))
    dataset._load_sample = None  # any decode would fail: distinct_videos must read the annotations only
    assert distinct_videos(dataset) == [0, 1]
    scenes = [json.loads(rows[i])['scene_name'] for i in (0, 1)]
    assert [dataset.get_data_info(i)['meta']['scene_name'] for i in (0, 1)] == scenes and len(set(scenes)) == 2
