"""Batch collation: geometry_collate feeds a geometry-trained model batches of QA samples pseudo_collate rejects."""
from __future__ import annotations

import pytest
import torch

from geokit.datasets import geometry_collate


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

