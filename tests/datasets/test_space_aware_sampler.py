"""Space-aware frame sampling: the selection rule, its determinism, coverage on SynthVSI, the tool and the reader."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from geokit.datasets import VSIBenchDataset, ensure_synthvsi
from geokit.datasets.space_aware_sampler import (
    SpaceAwareSampler,
    confident_points_mask,
    greedy_max_coverage,
    read_selections,
    space_aware_select,
)
from geokit.geometry.voxels import frame_voxel_sets
from geokit.models.teachers import OracleTeacher
from geokit.registry import FRAME_SAMPLERS

from ..tool_loader import load_tool


def _keys(*values):
    return torch.tensor(values, dtype=torch.long)


def test_greedy_picks_largest_gain_lowest_index_on_ties_and_stops_when_nothing_is_added():
    sets = [_keys(1, 2, 3), _keys(1, 2, 3), _keys(4, 5), _keys(3, 4), _keys(6)]
    assert greedy_max_coverage(sets, 10) == [0, 2, 4]  # frame 1 ties frame 0; frames 1 and 3 then add nothing
    assert greedy_max_coverage(sets, 2) == [0, 2]
    assert greedy_max_coverage([_keys(), _keys()], 3) == []


def test_confidence_mask_keeps_median_and_above_and_drops_low_or_non_finite():
    points = torch.zeros(1, 2, 3, 3)
    points[0, 1, 2, 0] = float('nan')
    conf = torch.tensor([[[0.05, 0.08, 0.09], [0.5, 2.0, 3.0]]])  # median of the 5 finite = 0.5
    mask = confident_points_mask(points, conf)
    assert mask.tolist() == [[[False, False, False], [True, True, False]]]
    low = torch.full((1, 2, 2), 0.05)  # median 0.05 but not > 0.1
    assert not confident_points_mask(torch.zeros(1, 2, 2, 3), low).any()


def _cells(x_indices):
    """Points on a 0.1-spaced lattice: x in ``x_indices``, y and z in 0..3 (4 x 4 cells per x)."""
    grid = torch.meshgrid(torch.tensor(x_indices), torch.arange(4), torch.arange(4), indexing='ij')
    return torch.stack(grid, dim=-1).reshape(-1, 3).float() * 0.1


def _frame(x_indices):
    """An (8, 8, 3) point map showing the cells of ``x_indices`` (each repeated to fill the 64 pixels)."""
    cells = _cells(x_indices)
    return cells.repeat(64 // len(cells), 1).reshape(8, 8, 3)


def test_selection_on_synthetic_point_maps_follows_greedy_coverage_and_is_deterministic():
    # A = x 0 (16 cells), B = x 1-2 (32), A+B+C = x 0-3 (64), D = x 10 (16); voxel = 0.3 / 20 = 0.015 < spacing
    points = torch.stack([_frame([0]), _frame([0]), _frame([1, 2]), _frame([0, 1, 2, 3]), _frame([10]),
                          _frame([10])])
    conf = torch.ones(points.shape[:-1])
    chosen, info = space_aware_select(points, conf, num_frames=3)
    assert chosen == [3, 4]  # 64 new, then 16 (frame 5 ties, lower index wins), then nothing adds: stop early
    assert info == dict(voxel_size=pytest.approx(0.3 / 20), covered_voxels=80)
    assert space_aware_select(points, conf, num_frames=3) == (chosen, info)
    conf[3] = 0.0  # frame 3 is not confident: B (32), then A (frames 0, 1, 4, 5 tie at 16 -> 0), then D (4)
    assert space_aware_select(points, conf, num_frames=3)[0] == [0, 2, 4]


def test_flat_scene_uses_the_smallest_non_zero_side():
    points = torch.stack([_frame([0]), _frame([5])])
    points[..., 2] = 0.0  # flat: z side 0 -> use the y side 0.3
    chosen, info = space_aware_select(points, torch.ones(points.shape[:-1]), num_frames=2)
    assert chosen == [0, 1] and info['voxel_size'] == pytest.approx(0.3 / 20)


def _covered(voxel_sets, indices):
    return torch.unique(torch.cat([voxel_sets[i] for i in indices])).numel()


@pytest.fixture(scope='module')
def synthvsi_root(tmp_path_factory):
    return ensure_synthvsi(tmp_path_factory.mktemp('sa') / 'synthvsi', num_scenes=3, frames=16,
                           resolution=(48, 48), seed=0)


def test_on_synthvsi_k_frames_cover_at_least_as_many_voxels_as_k_uniform_frames(synthvsi_root):
    oracle = OracleTeacher(image_size=42, patch_size=14)
    k = 4
    scenes = sorted(synthvsi_root.glob('*/*/geometry.safetensors'))
    assert len(scenes) == 3
    for path in scenes:
        geometry = load_file(path)
        frames = torch.zeros(1, *geometry['depth'].shape, 3, dtype=torch.uint8)
        targets = oracle(frames, [dict(id=path.parent.name)], [geometry])
        points, conf = targets.points[0], targets.points_conf[0]
        chosen, info = space_aware_select(points, conf, k)
        assert len(chosen) == k and chosen == sorted(chosen)
        mask = confident_points_mask(points, conf)
        sets = frame_voxel_sets(points - points[mask].min(0).values, mask, info['voxel_size'])
        uniform = torch.linspace(0, len(sets) - 1, k).floor().long().tolist()
        assert _covered(sets, chosen) == info['covered_voxels']
        assert _covered(sets, chosen) >= _covered(sets, uniform), path.parent.name


def test_tool_precomputes_resumes_and_the_dataset_reads_the_selection(synthvsi_root, tmp_path):
    config = tmp_path / 'sa_config.py'
    config.write_text(
        "default_scope = 'geokit'\n"
        "model = dict(teacher=dict(type='OracleTeacher', image_size=42, patch_size=14))\n"
        f"test_dataloader = dict(dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', "
        f"data_root='{synthvsi_root}'))\n")
    out = tmp_path / 'sa.jsonl'
    tool = load_tool('sa_sample')
    rows = tool.main([str(config), '--out', str(out), '--num-frames', '4', '--candidates', '32', '--device', 'cpu'])
    assert len(rows) == 1  # the test split has one scene: one video shared by all its questions
    stored = [json.loads(line) for line in out.read_text().splitlines()]
    assert stored == rows and len(stored[0]['frame_indices']) == 4
    assert stored[0]['num_candidates'] == 16 and stored[0]['teacher'] == 'OracleTeacher'

    out.write_text(out.read_text() + '{"video": "trunc')  # an interrupted run leaves a partial line
    assert tool.main([str(config), '--out', str(out), '--num-frames', '4']) == rows  # nothing recomputed
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows

    sampler = dict(type='SpaceAwareSampler', num_frames=4, selection_file=str(out))
    dataset = VSIBenchDataset(ann_file='test.jsonl', data_root=str(synthvsi_root), frame_sampler=sampler)
    sample = dataset[0]
    assert sample['frame_indices'].tolist() == rows[0]['frame_indices']
    assert sample['frames'].shape[0] == 4 and sample['geometry']['depth'].shape[0] == 4


def test_sampler_is_registered_and_reports_missing_videos(tmp_path):
    selection = tmp_path / 'sa.jsonl'
    selection.write_text(json.dumps(dict(video='a/video.mp4', frame_indices=[9, 2, 5])) + '\n')
    sampler = FRAME_SAMPLERS.build(dict(type='SpaceAwareSampler', num_frames=3, selection_file=str(selection),
                                        data_root=str(tmp_path)))
    assert sampler(10, None, video_path=str(tmp_path / 'a' / 'video.mp4')).tolist() == [2, 5, 9]
    with pytest.raises(KeyError, match='tools/sa_sample.py'):
        sampler(10, None, video_path=str(tmp_path / 'b.mp4'))
    with pytest.raises(ValueError, match='does not fit num_frames=3 and a 8-frame video'):
        sampler(8, None, video_path=str(tmp_path / 'a' / 'video.mp4'))
    fallback = SpaceAwareSampler(num_frames=3, selection_file=str(selection), fallback=dict(type='UniformSampler',
                                                                                            num_frames=2))
    assert fallback(10, None, video_path='elsewhere.mp4').tolist() == [0, 9]
    assert read_selections(selection, data_root=str(tmp_path)) == {str((tmp_path / 'a/video.mp4').resolve()):
                                                                   [2, 5, 9]}
