"""Spatial-MLLM's space-aware frame sampling: greedy maximum voxel coverage of teacher point maps.

Selection (:func:`space_aware_select`), from a 3D teacher's point maps of ``N`` candidate frames:

1. keep the points whose confidence is ``>= median`` (over all finite points of all frames, linear interpolation
   for an even count) and ``> conf_threshold`` (0.1);
2. voxel size = the smallest side of the kept points' axis-aligned bounding box / ``voxel_divisor`` (20), voxels
   anchored at the box's minimum corner;
3. greedily add the frame whose points occupy the most voxels not yet covered (ties -> lowest index), up to
   ``num_frames`` frames, stopping early when no frame adds a voxel; return the chosen indices sorted.

The teacher is expensive, so selections are precomputed per video by ``tools/sa_sample.py`` into a JSONL file, one
object per line::

    {"video": "<the video path as the dataset resolves it>", "frame_indices": [3, 17, ...],   # sorted, source frames
     "num_frames": 16, "num_candidates": 128, "covered_voxels": 5234, "voxel_size": 0.021, "teacher": "VGGTTeacher"}

Only ``video`` and ``frame_indices`` are read back; the rest documents how the selection was made. A dataset then
uses ``frame_sampler=dict(type='SpaceAwareSampler', selection_file='sa.jsonl')``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from mmengine.logging import print_log

from geokit.geometry.voxels import frame_voxel_sets
from geokit.registry import FRAME_SAMPLERS

__all__ = ['SpaceAwareSampler', 'confident_points_mask', 'greedy_max_coverage', 'read_selection_rows',
           'read_selections', 'selection_key', 'space_aware_select']


def _median(values: torch.Tensor) -> torch.Tensor:
    """Median with linear interpolation (``numpy.percentile(x, 50)``), in O(n) for very large inputs."""
    n = values.numel()
    lower = values.kthvalue((n - 1) // 2 + 1).values
    upper = values.kthvalue(n // 2 + 1).values
    return (lower + upper) / 2


def confident_points_mask(points: torch.Tensor, conf: torch.Tensor, conf_threshold: float = 0.1) -> torch.Tensor:
    """``(T, H, W)`` bool: finite points with ``conf >= median(conf)`` and ``conf > conf_threshold``.

    Args:
        points: ``(T, H, W, 3)`` world points (any unit).
        conf: ``(T, H, W)`` confidence, larger = more confident.
    """
    if points.dim() != 4 or points.shape[-1] != 3 or conf.shape != points.shape[:-1]:
        raise ValueError(f'space-aware sampling needs points (T, H, W, 3) and confidences (T, H, W), got '
                         f'{tuple(points.shape)} and {tuple(conf.shape)}.')
    finite = torch.isfinite(points).all(-1) & torch.isfinite(conf)
    if not finite.any():
        return finite
    conf = conf.float()
    return finite & (conf >= _median(conf[finite])) & (conf > conf_threshold)


def greedy_max_coverage(voxel_sets: list[torch.Tensor], num_frames: int) -> list[int]:
    """Greedy maximum coverage: frame indices in the order they were picked.

    Each step picks the frame adding the most uncovered voxels (ties -> lowest index); stops after ``num_frames``
    picks or when no frame adds anything.

    Args:
        voxel_sets: per frame, a 1-D long tensor of unique voxel keys.
        num_frames: maximum number of frames ``K``.
    """
    if not voxel_sets or num_frames < 1:
        return []
    sizes = [len(keys) for keys in voxel_sets]
    if sum(sizes) == 0:
        return []
    _, compact = torch.unique(torch.cat(list(voxel_sets)), return_inverse=True)
    per_frame = compact.split(sizes)
    covered = torch.zeros(int(compact.max()) + 1, dtype=torch.bool)
    picked: list[int] = []
    for _ in range(min(num_frames, len(voxel_sets))):
        gains = torch.tensor([int((~covered[ids]).sum()) for ids in per_frame])
        best = int(torch.argmax(gains))  # first maximum = lowest index on ties
        if gains[best] <= 0:
            break
        picked.append(best)
        covered[per_frame[best]] = True
    return picked


def space_aware_select(points: torch.Tensor, conf: torch.Tensor, num_frames: int, conf_threshold: float = 0.1,
                       voxel_divisor: float = 20.0) -> tuple[list[int], dict]:
    """Space-aware frame selection (see the module docstring).

    Args:
        points: ``(T, H, W, 3)`` teacher world points of the ``T`` candidate frames (one shared world frame).
        conf: ``(T, H, W)`` their confidences.
        num_frames: ``K``, the most frames to return.
        conf_threshold: absolute confidence floor.
        voxel_divisor: voxel size = smallest bounding-box side / ``voxel_divisor``.

    Returns:
        Sorted candidate indices (at most ``K``; fewer when coverage saturates) and a dict with ``voxel_size`` and
        ``covered_voxels``. A degenerate box (a flat scene) uses its smallest non-zero side; when every confident
        point is the same point, the first frame that sees it is returned. No confident point at all -> ``[]``.
    """
    mask = confident_points_mask(points, conf, conf_threshold)
    if not mask.any():
        return [], dict(voxel_size=None, covered_voxels=0)
    kept = points[mask].double()
    low = kept.min(0).values
    sides = kept.max(0).values - low
    positive = sides[sides > 0]
    if positive.numel() == 0:
        first = int(mask.flatten(1).any(1).nonzero()[0])
        return [first], dict(voxel_size=None, covered_voxels=1)
    voxel_size = float(positive.min()) / voxel_divisor
    voxel_sets = frame_voxel_sets(points.float() - low.float(), mask, voxel_size)
    picked = greedy_max_coverage(voxel_sets, num_frames)
    covered = int(torch.unique(torch.cat([voxel_sets[i] for i in picked])).numel()) if picked else 0
    return sorted(picked), dict(voxel_size=voxel_size, covered_voxels=covered)


def selection_key(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """The key a video's selection is stored under: its real path (relative paths joined to ``root`` or the cwd)."""
    path = Path(path)
    if root and not path.is_absolute():
        path = Path(root) / path
    return os.path.realpath(path)


def read_selection_rows(selection_file: str | os.PathLike) -> list[dict]:
    """The JSON objects of a ``tools/sa_sample.py`` file, checked for ``video`` and ``frame_indices``.

    A truncated last line (an interrupted run) is ignored with a warning.
    """
    path = Path(selection_file)
    if not path.is_file():
        raise FileNotFoundError(f'space-aware selection file {path} not found. Fix: precompute it with '
                                f'`python tools/sa_sample.py CONFIG --out {path}` or set `selection_file` in the '
                                f'frame_sampler config.')
    rows = []
    lines = path.read_text(encoding='utf-8').splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                print_log(f'{path}:{number}: ignoring a truncated last line.', logger='current', level=30)
                continue
            raise ValueError(f'{path}:{number} is not valid JSON; re-run tools/sa_sample.py.') from None
        if not isinstance(row, dict) or 'video' not in row or 'frame_indices' not in row:
            raise ValueError(f'{path}:{number}: each line must be an object with "video" and "frame_indices".')
        rows.append(row)
    return rows


def read_selections(selection_file: str | os.PathLike, data_root: str | None = None) -> dict[str, list[int]]:
    """``{selection_key(video, data_root): sorted frame_indices}`` from a ``tools/sa_sample.py`` JSONL file.

    Relative ``video`` paths are taken relative to ``data_root`` when given, else to the working directory.
    """
    return {selection_key(row['video'], data_root): sorted(int(i) for i in row['frame_indices'])
            for row in read_selection_rows(selection_file)}


@FRAME_SAMPLERS.register_module()
class SpaceAwareSampler:
    """Frames chosen by space-aware sampling, read from a precomputed selection file.

    Frame-sampler call (see :mod:`geokit.datasets.frame_samplers`): ``sampler(num_video_frames, fps, video_path=...)
    -> LongTensor (K,)`` with the selected source-frame indices in increasing order. ``K <= num_frames``: a
    selection stops early when further frames add no new voxels.

    Args:
        num_frames: ``K``; a stored selection with more frames is an error (re-run the tool with this ``K``).
        selection_file: JSONL from ``tools/sa_sample.py`` (schema in the module docstring); None when the sampler
            is only used through :meth:`select` (e.g. by the tool).
        data_root: folder relative ``video`` paths in the file are relative to (default: the working directory).
        fallback: a ``FRAME_SAMPLERS`` config used, with a warning, for videos missing from the file; None makes a
            missing video an error.
        conf_threshold, voxel_divisor: selection parameters (see :func:`space_aware_select`).
    """

    def __init__(self, num_frames: int = 16, selection_file: str | None = None, data_root: str | None = None,
                 fallback: dict | None = None, conf_threshold: float = 0.1, voxel_divisor: float = 20.0) -> None:
        if num_frames < 1:
            raise ValueError(f'SpaceAwareSampler needs num_frames >= 1, got {num_frames}.')
        self.num_frames = num_frames
        self.selection_file = selection_file
        self.data_root = data_root
        self.conf_threshold = conf_threshold
        self.voxel_divisor = voxel_divisor
        self.fallback = FRAME_SAMPLERS.build(fallback) if fallback is not None else None
        self._selections: dict[str, list[int]] | None = None

    def select(self, points: torch.Tensor, conf: torch.Tensor) -> tuple[list[int], dict]:
        """Select from ``(T, H, W, 3)`` points and ``(T, H, W)`` confidences (see :func:`space_aware_select`)."""
        return space_aware_select(points, conf, self.num_frames, self.conf_threshold, self.voxel_divisor)

    @property
    def selections(self) -> dict[str, list[int]]:
        if self._selections is None:
            if self.selection_file is None:
                raise ValueError('SpaceAwareSampler has no selection_file: precompute selections with '
                                 '`python tools/sa_sample.py CONFIG --out sa.jsonl` and set '
                                 "`frame_sampler=dict(type='SpaceAwareSampler', selection_file='sa.jsonl')`.")
            self._selections = read_selections(self.selection_file, self.data_root)
        return self._selections

    def __call__(self, num_video_frames: int, fps: float | None = None, video_path: str | None = None,
                 **context) -> torch.Tensor:
        if video_path is None:
            raise ValueError('SpaceAwareSampler needs the `video_path` context from the dataset to look up the '
                             'precomputed selection.')
        indices = self.selections.get(selection_key(video_path))
        if indices is None:
            if self.fallback is None:
                raise KeyError(f'{video_path} has no space-aware selection in {self.selection_file}. Fix: run '
                               f'`python tools/sa_sample.py CONFIG --out {self.selection_file}` for this dataset '
                               f'(it resumes), or set `fallback=dict(type=\'UniformSampler\', ...)`.')
            print_log(f'{video_path} has no space-aware selection; using {self.fallback!r}.', logger='current',
                      level=30)
            return self.fallback(num_video_frames, fps, video_path=video_path, **context)
        if len(indices) > self.num_frames or (indices and indices[-1] >= num_video_frames):
            raise ValueError(f'the stored selection for {video_path} ({indices}) does not fit num_frames='
                             f'{self.num_frames} and a {num_video_frames}-frame video; re-run tools/sa_sample.py '
                             f'with --num-frames {self.num_frames}.')
        return torch.tensor(indices, dtype=torch.long)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_frames={self.num_frames}, selection_file={self.selection_file!r}, '
                f'conf_threshold={self.conf_threshold}, voxel_divisor={self.voxel_divisor})')
