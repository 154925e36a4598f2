"""Inputs of the training/inference benchmark: samples (SynthVSI or synthetic videos), batches, a teacher cache."""
from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Sequence

import torch

from geokit.models.teachers.cached import CACHE_FORMAT, cache_sample, write_cache_info
from geokit.registry import DATASETS, TEACHERS

from .measure import summarize_ms, synchronize

#: Synthetic videos: the camera slides along x by this many metres per frame (cam-from-world translation -x).
CAMERA_STEP_M = 0.05
#: Synthetic focal length, as a fraction of the frame width (pixels), principal point at the frame centre.
FOCAL_FRACTION_OF_WIDTH = 0.8
#: Synthetic depth is uniform in ``[MIN_DEPTH_M, MIN_DEPTH_M + 1)`` metres.
MIN_DEPTH_M = 1.5
#: Synthetic videos' ``frame_indices``: every ``FRAME_STRIDE``-th frame of a notional source video.
FRAME_STRIDE = 4
#: Synthetic videos' playback rate (frames per second) in ``meta``.
SYNTHETIC_FPS = 2.0
#: The question every synthetic sample asks (VSI-Bench object counting); sample ``i`` answers ``i + 2``.
SYNTHETIC_QUESTION = ('<video>\nThese are frames of a video.\nHow many chair(s) are in this room?\nPlease answer the '
                      'question using a single word or phrase.')


def dataset_samples(cfg, count: int) -> list[dict]:
    """The first ``count`` samples of the config's ``train_dataloader.dataset`` (SynthVSI at tiny scale)."""
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    if len(dataset) < count:
        raise ValueError(f'the training set has {len(dataset)} samples, the benchmark needs {count}; lower '
                         f'--num-batches/--batch-size or generate more SynthVSI scenes.')
    return [dataset[i] for i in range(count)]


def _synthetic_cameras(num_frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``extrinsics (T, 3, 4)`` cam-from-world of a camera sliding along x, ``intrinsics (T, 3, 3)`` pixels."""
    extrinsics = torch.zeros(num_frames, 3, 4)
    extrinsics[:, :3, :3] = torch.eye(3)
    extrinsics[:, 0, 3] = -CAMERA_STEP_M * torch.arange(num_frames, dtype=torch.float32)
    focal = FOCAL_FRACTION_OF_WIDTH * width
    intrinsics = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    return extrinsics, intrinsics.expand(num_frames, 3, 3).clone()


def synthetic_samples(count: int, num_frames: int, height: int, width: int, seed: int = 0) -> list[dict]:
    """Random videos with plausible ground-truth geometry (for the oracle scale teacher), VSI-Bench-style QA.

    ``frames (T, H, W, 3)`` uint8; ``geometry``: ``depth (T, H, W)`` metres, ``extrinsics (T, 3, 4)``
    cam-from-world (a camera sliding along x), ``intrinsics (T, 3, 3)`` pixels (see the module constants).
    """
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(count):
        answer = str(i + 2)
        extrinsics, intrinsics = _synthetic_cameras(num_frames, height, width)
        samples.append({
            'frames': torch.randint(0, 256, (num_frames, height, width, 3), dtype=torch.uint8, generator=generator),
            'frame_indices': torch.arange(num_frames) * FRAME_STRIDE,
            'conversations': [{'from': 'human', 'value': SYNTHETIC_QUESTION}, {'from': 'gpt', 'value': answer}],
            'meta': {'id': f'synthetic_{i}', 'dataset': 'synthetic', 'scene_name': f'synthetic_{i}',
                     'question_type': 'object_counting', 'options': None, 'ground_truth': answer,
                     'fps': SYNTHETIC_FPS},
            'geometry': {'depth': MIN_DEPTH_M + torch.rand(num_frames, height, width, generator=generator),
                         'extrinsics': extrinsics, 'intrinsics': intrinsics},
        })
    return samples


def first_frames(samples: Sequence[dict], num_frames: int) -> list[dict]:
    """The samples cut to their first ``num_frames`` frames, without geometry (Spatial-MLLM's paper inputs)."""
    return [dict(s, frames=s['frames'][:num_frames], frame_indices=s['frame_indices'][:num_frames], geometry=None)
            for s in samples]


def batched(samples: Sequence[dict], batch_size: int) -> list[list[dict]]:
    """Consecutive batches of ``batch_size`` samples (the last one shorter when they do not divide)."""
    return [list(samples[i:i + batch_size]) for i in range(0, len(samples), batch_size)]


def build_teacher_cache(teacher_cfg: dict, samples: Sequence[dict], out_dir: str, device: torch.device) -> dict:
    """Run the teacher once per sample and write a :class:`CachedTeacher` cache, as ``tools/cache_teacher.py`` does.

    The same code (:func:`~geokit.models.teachers.cached.cache_sample`; all feature layers, float16 features,
    float32 dense targets). Returns ``{'samples', 'total_bytes', 'ms_per_sample'}`` (``ms_per_sample``: the median
    wall time of teacher run + shard write).
    """
    os.makedirs(out_dir, exist_ok=True)
    teacher = TEACHERS.build(copy.deepcopy(teacher_cfg)).to(device).eval()
    total_bytes, times = 0, []
    for sample in samples:
        synchronize(device)
        start = time.perf_counter()
        _, size, _ = cache_sample(teacher, sample, out_dir, device, overwrite=True)
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
        total_bytes += size
    write_cache_info(out_dir, dict(format=CACHE_FORMAT, teacher=json.loads(json.dumps(teacher_cfg, default=str)),
                                   feature_layers=None, feature_pool=1, feature_dtype='float16',
                                   dense_dtype='float32', source='geokit.benchmarking'))
    return dict(samples=len(samples), total_bytes=total_bytes, ms_per_sample=summarize_ms(times)['median'])
