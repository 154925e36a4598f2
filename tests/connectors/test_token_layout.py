"""The spatial tokens line up one-to-one, in order, with the Qwen-VL vision merger's output tokens."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

from geokit.models.connectors import (
    align_spatial_to_vit_grid,
    merged_token_counts,
    merged_token_positions,
    spatial_tokens_for_vit,
)


def _explicit_tokens(feats_per_video, grid_thw, tp=2, m=2):
    """Slow reference: loop over (video, t, block row, block col) and gather (m_h, m_w, C, tp) by hand."""
    tokens = []
    for feats, (t_grid, h_grid, w_grid) in zip(feats_per_video, grid_thw.tolist()):
        frames = feats.shape[0]
        for t in range(t_grid):
            for i in range(h_grid // m):
                for j in range(w_grid // m):
                    values = []
                    for mh in range(m):
                        for mw in range(m):
                            for c in range(feats.shape[-1]):
                                for dt in range(tp):
                                    frame = min(t * tp + dt, frames - 1)  # the processor repeats the last frame
                                    values.append(feats[frame, i * m + mh, j * m + mw, c])
                    tokens.append(torch.stack(values))
    return torch.stack(tokens)


def test_matches_explicit_loop_for_a_batch_with_odd_frames():
    torch.manual_seed(0)
    grid_thw = torch.tensor([[2, 4, 6], [1, 2, 2], [2, 6, 4]])
    feats = [torch.randn(4, 4, 6, 3), torch.randn(1, 2, 2, 3), torch.randn(3, 6, 4, 3)]  # 1 and 3 frames: padded
    got = spatial_tokens_for_vit(feats, grid_thw)
    assert torch.equal(got, _explicit_tokens(feats, grid_thw))
    assert got.shape[0] == sum(merged_token_counts(grid_thw)) == 12 + 1 + 12


def test_batched_tensor_input_matches_list_input():
    torch.manual_seed(1)
    feats = torch.randn(2, 4, 4, 4, 5)
    grid_thw = torch.tensor([[2, 4, 4], [2, 4, 4]])
    assert torch.equal(spatial_tokens_for_vit(feats, grid_thw), spatial_tokens_for_vit(list(feats), grid_thw))


def test_mismatched_spatial_grid_is_resized_bilinearly_first():
    torch.manual_seed(2)
    feats = torch.randn(4, 5, 7, 3)  # e.g. VGGT patch grid
    grid_thw = torch.tensor([[2, 4, 6]])  # ViT patch grid
    resized = F.interpolate(feats.permute(0, 3, 1, 2), size=(4, 6), mode='bilinear',
                            align_corners=False).permute(0, 2, 3, 1)
    assert torch.allclose(spatial_tokens_for_vit([feats], grid_thw), _explicit_tokens([resized], grid_thw))


@pytest.mark.parametrize('processor_cls', [Qwen2VLVideoProcessor, Qwen3VLVideoProcessor])
def test_order_matches_transformers_patchify_and_merger_grouping(processor_cls):
    """Encode (frame, patch row, patch col) in pixels, patchify with transformers, group m*m patches like the merger."""
    processor = processor_cls()
    patch, m, tp = processor.patch_size, processor.merge_size, processor.temporal_patch_size
    frames, grid_h, grid_w = 3, 4, 6  # odd frame count: the processor pads by repeating the last frame
    f, r, c = torch.meshgrid(torch.arange(frames), torch.arange(grid_h), torch.arange(grid_w), indexing='ij')
    position = torch.stack([f, r, c], dim=-1).float()  # (T, gh, gw, 3): the "spatial features"
    video = position.repeat_interleave(patch, 1).repeat_interleave(patch, 2).permute(0, 3, 1, 2)[None]
    flat, grid_t, gh, gw = processor.patchify(video, patch_size=patch, merge_size=m, temporal_patch_size=tp)
    assert (grid_t, gh, gw) == (2, grid_h, grid_w)
    # a patch vector is laid out (channel, temporal, py, px); the merger views m*m consecutive patches as one token
    per_patch = flat[0].reshape(-1, 3, tp, patch, patch)[..., 0, 0]  # (N_patches, 3, tp)
    merged = per_patch.reshape(-1, m * m, 3, tp)
    ours = spatial_tokens_for_vit([position], torch.tensor([[grid_t, gh, gw]]), tp, m).reshape(-1, m * m, 3, tp)
    assert torch.equal(ours, merged)


def test_positions_follow_the_merged_order():
    grid_thw = torch.tensor([[2, 4, 6], [1, 2, 2]])
    pos = merged_token_positions(grid_thw)
    assert pos.shape == (13, 3)
    assert pos[:4].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0]]
    assert pos[6].tolist() == [1, 0, 0] and pos[12].tolist() == [0, 0, 0]


@pytest.mark.parametrize('frames,grid,match', [
    (6, (2, 4, 4), 'run the spatial encoder on exactly the frames'),
    (2, (2, 4, 4), 'run the spatial encoder on exactly the frames'),
    (4, (2, 4, 5), 'multiples of spatial_merge_size'),
])
def test_impossible_inputs_fail_clearly(frames, grid, match):
    with pytest.raises(ValueError, match=match):
        align_spatial_to_vit_grid(torch.zeros(frames, 4, 4, 2), grid)
