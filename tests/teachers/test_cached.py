"""tools/cache_teacher.py + CachedTeacher: cached targets equal online targets; resumable, atomic."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch.utils.data import Dataset

from geokit.models.teachers import CachedTeacher, VGGTTeacher
from geokit.models.teachers.cached import pool_features
from geokit.registry import DATASETS

from ..tool_loader import load_tool
from .conftest import TINY_VGGT, plane_scene


@DATASETS.register_module(force=True)
class _TeacherCachePlanes(Dataset):
    """Three synthetic videos with ground truth (test-only)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        return plane_scene(num_frames=2 + index % 2, height=42, width=56, seed=index)


@pytest.fixture
def config_file(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / 'tiny.safetensors'
    from geokit.models.teachers.vggt import save_vggt_weights
    save_vggt_weights(VGGTTeacher(**TINY_VGGT).net, weights)
    path = tmp_path / 'cfg.py'
    path.write_text(textwrap.dedent(f'''
        default_scope = 'geokit'
        teacher = dict(type='VGGTTeacher', load_from={str(weights)!r}, **{TINY_VGGT!r})
        train_dataloader = dict(dataset=dict(type='_TeacherCachePlanes'))
    '''))
    return path, weights


@pytest.mark.parametrize('pool', [1, 2])
def test_cached_targets_equal_online(tmp_path, config_file, pool):
    cfg_path, weights = config_file
    tool = load_tool('cache_teacher')
    out = tmp_path / f'cache{pool}'
    summary = tool.main([str(cfg_path), '--out', str(out), '--pool', str(pool), '--device', 'cpu'])
    assert summary['written'] == 3 and summary['bytes_per_sample'] > 0
    assert not list(out.glob('*.tmp')) and not list(out.glob('.*.tmp'))
    again = tool.main([str(cfg_path), '--out', str(out), '--pool', str(pool), '--device', 'cpu'])
    assert again['written'] == 0 and again['skipped'] == 3  # resumable: done shards are skipped

    online_teacher = VGGTTeacher(load_from=weights, **TINY_VGGT)
    cached_teacher = CachedTeacher(cache_dir=out)
    dataset = _TeacherCachePlanes()
    for index in range(len(dataset)):
        sample = dataset[index]
        meta = dict(sample['meta'], frame_indices=sample['frame_indices'].tolist())
        online = online_teacher(sample['frames'][None], [meta], [sample['geometry']])
        cached = cached_teacher(sample['frames'][None], [meta], [sample['geometry']])
        for name in ('pose_enc', 'depth', 'depth_conf'):
            assert torch.equal(getattr(online, name), getattr(cached, name)), name
        assert cached.image_hw == online.image_hw and sorted(cached.features) == sorted(online.features)
        for layer, feature in online.features.items():
            expected = pool_features(feature[0], pool).half().float()
            assert torch.equal(cached.features[layer][0], expected)
        # without frame indices, a sample id with a single shard is still found
        assert torch.equal(cached_teacher(None, [sample['meta']], [None]).depth, online.depth)


def test_cache_refuses_other_settings_and_missing(tmp_path, config_file):
    cfg_path, _ = config_file
    tool = load_tool('cache_teacher')
    out = tmp_path / 'cache'
    tool.main([str(cfg_path), '--out', str(out), '--layers', '1', '--max-samples', '1', '--device', 'cpu'])
    assert json.loads((out / 'cache_info.json').read_text())['feature_layers'] == [1]
    with pytest.raises(ValueError, match='different settings'):
        tool.main([str(cfg_path), '--out', str(out), '--pool', '2', '--device', 'cpu'])
    teacher = CachedTeacher(cache_dir=out)
    with pytest.raises(FileNotFoundError, match='cache_teacher'):
        teacher(None, [dict(id='plane-2', frame_indices=[0, 3])], [None])
    with pytest.raises(FileNotFoundError, match='cache_teacher'):
        CachedTeacher(cache_dir=tmp_path / 'nothing')


@DATASETS.register_module(force=True)
class _SharedVideoQuestions(Dataset):
    """Four questions: two about video A with the same frames, one about A with other frames, one about B."""

    ROWS = (('q0', 'A.mp4', 0), ('q1', 'A.mp4', 0), ('q2', 'A.mp4', 1), ('q3', 'B.mp4', 2))

    def __len__(self) -> int:
        return len(self.ROWS)

    def __getitem__(self, index: int) -> dict:
        sample_id, video, seed = self.ROWS[index]
        sample = plane_scene(num_frames=2, height=42, width=56, seed=seed)
        sample['frame_indices'] = torch.tensor([0, 1]) + 5 * seed
        sample['meta'] = dict(id=sample_id, video=video, dataset='unit')
        return sample


def test_cache_is_keyed_by_video_and_frames_and_shared_across_questions(tmp_path, config_file):
    cfg_path, weights = config_file
    text = cfg_path.read_text().replace('_TeacherCachePlanes', '_SharedVideoQuestions')
    shared_cfg = tmp_path / 'shared.py'
    shared_cfg.write_text(text)
    tool = load_tool('cache_teacher')
    out = tmp_path / 'cache'
    summary = tool.main([str(shared_cfg), '--out', str(out), '--device', 'cpu'])
    assert summary['samples'] == 4 and summary['videos'] == 3
    assert summary['written'] == 3 and summary['skipped'] == 1          # q1 reuses q0's shard
    assert len(list(out.glob('*.safetensors'))) == 3
    assert summary['bytes_per_video'] == pytest.approx(summary['total_bytes'] / 3)
    assert summary['bytes_per_sample'] == pytest.approx(summary['total_bytes'] / 4)
    online, cached = VGGTTeacher(load_from=weights, **TINY_VGGT), CachedTeacher(cache_dir=out)
    dataset = _SharedVideoQuestions()
    for index in range(len(dataset)):
        sample = dataset[index]
        meta = dict(sample['meta'], frame_indices=sample['frame_indices'].tolist())
        expected = online(sample['frames'][None], [meta], [sample['geometry']]).depth
        assert torch.equal(cached(None, [meta], [None]).depth, expected)
    with pytest.raises(FileNotFoundError, match='2 cached shards'):   # video A has two frame selections
        cached(None, [dict(id='q0', video='A.mp4')], [None])


@DATASETS.register_module(force=True)
class _CountingSharedVideoQuestions(_SharedVideoQuestions):
    """The same questions, telling their frames and meta without decoding (as geokit's readers do); counts decodes."""

    decoded: list[int] = []

    def get_data_info(self, index: int) -> dict:
        sample_id, video, _ = self.ROWS[index]
        return dict(meta=dict(id=sample_id, video=video, dataset='unit'))

    def frame_indices(self, index: int) -> torch.Tensor:
        return torch.tensor([0, 1]) + 5 * self.ROWS[index][2]

    def __getitem__(self, index: int) -> dict:
        type(self).decoded.append(index)
        return super().__getitem__(index)


def test_cache_decodes_a_video_once_per_frame_selection_and_not_on_resume(tmp_path, config_file):
    cfg_path, _ = config_file
    counting_cfg = tmp_path / 'counting.py'
    counting_cfg.write_text(cfg_path.read_text().replace('_TeacherCachePlanes', '_CountingSharedVideoQuestions'))
    tool, out = load_tool('cache_teacher'), tmp_path / 'cache'
    _CountingSharedVideoQuestions.decoded.clear()
    first = tool.main([str(counting_cfg), '--out', str(out), '--device', 'cpu'])
    assert _CountingSharedVideoQuestions.decoded == [0, 2, 3]          # q1 shares q0's video and frames
    assert (first['written'], first['skipped'], first['videos']) == (3, 1, 3)
    _CountingSharedVideoQuestions.decoded.clear()
    again = tool.main([str(counting_cfg), '--out', str(out), '--device', 'cpu'])
    assert _CountingSharedVideoQuestions.decoded == []
    assert (again['written'], again['skipped'], again['total_bytes']) == (0, 4, first['total_bytes'])


def test_shard_bytes_matches_a_written_shard_and_paper_settings(tmp_path, config_file):
    from geokit.models.teachers.cached import shard_bytes
    cfg_path, _ = config_file
    out = tmp_path / 'cache'
    summary = load_tool('cache_teacher').main([str(cfg_path), '--out', str(out), '--max-samples', '1',
                                               '--device', 'cpu'])
    sample = _TeacherCachePlanes()[0]
    targets = VGGTTeacher(**TINY_VGGT)(sample['frames'][None], [sample['meta']], [None])
    feature = next(iter(targets.features.values()))
    expected = shard_bytes(sample['frames'].shape[0], tuple(feature.shape[2:4]), feature.shape[-1],
                           len(targets.features), tuple(targets.depth.shape[-2:]))
    assert 0 <= summary['total_bytes'] - expected < 4096               # + the safetensors JSON header
    # paper settings (GeoVR, VGGT-1B): 4 layers x 32 frames x 28 x 37 tokens x 2048 channels fp16 + dense fp32
    paper = shard_bytes(32, (28, 37), 2048, 4, (392, 518))
    assert paper == 4 * 32 * 28 * 37 * 2048 * 2 + (32 * (9 + 2 * 392 * 518) + 1) * 4
    assert shard_bytes(32, (28, 37), 2048, 4, (392, 518), feature_pool=2) < paper / 3


def test_cache_of_the_old_per_question_format_is_refused(tmp_path):
    (tmp_path / 'cache_info.json').write_text(json.dumps({'format': 1}))
    with pytest.raises(ValueError, match='Rebuild'):
        CachedTeacher(cache_dir=tmp_path)


def test_cached_teacher_reads_under_bf16_autocast(tmp_path):
    """The paper configs train under bf16 autocast (AutocastOptimWrapper): reading float16 shards must work there."""
    from geokit.models.teachers.cached import CACHE_FORMAT, shard_name, write_cache_info, write_shard
    from geokit.structures import TeacherTargets
    write_cache_info(tmp_path, dict(format=CACHE_FORMAT))
    targets = TeacherTargets(pose_enc=torch.rand(1, 2, 9), depth=torch.rand(1, 2, 4, 4) + 1,
                             depth_conf=torch.rand(1, 2, 4, 4) + 1, features={0: torch.rand(1, 2, 2, 2, 8)},
                             image_hw=(4, 4))
    write_shard(tmp_path / shard_name('v.mp4', [0, 1]), targets, 0, 'v.mp4', [0, 1])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = CachedTeacher(tmp_path)(None, [dict(video='v.mp4', frame_indices=[0, 1])])
    assert out.features[0].dtype == torch.float32
    torch.testing.assert_close(out.features[0], targets.features[0].half().float())
