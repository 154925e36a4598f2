"""Ground-truth geometry files (``geometry.safetensors`` beside a video): read, check, mask invalid depth.

A geometry file holds one entry per video frame: ``depth (N, H, W)`` metres (0 = no depth), ``extrinsics (N, 3, 4)``
OpenCV camera-from-world, ``intrinsics (N, 3, 3)`` pixels, ``instance (N, H, W)`` int32. Every failure raises
:class:`~geokit.errors.InputFileError` naming the file; NaN/inf depth becomes invalid (0) with one warning per file.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from mmengine.logging import print_log
from safetensors.torch import load_file

from geokit.errors import InputFileError, InputFileNotFoundError, reading

GEOMETRY_KEYS = ('depth', 'extrinsics', 'intrinsics', 'instance')

GEOMETRY_FIX = ('re-create the geometry file (SynthVSI: delete the scene folder and rerun tools/make_synthvsi.py), '
                'point the annotation row\'s `geometry` field at the right file, or set `skip_bad_inputs=True` in the '
                'dataset config to skip such items with a warning')

#: geometry files whose non-finite depth was already reported
_WARNED: set[str] = set()


def read_geometry_file(path: str | os.PathLike, indices: Sequence[int] | torch.Tensor,
                       num_video_frames: int | None = None) -> dict[str, torch.Tensor]:
    """The geometry of the frames ``indices`` of a video.

    Args:
        path: the ``.safetensors`` geometry file.
        indices: frame indices into the video.
        num_video_frames: frames of the video; the file must have at least as many.
    Returns:
        ``{'depth' (T, H, W), 'extrinsics' (T, 3, 4), 'intrinsics' (T, 3, 3), 'instance' (T, H, W)}``; depth is 0
        where the file has 0, NaN or inf.
    Raises:
        InputFileError: missing, truncated or corrupt file, missing entries, too few frames, non-finite cameras.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise InputFileNotFoundError(path, 'geometry file does not exist', GEOMETRY_FIX)
    with reading(path, 'geometry file', GEOMETRY_FIX):
        tensors = load_file(path)
    missing = [key for key in GEOMETRY_KEYS if key not in tensors]
    if missing:
        raise InputFileError(path, f'geometry file has no {missing} entries (it has {sorted(tensors)})', GEOMETRY_FIX)
    counts = {key: int(tensors[key].shape[0]) for key in GEOMETRY_KEYS}
    num = min(counts.values())
    if len(set(counts.values())) > 1:
        raise InputFileError(path, f'geometry entries disagree on the number of frames ({counts})', GEOMETRY_FIX)
    wanted = torch.as_tensor(indices, dtype=torch.long)
    needed = max(num_video_frames or 0, int(wanted.max()) + 1 if wanted.numel() else 0)
    if num < needed:
        video = f'the video has {num_video_frames} frames' if num_video_frames else f'frame {needed - 1} is needed'
        raise InputFileError(path, f'geometry file has {num} frames but {video}', GEOMETRY_FIX)
    geometry = {key: tensors[key][wanted] for key in GEOMETRY_KEYS}
    for key in ('extrinsics', 'intrinsics'):
        if not torch.isfinite(geometry[key]).all():
            bad = (~torch.isfinite(geometry[key]).flatten(1).all(1)).nonzero().flatten().tolist()
            raise InputFileError(path, f'{key} are not finite for frames {[int(wanted[i]) for i in bad][:5]}',
                                 GEOMETRY_FIX)
    depth = geometry['depth']
    bad = ~torch.isfinite(depth)
    if bad.any():
        geometry['depth'] = torch.where(bad, torch.zeros((), dtype=depth.dtype), depth)
        if path not in _WARNED:
            _WARNED.add(path)
            frames = bad.flatten(1).any(1).sum()
            print_log(f'{path}: {int(bad.sum())} depth values are NaN/inf (in {int(frames)} of the {len(depth)} '
                      f'sampled frames); they are treated as pixels without depth (masked). (Reported once per '
                      f'file.)', logger='current', level=logging.WARNING)
    return geometry
