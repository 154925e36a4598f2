"""Geometry-token insertion: the vectorised implementation against a slow per-token reference loop."""
from __future__ import annotations

import pytest
import torch

from geokit.models.mllms import insert_geometry_tokens, video_token_layout

VID, CAM, SCALE, PAD, TEXT = 5, 7, 8, 0, (10, 20)


def reference(rows: list[list[int]], grids: list[tuple[int, int, int]], merge: int) -> list[list[int]]:
    """Walk every token; after the last token of each temporal group add CAM, after a video's last add SCALE."""
    videos = iter(grids)
    out, state = [], None
    for row in rows:
        new = []
        for token in row:
            new.append(token)
            if token != VID:
                continue
            if state is None:
                t, h, w = next(videos)
                state = {'per_frame': h * w // merge ** 2, 'frames': t, 'seen': 0}
            state['seen'] += 1
            if state['seen'] % state['per_frame'] == 0:
                new.append(CAM)
                if state['seen'] == state['per_frame'] * state['frames']:
                    new.append(SCALE)
                    state = None
        out.append(new)
    return out


def random_batch(seed: int, merge: int = 2):
    g = torch.Generator().manual_seed(seed)
    rows, grids = [], []
    for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
        row = [TEXT[0]] * int(torch.randint(0, 4, (1,), generator=g))
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
            t, h, w = (int(torch.randint(1, 4, (1,), generator=g)), 2 * int(torch.randint(1, 3, (1,), generator=g)),
                       2 * int(torch.randint(1, 3, (1,), generator=g)))
            grids.append((t, h, w))
            per_frame = h * w // merge ** 2
            for _ in range(t):
                row += [TEXT[1]] + [VID] * per_frame + [TEXT[1]]
            row += [TEXT[0]] * int(torch.randint(0, 3, (1,), generator=g))
        rows.append(row)
    return rows, grids


def pad(rows: list[list[int]], side: str, value: int = PAD) -> torch.Tensor:
    length = max(len(r) for r in rows)
    padded = [[value] * (length - len(r)) + r if side == 'left' else r + [value] * (length - len(r)) for r in rows]
    return torch.tensor(padded)


@pytest.mark.parametrize('side', ['right', 'left'])
@pytest.mark.parametrize('seed', range(12))
def test_matches_reference_loop(seed, side):
    rows, grids = random_batch(seed)
    if not grids:
        grids_t = torch.zeros(0, 3, dtype=torch.long)
    else:
        grids_t = torch.tensor(grids)
    ids = pad(rows, side)
    mask = pad([[1] * len(r) for r in rows], side, 0)
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    new_ids, carried = insert_geometry_tokens(ids, VID, grids_t, 2, CAM, SCALE, PAD,
                                              {'attention_mask': (mask, 1, 0), 'labels': (labels, -100, -100)},
                                              padding_side=side)
    expected = reference(rows, grids, 2)
    assert new_ids.tolist() == pad(expected, side).tolist()
    expected_mask = pad([[1] * len(r) for r in expected], side, 0)
    assert carried['attention_mask'].tolist() == expected_mask.tolist()
    geometry = (new_ids == CAM) | (new_ids == SCALE)
    assert (carried['labels'][geometry] == -100).all()
    keep = expected_mask.bool() & ~geometry
    assert carried['labels'][keep].tolist() == new_ids[keep].tolist()


def test_mismatched_grid_is_an_error():
    ids = torch.tensor([[1, VID, VID, VID, 2]])
    with pytest.raises(ValueError, match='video tokens'):
        insert_geometry_tokens(ids, VID, torch.tensor([[1, 4, 4]]), 2, CAM, SCALE, PAD)


FIRST = 9
T, V, P, C, S, C0 = TEXT[0], VID, PAD, CAM, SCALE, FIRST


@pytest.mark.parametrize('side, rows, expected', [
    ('right', [[T, V, V, T], [T, V, V, P]], [[T, V, C0, V, C, S, T], [T, V, V, C0, S, P, P]]),
    ('left', [[T, V, V, T], [P, T, V, V]], [[T, V, C0, V, C, S, T], [P, P, T, V, V, C0, S]]),
])
def test_known_values_of_the_module_docstring_example(side, rows, expected):
    """The worked example of geokit.models.mllms.geometry_tokens: two videos, two groups of one token and one
    group of two tokens, each video's first camera token being ``first_camera_token_id``."""
    ids = torch.tensor(rows)
    mask = (ids != P).long()
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    grids = torch.tensor([[2, 2, 2], [1, 2, 4]])
    new_ids, carried = insert_geometry_tokens(ids, VID, grids, 2, CAM, SCALE, PAD,
                                              {'attention_mask': (mask, 1, 0), 'labels': (labels, -100, -100)},
                                              padding_side=side, first_camera_token_id=FIRST)
    assert new_ids.tolist() == expected
    assert carried['attention_mask'].tolist() == [[int(t != P) for t in row] for row in expected]
    assert carried['labels'].tolist() == [[t if t not in (P, C, S, C0) else -100 for t in row] for row in expected]
    is_video, frame_end, video_end = video_token_layout(ids, VID, grids, 2)
    assert is_video.tolist() == (ids == VID).tolist()
    row1_end = 2 if side == 'right' else 3               # column of video 1's last token
    assert frame_end.nonzero().tolist() == [[0, 1], [0, 2], [1, row1_end]]
    assert video_end.nonzero().tolist() == [[0, 2], [1, row1_end]]
