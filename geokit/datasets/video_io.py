"""Video files through PyAV: write RGB frames to mp4, probe a video, decode selected frames.

Errors name the file and the fix; :class:`VideoReadError` (a :class:`geokit.errors.InputFileError`) covers missing,
empty, truncated and undecodable files.
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import torch

from geokit.errors import InputFileError


class VideoReadError(InputFileError):
    """A video file is missing, corrupt or has fewer frames than requested."""


VIDEO_FIX = ('check the path (dataset `data_root` / annotation `video` field), re-create the file (for SynthVSI: '
             'delete the dataset folder and rerun tools/make_synthvsi.py, or let `generate_if_missing` regenerate '
             'it), or set `skip_bad_inputs=True` in the dataset config to skip such items with a warning')


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float = 4.0, crf: int = 18) -> None:
    """Encode RGB frames ``(T, H, W, 3)`` uint8 as H.264 mp4 (yuv420p; H and W must be even), atomically.

    Encoding is single-threaded so that the same frames always give the same bytes.
    """
    path = Path(path)
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f'write_video expects uint8 frames (T, H, W, 3); got {frames.dtype} {frames.shape}.')
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f'H.264 yuv420p needs an even frame size; got {frames.shape[1]}x{frames.shape[2]}. '
                         f'Use an even --resolution.')
    tmp = path.with_name(path.name + '.tmp.mp4')
    with av.open(str(tmp), mode='w', format='mp4') as container:
        stream = container.add_stream('libx264', rate=int(round(fps)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = 'yuv420p'
        stream.codec_context.thread_count = 1
        stream.options = {'crf': str(crf), 'preset': 'veryfast', 'threads': '1'}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    os.replace(tmp, path)


def probe_video(path: str | os.PathLike) -> tuple[int, float | None]:
    """Number of frames and frame rate (None when unknown) of a video file."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(path, 'video file not found', VIDEO_FIX)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            num_frames = stream.frames
            if not num_frames:
                num_frames = sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError, ValueError) as error:
        raise VideoReadError(path, f'cannot read this video ({error})', VIDEO_FIX) from error
    if num_frames <= 0:
        raise VideoReadError(path, 'video has no decodable frames', VIDEO_FIX)
    return num_frames, fps


def read_video_frames(path: str | os.PathLike, indices: torch.Tensor | list[int]) -> torch.Tensor:
    """Decode the frames at ``indices`` (any order, repeats allowed). Returns uint8 ``(len(indices), H, W, 3)`` RGB."""
    path = Path(path)
    wanted = [int(i) for i in indices]
    targets = set(wanted)
    if not path.is_file():
        raise VideoReadError(path, 'video file not found', VIDEO_FIX)
    decoded: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            last = max(targets)
            for index, frame in enumerate(container.decode(stream)):
                if index in targets:
                    decoded[index] = frame.to_ndarray(format='rgb24')
                if index >= last:
                    break
    except (av.error.FFmpegError, IndexError, ValueError) as error:
        raise VideoReadError(path, f'cannot decode this video ({error})', VIDEO_FIX) from error
    missing = sorted(targets - set(decoded))
    if missing:
        raise VideoReadError(path, f'video ended before frame(s) {missing[:5]} (decoded {len(decoded)} of the '
                                   f'{len(targets)} requested frames; the file may be truncated)', VIDEO_FIX)
    return torch.from_numpy(np.stack([decoded[i] for i in wanted]))
