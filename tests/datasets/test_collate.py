"""Batch collation: geometry_collate for geometry-only models; uncollate undoes mmengine's pseudo_collate exactly."""
from __future__ import annotations

import pytest
import torch
from mmengine.dataset import pseudo_collate

from geokit.datasets import geometry_collate, list_collate, uncollate


def _sample(options, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return dict(frames=torch.randint(0, 256, (2, 56, 56, 3), generator=generator, dtype=torch.uint8),
                conversations=[{'from': 'human', 'value': 'q'}], meta=dict(id=seed, options=options),
                geometry=dict(depth=torch.full((2, 56, 56), 2.0), intrinsics=torch.eye(3).repeat(2, 1, 1) * 40,
                              extrinsics=torch.eye(3, 4).repeat(2, 1, 1)))


def test_geometry_collate_keeps_frames_geometry_meta_as_lists():
    samples = [_sample(None, 0), _sample(['A. 1', 'B. 2'], 1)]  # options differ in type across samples
    batch = geometry_collate(samples)
    assert set(batch) == {'frames', 'geometry', 'meta'}
    assert all(torch.equal(a, s['frames']) for a, s in zip(batch['frames'], samples))
    assert batch['geometry'][1] is samples[1]['geometry'] and batch['meta'][0]['id'] == 0
    with pytest.raises(ValueError, match='empty batch'):
        geometry_collate([])
    with pytest.raises(KeyError, match=r'samples \[1\]'):
        geometry_collate([samples[0], {'meta': {}}])


def _qa_sample(seed: int, turns: int = 2) -> dict:
    """A geokit QA sample with the nested shapes pseudo_collate transposes: turns, frame indices, meta, geometry."""
    conversations = [{'from': 'human' if k % 2 == 0 else 'gpt', 'value': f'turn {k} of {seed}'} for k in range(turns)]
    return dict(frames=torch.full((2, 4, 4, 3), seed, dtype=torch.uint8), frame_indices=[seed, seed + 3],
                conversations=conversations, meta=dict(id=f'q{seed}', options=None, fps=2.0),
                geometry=dict(depth=torch.full((2, 4, 4), float(seed))))


@pytest.mark.parametrize('size, turns', [(1, 2), (2, 2), (3, 2), (2, 3), (2, 0)])
def test_uncollate_inverts_pseudo_collate(size, turns):
    """The batch size may equal the number of turns (2, 2): the old guess on list lengths could not tell them apart."""
    samples = [_qa_sample(seed, turns) for seed in range(size)]
    restored = uncollate(pseudo_collate(samples))
    assert len(restored) == size
    for got, want in zip(restored, samples):
        assert torch.equal(got['frames'], want['frames']) and torch.equal(got['geometry']['depth'],
                                                                          want['geometry']['depth'])
        assert got['conversations'] == want['conversations']
        assert got['frame_indices'] == want['frame_indices'] and got['meta'] == want['meta']


def test_uncollate_keeps_a_list_batch_and_rejects_other_forms():
    samples = [_qa_sample(0), _qa_sample(1)]
    assert uncollate(list_collate(samples)) == samples and uncollate(tuple(samples)) == samples
    with pytest.raises(TypeError, match=r"collate_fn=dict\(type='geokit.list_collate'\)"):
        uncollate(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"holds \['Tensor'\].*geokit.list_collate"):
        uncollate([torch.zeros(3)])
    # geometry_collate's dict (a list of per-sample meta dicts) is not pseudo_collate output
    with pytest.raises(TypeError, match='not mmengine pseudo_collate output.*geokit.list_collate'):
        uncollate(geometry_collate(samples))
    with pytest.raises(TypeError, match=r'lengths \[1, 2\].*geokit.list_collate'):
        uncollate({'frames': [torch.zeros(1), torch.zeros(1)], 'meta': {'id': ['a']}})
