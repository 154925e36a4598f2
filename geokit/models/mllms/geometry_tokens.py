"""Vectorised insertion of GeoVR's geometry tokens into a tokenised Qwen-VL batch.

A *camera token* goes right after the last video token of every temporal group ("frame" in the LLM's view:
``temporal_patch_size`` input frames, one row ``t`` of ``video_grid_thw``) and a *scale token* right after the last
camera token of every video. For Qwen3-VL that gives ``... <|video_pad|>*n <|geo_camera|> <|vision_end|>`` per
frame and ``... <|geo_camera|> <|geo_scale|> <|vision_end|>`` for the last frame. The new tokens are text tokens
(``mm_token_type_ids == 0``) with their own embedding rows; their RoPE positions are set by the backbone
(:meth:`geokit.models.mllms.QwenVLBackbone.geometry_position_ids`: each takes its frame's last patch's position, so
no other token moves).

How it is computed (numpy on the collator's CPU tensors, no Python loop over tokens):

1. :func:`video_token_ends`: the flat (row-major) index of the last video token of every temporal group and of
   every video. Videos are numbered in row-major order of their tokens, as the Qwen-VL processors do, so the
   ends follow from ``video_grid_thw`` and one scan for the video tokens.
2. The *insertion points* are those flat indices (a video's last token appears twice: camera, then scale).
   :func:`output_index` gives every input token its flat index in the ``(B, L')`` output: its column, plus the
   insertions made before it in its own row, plus (left padding) the row's extra padding.
3. The input tokens are scattered to their output indices; a camera token lands one after its group's last token,
   a scale token two after its video's last token; every other output slot is padding.

Worked example (``<|video_pad|>`` = ``V``, text ``T``, pad ``P``, camera ``C``, scale ``S``, first camera ``C0``;
``spatial_merge_size = 2``)::

    input_ids (B=2, L=4), right padding      video_grid_thw
      row 0:  T V V T                          video 0: (2, 2, 2) -> 2 groups of 2*2/4 = 1 token
      row 1:  T V V P                          video 1: (1, 2, 4) -> 1 group of 2*4/4 = 2 tokens

    flat indices of the video tokens: 1 2 | 5 6
    group ends: 1, 2 (video 0), 6 (video 1); video ends: 2, 6  ->  insertion points 1 2 2 6 6
    insertions per row: 3, 2  ->  L' = 4 + 3 = 7
    output index of each input token: row 0 -> 0 1 3 6 (T V V T), row 1 -> 7 8 9 12 (T V V P)
    camera tokens at 1+1, 3+1, 9+1; scale tokens at 3+2, 9+2

    output (B=2, L'=7)
      row 0:  T V C0 V C S T                 (first_camera_token_id: the first group of each video gets C0)
      row 1:  T V V C0 S P P
    with left padding (input row 1 = P T V V) row 1 is shifted right by its 7 - 6 = 1 missing slots:
      row 1:  P P T V V C0 S
"""
from __future__ import annotations

import numpy as np
import torch


def groups_and_tokens(video_grid_thw: np.ndarray, spatial_merge_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(groups_per_video (V,), tokens_per_group (V,))`` of a ``(V, 3)`` grid: ``t`` and ``h * w / merge**2``."""
    grid = video_grid_thw.astype(np.int64).reshape(-1, 3)
    return grid[:, 0], grid[:, 1] * grid[:, 2] // spatial_merge_size ** 2


def first_group_of_each_video(groups_per_video: np.ndarray) -> np.ndarray:
    """``(V,)`` index of every video's first temporal group among all ``G = sum(groups_per_video)`` groups."""
    return np.cumsum(groups_per_video) - groups_per_video


def video_token_ends(input_ids: np.ndarray, video_token_id: int, video_grid_thw: np.ndarray,
                     spatial_merge_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the temporal groups and the videos of a batch end.

    The video tokens of the batch are listed once (``flatnonzero``, row-major); a token's *rank* is its place in
    that list. A group's and a video's last rank follow from the grids alone, so the work over all tokens is one
    comparison and one scan.

    Args:
        input_ids: ``(B, L)`` token ids.
        video_token_id: id of ``<|video_pad|>``.
        video_grid_thw: ``(V, 3)`` patch grid ``(t, h, w)`` of every video, in row-major order of their tokens.
        spatial_merge_size: the ViT merger's spatial factor.

    Returns:
        ``is_video (B, L)`` bool, ``group_end (G,)`` and ``video_end (V,)``: flat indices into ``input_ids``
        (``row * L + column``) of the last token of every temporal group (``G = sum t``) and of every video.

    Raises:
        ValueError: if the number of video tokens does not match ``video_grid_thw``.
    """
    is_video = input_ids == video_token_id
    groups_per_video, tokens_per_group = groups_and_tokens(video_grid_thw, spatial_merge_size)
    tokens_per_video = groups_per_video * tokens_per_group
    video_token_index = np.flatnonzero(is_video)                     # flat index of the video token of each rank
    if video_token_index.size != int(tokens_per_video.sum()):
        raise ValueError(f'The batch has {video_token_index.size} video tokens but video_grid_thw '
                         f'{video_grid_thw.reshape(-1, 3).tolist()} (merge {spatial_merge_size}) implies '
                         f'{int(tokens_per_video.sum())}. Pass the input_ids and video_grid_thw produced together by '
                         f'the processor.')
    video_first_rank = np.cumsum(tokens_per_video) - tokens_per_video
    video_of_group = np.repeat(np.arange(len(groups_per_video)), groups_per_video)            # (G,)
    group_in_video = np.arange(int(groups_per_video.sum())) - np.repeat(
        first_group_of_each_video(groups_per_video), groups_per_video)                         # (G,) 0, 1, ...
    group_last_rank = (video_first_rank[video_of_group]
                       + (group_in_video + 1) * tokens_per_group[video_of_group] - 1)
    video_last_rank = video_first_rank + tokens_per_video - 1
    return is_video, video_token_index[group_last_rank], video_token_index[video_last_rank]


def output_index(insertion_points: np.ndarray, batch: int, length: int, padding_side: str
                 ) -> tuple[np.ndarray, int]:
    """The flat index in the ``(B, L')`` output of every token of a ``(B, L)`` input.

    Args:
        insertion_points: ``(K,)`` sorted flat input indices; one new token goes right after each (an index that
            appears twice gets two).
        batch, length: ``B`` and ``L`` of the input.
        padding_side: ``'right'`` (rows start at column 0) or ``'left'`` (rows end at column ``L' - 1``).

    Returns:
        ``(output_index (B * L,), L')`` with ``L' = L + max_b (insertions in row b)``; token ``i`` of the
        flattened input goes to ``output_index[i]`` of the flattened output.
    """
    inserted_per_row = np.bincount(insertion_points // length, minlength=batch)                # (B,)
    new_length = length + int(inserted_per_row.max()) if batch else length
    # insertion points strictly before each flat index (an exclusive running count), then within its own row
    at_index = np.bincount(insertion_points, minlength=batch * length)
    inserted_before = (np.cumsum(at_index) - at_index).reshape(batch, length)
    inserted_before -= (np.cumsum(inserted_per_row) - inserted_per_row)[:, None]
    extra_padding = new_length - length - inserted_per_row if padding_side == 'left' else np.zeros(batch, np.int64)
    row_start = np.arange(batch) * new_length + extra_padding                                  # (B,)
    return (row_start[:, None] + np.arange(length) + inserted_before).ravel(), new_length


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
    is_video, group_end, video_end = video_token_ends(input_ids.cpu().numpy(), video_token_id,
                                                      video_grid_thw.cpu().numpy(), spatial_merge_size)
    masks = []
    for ends in (group_end, video_end):
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
        the device of ``input_ids`` (see the module docstring for a worked example).
    """
    if padding_side not in ('left', 'right'):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    batch, length = input_ids.shape
    grid = video_grid_thw.cpu().numpy()
    # the collator's tensors live on the CPU; numpy's per-call overhead is a fraction of torch's at these sizes
    _, group_end, video_end = video_token_ends(input_ids.cpu().numpy(), video_token_id, grid, spatial_merge_size)
    insertion_points = np.sort(np.concatenate([group_end, video_end]))
    destination, new_length = output_index(insertion_points, batch, length, padding_side)
    camera_at = destination[group_end] + 1                 # right after the group's last token
    scale_at = destination[video_end] + 2                  # right after the camera token of the video's last group
    camera_ids = np.full(group_end.size, camera_token_id, dtype=np.int64)
    if first_camera_token_id is not None:
        camera_ids[first_group_of_each_video(groups_and_tokens(grid, spatial_merge_size)[0])] = first_camera_token_id

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
