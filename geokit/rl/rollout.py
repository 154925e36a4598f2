"""Rollout helpers for GRPO: repeating a prompt batch per group, completion masks, seeded sampling.

Layout: a batch of ``B`` prompts becomes ``B * G`` rows, prompt ``b``'s ``G`` copies at rows ``b * G ... b * G +
G - 1`` (what :mod:`geokit.rl.advantages` expects).
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch

#: ``inputs`` entries with one row per sample (repeated row-wise)
ROW_KEYS = ('input_ids', 'attention_mask', 'mm_token_type_ids', 'video_grid_thw', 'second_per_grid_ts')


def repeat_batch(inputs: dict, data_samples: dict, group_size: int) -> tuple[dict, dict]:
    """Each prompt of a data-preprocessor batch ``group_size`` times, consecutively.

    ``pixel_values_videos`` (all videos' patches concatenated) is repeated video by video, using
    ``video_grid_thw`` to find each video's rows; ``frames``, ``meta`` and ``geometry`` sample by sample.
    """
    if group_size < 1:
        raise ValueError(f'group_size must be >= 1, got {group_size}.')
    out = dict(inputs)
    for key in ROW_KEYS:
        if inputs.get(key) is not None:
            out[key] = inputs[key].repeat_interleave(group_size, dim=0)
    if inputs.get('pixel_values_videos') is not None:
        per_video = inputs['video_grid_thw'].prod(-1).tolist()
        chunks = torch.split(inputs['pixel_values_videos'], per_video, dim=0)
        out['pixel_values_videos'] = torch.cat([chunk for chunk in chunks for _ in range(group_size)], 0)
    samples = dict(data_samples)
    frames = data_samples['frames']
    samples['frames'] = frames.repeat_interleave(group_size, dim=0) if isinstance(frames, torch.Tensor) else \
        [f for f in frames for _ in range(group_size)]
    for key in ('meta', 'geometry'):
        if key in data_samples:
            samples[key] = [copy.copy(item) for item in data_samples[key] for _ in range(group_size)]
    return out, samples


def repeat_vision_outputs(vision: Any, group_size: int) -> Any:
    """A backbone vision output (:meth:`GeometricMLLM.encode_vision`) with each video's tokens repeated
    ``group_size`` times, matching :func:`repeat_batch`: the ViT (+ fusion) runs once per prompt, not per
    completion, and gradients from all completions meet in the one vision pass.

    Repeats ``pooler_output`` (one ``(N_v, D)`` tensor per video) and, when present, Qwen3-VL's
    ``deepstack_features`` (per tapped ViT layer, one ``(N_v, D)`` tensor per video).
    """
    out = copy.copy(vision)
    out.pooler_output = tuple(p for p in vision.pooler_output for _ in range(group_size))
    deepstack = getattr(vision, 'deepstack_features', None)
    if deepstack is not None:
        out.deepstack_features = [tuple(video for video in layer for _ in range(group_size)) for layer in deepstack]
    return out


def completion_mask(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """``(N, C)`` long mask: 1 up to and including each row's first ``eos_token_id``, 0 after it (all 1 for a row
    that never ended, i.e. was cut at the length limit)."""
    is_eos = completion_ids == eos_token_id
    length = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, completion_ids.shape[1])
    return (torch.arange(completion_ids.shape[1], device=completion_ids.device)[None] < length[:, None]).long()


def sampling_seed(base_seed: int, step: int, rank: int) -> int:
    """A seed for the sampling of rollout ``step`` on ``rank``: the rollouts are a function of these three
    numbers, so a resumed run samples exactly what the uninterrupted one did."""
    return (int(base_seed) * 1_000_003 + int(step)) * 1_009 + int(rank)


@contextlib.contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """Run the body with torch's CPU and CUDA generators seeded by ``seed``; restore the previous states after, so
    the rest of training (dropout, data order) does not depend on how much randomness sampling used."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
