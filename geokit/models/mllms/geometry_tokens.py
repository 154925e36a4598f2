"""Vectorised insertion of GeoVR's geometry tokens into a tokenised Qwen-VL batch.

A *camera token* goes right after the last video token of every temporal patch group ("frame" in the LLM's view:
``temporal_patch_size`` input frames) and a *scale token* right after the last camera token of every video. For
Qwen3-VL that gives ``... <|video_pad|>*n <|geo_camera|> <|vision_end|>`` per frame and
``... <|geo_camera|> <|geo_scale|> <|vision_end|>`` for the last frame. The new tokens are text tokens
(``mm_token_type_ids == 0``), so stock transformers' ``get_rope_index`` gives them consecutive 1-D positions
between the vision blocks.

Everything is torch index arithmetic (cumulative sums, ``searchsorted``, ``scatter``): no Python loop over tokens.
"""
from __future__ import annotations

import torch


def video_token_layout(input_ids: torch.Tensor, video_token_id: int, video_grid_thw: torch.Tensor,
                       spatial_merge_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Locate the video tokens that end a temporal group and those that end a video.

    Videos are numbered in row-major order of their tokens (batch row, then position), as the Qwen-VL processors
    and models do.

    Args:
        input_ids: ``(B, L)`` token ids.
        video_token_id: id of ``<|video_pad|>``.
        video_grid_thw: ``(V, 3)`` patch grid ``(t, h, w)`` of every video (before the spatial merge).
        spatial_merge_size: the ViT merger's spatial factor (tokens per frame = ``h * w / merge**2``).

    Returns:
        ``is_video (B, L)``, ``frame_end (B, L)`` and ``video_end (B, L)`` boolean masks.

    Raises:
        ValueError: if the number of video tokens does not match ``video_grid_thw``.
    """
    is_video = input_ids == video_token_id
    grid = video_grid_thw.to(input_ids.device).long()
    tokens_per_frame = grid[:, 1] * grid[:, 2] // spatial_merge_size ** 2
    tokens_per_video = grid[:, 0] * tokens_per_frame
    total = int(is_video.sum())
    if total != int(tokens_per_video.sum()):
        raise ValueError(f'The batch has {total} video tokens but video_grid_thw {grid.tolist()} (merge '
                         f'{spatial_merge_size}) implies {int(tokens_per_video.sum())}. Pass the input_ids and '
                         f'video_grid_thw produced together by the processor.')
    if len(grid) == 0:
        return is_video, is_video.clone(), is_video.clone()
    index = torch.cumsum(is_video.flatten(), 0).view_as(input_ids) - 1       # global index of each video token
    video_end_index = torch.cumsum(tokens_per_video, 0)
    video_id = torch.searchsorted(video_end_index, index.clamp(min=0), right=True).clamp(max=len(grid) - 1)
    local = index - (video_end_index - tokens_per_video)[video_id] + 1          # 1-based index inside the video
    frame_end = is_video & (local % tokens_per_frame[video_id] == 0)
    video_end = is_video & (local == tokens_per_video[video_id])
    return is_video, frame_end, video_end


def insert_geometry_tokens(input_ids: torch.Tensor, video_token_id: int, video_grid_thw: torch.Tensor,
                           spatial_merge_size: int, camera_token_id: int, scale_token_id: int, pad_token_id: int,
                           per_token: dict[str, tuple[torch.Tensor, int, int]] | None = None,
                           padding_side: str = 'right') -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Insert a camera token after every temporal group and a scale token after every video.

    Args:
        input_ids: ``(B, L)`` token ids from the processor (padded on ``padding_side``).
        video_token_id, camera_token_id, scale_token_id, pad_token_id: token ids.
        video_grid_thw: ``(V, 3)`` patch grid of every video in the batch, in order.
        spatial_merge_size: the ViT merger's spatial factor.
        per_token: other ``(B, L)`` tensors to carry along, as ``name -> (tensor, value at inserted tokens,
            value at padding)``, e.g. ``{'attention_mask': (mask, 1, 0), 'labels': (labels, -100, -100)}``.
        padding_side: ``'right'`` or ``'left'``; rows stay aligned on that side after the insertion.

    Returns:
        ``(new_input_ids (B, L'), {name: (B, L') tensor})`` with ``L' = L + max_b (inserted tokens in row b)``.
    """
    if padding_side not in ('left', 'right'):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    batch, length = input_ids.shape
    _, frame_end, video_end = video_token_layout(input_ids, video_token_id, video_grid_thw, spatial_merge_size)
    inserted = frame_end.long() + video_end.long()                                    # tokens inserted after j
    shift = torch.cumsum(inserted, dim=1) - inserted                                  # exclusive prefix sum
    row_length = length + inserted.sum(1)
    new_length = int(row_length.max())
    offset = (new_length - row_length) if padding_side == 'left' else torch.zeros_like(row_length)
    new_pos = torch.arange(length, device=input_ids.device) + shift + offset[:, None]   # (B, L)

    cam_rows, cam_cols = frame_end.nonzero(as_tuple=True)
    cam_pos = new_pos[cam_rows, cam_cols] + 1
    scale_rows, scale_cols = video_end.nonzero(as_tuple=True)
    scale_pos = new_pos[scale_rows, scale_cols] + 2

    def place(tensor: torch.Tensor, camera_value: int, scale_value: int, pad_value: int) -> torch.Tensor:
        out = tensor.new_full((batch, new_length), pad_value)
        out.scatter_(1, new_pos, tensor)
        out[cam_rows, cam_pos] = camera_value
        out[scale_rows, scale_pos] = scale_value
        return out

    new_ids = place(input_ids, camera_token_id, scale_token_id, pad_token_id)
    carried = {name: place(tensor, fill, fill, pad) for name, (tensor, fill, pad) in (per_token or {}).items()}
    return new_ids, carried
