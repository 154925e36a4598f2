"""Line spatial-encoder patch features up with the merged tokens of a Qwen-VL vision tower.

Qwen2-VL / Qwen2.5-VL / Qwen3-VL patchify a video of ``T`` frames (padded to a multiple of ``temporal_patch_size``
by repeating the last frame) on a grid of ``grid_h x grid_w`` patches and flatten the patches in the order
``(grid_t, grid_h / m, grid_w / m, m, m)`` with ``m = spatial_merge_size`` (see ``patchify`` in
``transformers``' ``video_processing_qwen2_vl.py``). Each patch holds ``temporal_patch_size`` frames. The patch
merger then concatenates every ``m * m`` consecutive patches (Qwen2.5-VL undoes its window permutation first), so
merged token ``n`` of a video is the ``2 x 2`` block at row-major block position ``(t, i, j)``:

    n = (t * (grid_h / m) + i) * (grid_w / m) + j

and videos follow each other in the order of ``grid_thw``. :func:`spatial_tokens_for_vit` builds the spatial
tokens in exactly this order; inside one merged token the features are laid out as ``(m_h, m_w, C, tp)`` (the
``2 x 2`` neighbours row-major, each neighbour's channels with the ``temporal_patch_size`` frames innermost), the
layout Spatial-MLLM's connector uses, so a merged spatial token has ``m * m * C * tp`` channels.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ['merged_token_counts', 'merged_token_positions', 'align_spatial_to_vit_grid', 'merge_spatial_tokens',
           'spatial_tokens_for_vit']


def _grid_rows(grid_thw: torch.Tensor) -> list[tuple[int, int, int]]:
    if grid_thw.dim() != 2 or grid_thw.shape[-1] != 3:
        raise ValueError(f'grid_thw must have shape (B, 3) = (grid_t, grid_h, grid_w) per video, got '
                         f'{tuple(grid_thw.shape)}.')
    return [tuple(int(v) for v in row) for row in grid_thw.tolist()]


def merged_token_counts(grid_thw: torch.Tensor, spatial_merge_size: int = 2) -> list[int]:
    """Number of merged vision tokens of each video: ``grid_t * grid_h * grid_w / spatial_merge_size**2``.

    Args:
        grid_thw: ``(B, 3)`` patch grid ``(grid_t, grid_h, grid_w)`` per video, as returned by the Qwen-VL processor
            (``video_grid_thw`` / ``image_grid_thw``).
        spatial_merge_size: the vision tower's ``spatial_merge_size``.
    """
    counts = []
    for index, (t, h, w) in enumerate(_grid_rows(grid_thw)):
        if h % spatial_merge_size or w % spatial_merge_size:
            raise ValueError(f'grid_thw[{index}] = {(t, h, w)}: grid_h and grid_w must be multiples of '
                             f'spatial_merge_size={spatial_merge_size}; grid_thw must come from the Qwen-VL '
                             f'processor of the same model (set the connector\'s spatial_merge_size to the vision '
                             f'config\'s value).')
        counts.append(t * h * w // spatial_merge_size**2)
    return counts


def merged_token_positions(grid_thw: torch.Tensor, spatial_merge_size: int = 2) -> torch.Tensor:
    """Block position ``(t, i, j)`` of every merged vision token, videos concatenated in ``grid_thw`` order.

    Returns:
        ``(N_tokens, 3)`` long: temporal patch index, block row, block column (merged-grid units).
    """
    merged_token_counts(grid_thw, spatial_merge_size)
    positions = []
    for t, h, w in _grid_rows(grid_thw):
        grid = torch.meshgrid(torch.arange(t), torch.arange(h // spatial_merge_size),
                              torch.arange(w // spatial_merge_size), indexing='ij')
        positions.append(torch.stack(grid, dim=-1).reshape(-1, 3))
    return torch.cat(positions, dim=0).to(grid_thw.device)


def align_spatial_to_vit_grid(feats: torch.Tensor, grid_thw: Sequence[int], temporal_patch_size: int = 2,
                              spatial_merge_size: int = 2) -> torch.Tensor:
    """Resample one video's spatial features onto the ViT's patch grid.

    Frames: the Qwen-VL processor pads a video to a multiple of ``temporal_patch_size`` frames by repeating the
    last frame; the same is done here. Space: when the spatial encoder's patch grid ``(h, w)`` differs from the
    ViT's ``(grid_h, grid_w)`` (e.g. VGGT sees 518 px with patch 14, the ViT 504 px), the feature map is resized
    bilinearly (``align_corners=False``, i.e. pixel-centre aligned, both grids covering the same image).

    Args:
        feats: ``(T, h, w, C)`` spatial-encoder patch features of the ``T`` frames the ViT saw.
        grid_thw: ``(grid_t, grid_h, grid_w)`` of this video.
        temporal_patch_size: frames per ViT patch.
        spatial_merge_size: the merger's ``m``.

    Returns:
        ``(grid_t * temporal_patch_size, grid_h, grid_w, C)``.
    """
    if feats.dim() != 4:
        raise ValueError(f'spatial features of one video must have shape (T, h, w, C), got {tuple(feats.shape)}.')
    grid_t, grid_h, grid_w = (int(v) for v in grid_thw)
    if grid_h % spatial_merge_size or grid_w % spatial_merge_size:
        raise ValueError(f'grid_thw {(grid_t, grid_h, grid_w)}: grid_h and grid_w must be multiples of '
                         f'spatial_merge_size={spatial_merge_size}.')
    num_frames = grid_t * temporal_patch_size
    frames = feats.shape[0]
    if frames != num_frames:
        if not num_frames - temporal_patch_size < frames < num_frames:
            raise ValueError(f'the spatial features have T={frames} frames but grid_thw {(grid_t, grid_h, grid_w)} '
                             f'with temporal_patch_size={temporal_patch_size} covers {num_frames} frames: run the '
                             f'spatial encoder on exactly the frames given to the ViT.')
        feats = torch.cat([feats, feats[-1:].expand(num_frames - frames, -1, -1, -1)], dim=0)
    if tuple(feats.shape[1:3]) != (grid_h, grid_w):
        feats = F.interpolate(feats.permute(0, 3, 1, 2), size=(grid_h, grid_w), mode='bilinear',
                              align_corners=False).permute(0, 2, 3, 1)
    return feats


def merge_spatial_tokens(feats: torch.Tensor, temporal_patch_size: int = 2,
                         spatial_merge_size: int = 2) -> torch.Tensor:
    """Group ViT-aligned spatial features into merged tokens in the vision merger's order.

    Args:
        feats: ``(grid_t * temporal_patch_size, grid_h, grid_w, C)`` (see :func:`align_spatial_to_vit_grid`).

    Returns:
        ``(grid_t * grid_h / m * grid_w / m, m * m * C * temporal_patch_size)``; row ``(t * grid_h / m + i) *
        grid_w / m + j`` holds block ``(t, i, j)`` laid out as ``(m_h, m_w, C, tp)``.
    """
    frames, grid_h, grid_w, channels = feats.shape
    m, tp = spatial_merge_size, temporal_patch_size
    if frames % tp or grid_h % m or grid_w % m:
        raise ValueError(f'cannot merge spatial features of shape {tuple(feats.shape)} with temporal_patch_size={tp} '
                         f'and spatial_merge_size={m}; align them first with align_spatial_to_vit_grid.')
    x = feats.reshape(frames // tp, tp, grid_h // m, m, grid_w // m, m, channels)
    x = x.permute(0, 2, 4, 3, 5, 6, 1)  # (t, i, j, m_h, m_w, C, tp)
    return x.reshape(-1, m * m * channels * tp)


def spatial_tokens_for_vit(spatial_feats: torch.Tensor | Sequence[torch.Tensor], grid_thw: torch.Tensor,
                           temporal_patch_size: int = 2, spatial_merge_size: int = 2) -> torch.Tensor:
    """Spatial tokens of a batch of videos, one per merged ViT token, in the order of the vision tower's output.

    Args:
        spatial_feats: ``(B, T, h, w, C)`` patch features (e.g. a VGGT aggregator layer, ``C = 2 * 1024`` for
            VGGT-1B: frame-attention half and global-attention half concatenated), or a sequence of ``B`` tensors
            ``(T_b, h_b, w_b, C)`` when the videos differ in size.
        grid_thw: ``(B, 3)`` ViT patch grid per video, in the order the videos' tokens appear in the vision
            embeddings.

    Returns:
        ``(N_tokens, m * m * C * temporal_patch_size)`` with ``N_tokens = sum_b grid_t * grid_h * grid_w / m**2``.
    """
    rows = _grid_rows(grid_thw)
    if len(spatial_feats) != len(rows):
        raise ValueError(f'got spatial features for {len(spatial_feats)} videos but grid_thw has '
                         f'{len(rows)} rows: pass one (T, h, w, C) feature map per video, in grid_thw order.')
    tokens = [merge_spatial_tokens(align_spatial_to_vit_grid(feats, row, temporal_patch_size, spatial_merge_size),
                                   temporal_patch_size, spatial_merge_size)
              for feats, row in zip(spatial_feats, rows)]
    return torch.cat(tokens, dim=0)
