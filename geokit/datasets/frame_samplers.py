"""Frame samplers: which frames of a video a dataset item uses.

Interface (every sampler in ``FRAME_SAMPLERS``): a callable
``sampler(num_video_frames: int, fps: float | None, **context) -> torch.LongTensor (T,)`` returning indices into the
source video, in increasing order. ``fps`` is the video's frame rate (None when unknown); ``context`` carries
optional extras (e.g. ``video_path``, ``geometry``) that content-aware samplers may use and others ignore.
"""
from __future__ import annotations

import torch

from geokit.registry import FRAME_SAMPLERS


@FRAME_SAMPLERS.register_module()
class UniformSampler:
    """``num_frames`` indices spread evenly from the first to the last frame (VSI-Bench's ``np.linspace`` rule).

    Videos shorter than ``num_frames`` repeat frames, so every sample has exactly ``num_frames`` frames.
    """

    def __init__(self, num_frames: int = 16) -> None:
        if num_frames < 1:
            raise ValueError(f'UniformSampler needs num_frames >= 1, got {num_frames}.')
        self.num_frames = num_frames

    def __call__(self, num_video_frames: int, fps: float | None = None, **context) -> torch.Tensor:
        if num_video_frames < 1:
            raise ValueError(f'cannot sample frames from an empty video (num_video_frames={num_video_frames}).')
        return torch.linspace(0, num_video_frames - 1, self.num_frames).floor().long()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_frames={self.num_frames})'


@FRAME_SAMPLERS.register_module()
class FPSSampler:
    """Frames at ``fps`` per second of video (starting at frame 0), thinned uniformly to at most ``max_frames``.

    Falls back to ``default_video_fps`` when the container reports no frame rate.
    """

    def __init__(self, fps: float = 1.0, max_frames: int | None = 32, default_video_fps: float = 30.0) -> None:
        if fps <= 0:
            raise ValueError(f'FPSSampler needs fps > 0, got {fps}.')
        self.fps, self.max_frames, self.default_video_fps = fps, max_frames, default_video_fps

    def __call__(self, num_video_frames: int, fps: float | None = None, **context) -> torch.Tensor:
        if num_video_frames < 1:
            raise ValueError(f'cannot sample frames from an empty video (num_video_frames={num_video_frames}).')
        step = (fps or self.default_video_fps) / self.fps
        indices = torch.arange(0.0, num_video_frames, max(step, 1.0)).floor().long()
        if self.max_frames is not None and len(indices) > self.max_frames:
            keep = torch.linspace(0, len(indices) - 1, self.max_frames).floor().long()
            indices = indices[keep]
        return indices

    def __repr__(self) -> str:
        return f'{type(self).__name__}(fps={self.fps}, max_frames={self.max_frames})'
