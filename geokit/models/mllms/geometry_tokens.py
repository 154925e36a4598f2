"""Vectorised insertion of GeoVR's geometry tokens into a tokenised Qwen-VL batch.

A *camera token* goes right after the last video token of every temporal patch group ("frame" in the LLM's view:
``temporal_patch_size`` input frames) and a *scale token* right after the last camera token of every video. For
Qwen3-VL that gives ``... <|video_pad|>*n <|geo_camera|> <|vision_end|>`` per frame and
``... <|geo_camera|> <|geo_scale|> <|vision_end|>`` for the last frame. The new tokens are text tokens
(``mm_token_type_ids == 0``) with their own embedding rows; their RoPE positions are set by the backbone
(:meth:`geokit.models.mllms.QwenVLBackbone.geometry_position_ids`: each takes its frame's last patch's position, so
no other token moves).

Everything is array index arithmetic (one scan for the video tokens, a step-function shift, scattered writes) in
numpy on the collator's CPU tensors: no Python loop over tokens.
"""
from __future__ import annotations

import numpy as np
import torch


def _group_ends(input_ids: np.ndarray, video_token_id: int, video_grid_thw: np.ndarray,
                spatial_merge_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``is_video (B, L)`` and the flat (row-major) positions of the tokens that end a temporal group / a video.

    The k-th video token of the batch is found once (``flatnonzero``); group and video ends are then indices into
    that list computed from the grids alone, so the work over all tokens is a comparison and one scan.
    """
    is_video = input_ids == video_token_id
    grid = video_grid_thw.astype(np.int64).reshape(-1, 3)
    tokens_per_frame = grid[:, 1] * grid[:, 2] // spatial_merge_size ** 2
    tokens_per_video = grid[:, 0] * tokens_per_frame
    positions = np.flatnonzero(is_video)
    if positions.size != int(tokens_per_video.sum()):
        raise ValueError(f'The batch has {positions.size} video tokens but video_grid_thw {grid.tolist()} (merge '
                         f'{spatial_merge_size}) implies {int(tokens_per_video.sum())}. Pass the input_ids and '
                         f'video_grid_thw produced together by the processor.')
    video_start = np.cumsum(tokens_per_video) - tokens_per_video
    frames = grid[:, 0]
    video_of_frame = np.repeat(np.arange(len(grid)), frames)
    frame_in_video = np.arange(int(frames.sum())) - np.repeat(np.cumsum(frames) - frames, frames)
    frame_end = video_start[video_of_frame] + (frame_in_video + 1) * tokens_per_frame[video_of_frame] - 1
    return is_video, positions[frame_end], positions[video_start + tokens_per_video - 1]


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
    is_video, frame_end, video_end = _group_ends(input_ids.cpu().numpy(), video_token_id,
                                                 video_grid_thw.cpu().numpy(), spatial_merge_size)
    masks = []
    for ends in (frame_end, video_end):
        mask = np.zeros(is_video.size, dtype=bool)
        mask[ends] = True
        masks.append(torch.from_numpy(mask.reshape(is_video.shape)).to(input_ids.device))
    return (torch.from_numpy(is_video).to(input_ids.device), *masks)


def insert_geometry_tokens(input_ids: torch.Tensor, video_token_id: int, video_grid_thw: torch.Tensor,
                           spatial_merge_size: int, camera_token_id: int, scale_token_id: int, pad_token_id: int,
                           per_token: dict[str, tuple[torch.Tensor, int, int]] | None = None,
                           padding_side: str = 'right', first_camera_token_id: int | None = None
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Insert a camera token after every temporal group and a scale token after every video.

    Args:
        input_ids: ``(B, L)`` token ids from the processor (padded on ``padding_side``).
        video_token_id, camera_token_id, scale_token_id, pad_token_id: token ids.
        video_grid_thw: ``(V, 3)`` patch grid of every video in the batch, in order.
        spatial_merge_size: the ViT merger's spatial factor.
        per_token: other ``(B, L)`` tensors to carry along, as ``name -> (tensor, value at inserted tokens,
            value at padding)``, e.g. ``{'attention_mask': (mask, 1, 0), 'labels': (labels, -100, -100)}``.
        padding_side: ``'right'`` or ``'left'``; rows stay aligned on that side after the insertion.
        first_camera_token_id: if given, the camera token of every video's first temporal group gets this id
            instead, so it learns its own embedding (GeoVR's ``camera_token`` row 0: the first frame is the
            reference of the first-frame-relative poses).

    Returns:
        ``(new_input_ids (B, L'), {name: (B, L') tensor})`` with ``L' = L + max_b (inserted tokens in row b)``, on
        the device of ``input_ids``.
    """
    if padding_side not in ('left', 'right'):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    batch, length = input_ids.shape
    # the collator's tensors live on the CPU; numpy's per-call overhead is a fraction of torch's at these sizes
    _, frame_end, video_end = _group_ends(input_ids.cpu().numpy(), video_token_id, video_grid_thw.cpu().numpy(),
                                          spatial_merge_size)
    # tokens are inserted right after these flat positions (a video's last token gets two: camera, then scale)
    points = np.sort(np.concatenate([frame_end, video_end]))
    per_row = np.bincount(points // length, minlength=batch)
    row_length = length + per_row
    new_length = int(row_length.max()) if batch else length
    offset = new_length - row_length if padding_side == 'left' else np.zeros_like(row_length)
    # insertions before each token: a step function of the flat index (constant between insertion points),
    # counted from the start of its row
    before = np.repeat(np.arange(points.size + 1), np.diff(np.concatenate([[0], points + 1, [batch * length]])))
    row_start = (np.cumsum(per_row) - per_row)[:, None]
    row_term = ((new_length - length) * np.arange(batch) + offset)[:, None]
    destination = (np.arange(batch * length).reshape(batch, length) + before.reshape(batch, length) - row_start
                   + row_term).ravel()                                  # flat index in the (B, L') output
    camera_at = destination[frame_end] + 1
    scale_at = destination[video_end] + 2
    camera_ids = np.full(frame_end.size, camera_token_id, dtype=np.int64)
    if first_camera_token_id is not None:
        frames = video_grid_thw.cpu().numpy().astype(np.int64).reshape(-1, 3)[:, 0]
        camera_ids[np.cumsum(frames) - frames] = first_camera_token_id

    def place(tensor: torch.Tensor, camera_value: int | np.ndarray, scale_value: int,
              pad_value: int) -> torch.Tensor:
        source = tensor.cpu().numpy()
        out = np.full(batch * new_length, pad_value, dtype=source.dtype)
        out[destination] = source.ravel()
        out[camera_at] = camera_value
        out[scale_at] = scale_value
        return torch.from_numpy(out.reshape(batch, new_length)).to(tensor.device)

    new_ids = place(input_ids, camera_ids, scale_token_id, pad_token_id)
    carried = {name: place(tensor, fill, fill, pad) for name, (tensor, fill, pad) in (per_token or {}).items()}
    return new_ids, carried
