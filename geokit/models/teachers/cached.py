"""On-disk teacher targets: one safetensors shard per (video, sampled frames), and ``CachedTeacher``.

``tools/cache_teacher.py CONFIG --out DIR`` writes the shards once; training then reads them through
``CachedTeacher(cache_dir=DIR)`` instead of running the teacher. The targets depend only on the frames, so a shard
is keyed by the video (``meta['video']``, the path the dataset reader gives; ``meta['id']`` for samples without
one) and the frame indices: VSI-590K's many questions about one video with the same frames share one shard.
Shard layout (tensors of one video, no batch dim): ``pose_enc (T, 9)``, ``depth``/``depth_conf (T, H, W)``,
optional ``points (T, H, W, 3)``/``points_conf``, ``metric_scale ()``, ``features.<layer> (T, h, w, C)`` (float16,
optionally 2x2 average-pooled); the safetensors metadata holds ``video``, ``frame_indices``, ``image_hw`` and
``feature_pool`` as JSON. :func:`shard_bytes` gives a shard's size for given settings without running anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from geokit.errors import reading
from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

from .base import BaseTeacher

DENSE_FIELDS = ('pose_enc', 'depth', 'depth_conf', 'points', 'points_conf', 'metric_scale')
CACHE_INFO = 'cache_info.json'
#: Cache layout version (2: shards keyed by video and frames; 1 was keyed by question id).
CACHE_FORMAT = 2
DTYPE_BYTES = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}


def video_key(meta: dict) -> str:
    """What a shard is keyed by besides the frames: ``meta['video']`` (normalised), else ``meta['id']``.

    Raises:
        KeyError: neither is set.
    """
    if meta.get('video'):
        return os.path.normpath(str(meta['video']))
    if meta.get('id') is not None:
        return str(meta['id'])
    raise KeyError("the teacher cache keys shards by meta['video'] (or meta['id'] without one); the sample has "
                   'neither. Use the geokit dataset readers, which set both.')


def shard_name(key: str, frame_indices: Sequence[int] | None) -> str:
    """File name of a shard: a readable prefix of the video key plus a hash of ``(key, frame_indices)``."""
    indices = ','.join(str(int(i)) for i in frame_indices) if frame_indices is not None else '*'
    digest = hashlib.sha1(f'{key}|{indices}'.encode()).hexdigest()[:16]
    readable = re.sub(r'[^A-Za-z0-9_.-]+', '_', str(key))[-80:].lstrip('_.') or 'video'
    return f'{readable}__{digest}.safetensors'


def shard_bytes(num_frames: int, feature_grid_hw: tuple[int, int], feature_channels: int, num_feature_layers: int,
                image_hw: tuple[int, int], feature_pool: int = 1, feature_dtype: torch.dtype = torch.float16,
                dense_dtype: torch.dtype = torch.float32, with_points: bool = False) -> int:
    """Tensor bytes of one shard (safetensors adds a small JSON header): features + pose + depth/conf (+ points).

    Args:
        num_frames: frames of the video (e.g. 32 for GeoVR).
        feature_grid_hw: teacher token grid per frame (VGGT-1B at 518 px, 4:3 video in crop mode: ``(28, 37)``).
        feature_channels: channels per token (VGGT-1B frame + global halves: 2048).
        num_feature_layers: layers stored (GeoVR: 4).
        image_hw: teacher image size of the dense targets (e.g. ``(392, 518)``).
        feature_pool: 1 or 2 (2x2 average pooling, ceil mode).
    """
    grid_h, grid_w = (-(-n // feature_pool) for n in feature_grid_hw)
    features = num_feature_layers * num_frames * grid_h * grid_w * feature_channels * DTYPE_BYTES[feature_dtype]
    height, width = image_hw
    dense = num_frames * (9 + 2 * height * width + (4 * height * width if with_points else 0)) + 1
    return features + dense * DTYPE_BYTES[dense_dtype]


def pool_features(features: torch.Tensor, pool: int) -> torch.Tensor:
    """Average-pool ``(T, h, w, C)`` features by ``pool x pool`` (ceil mode: odd grids keep their last row/col)."""
    if pool <= 1:
        return features
    x = features.permute(0, 3, 1, 2).float()
    x = F.avg_pool2d(x, pool, stride=pool, ceil_mode=True, count_include_pad=False)
    return x.permute(0, 2, 3, 1)


def write_shard(path: str | Path, targets: TeacherTargets, index: int, key: str,
                frame_indices: Sequence[int] | None, feature_layers: Sequence[int] | None = None,
                feature_pool: int = 1, feature_dtype: torch.dtype = torch.float16,
                dense_dtype: torch.dtype = torch.float32) -> int:
    """Write sample ``index`` of a batch of targets to ``path`` atomically (tmp file + ``os.replace``).

    Args:
        key: the shard's video key (:func:`video_key`), stored in the metadata.
        feature_layers: layers to keep (None: all the teacher produced).
        feature_pool: 1 (none) or 2 (2x2 average pooling of the feature grid).
    Returns:
        the shard's size in bytes.
    """
    tensors = {}
    for name in DENSE_FIELDS:
        value = getattr(targets, name)
        if value is not None:
            tensors[name] = value[index].detach().to('cpu', dense_dtype).contiguous()
    layers = sorted(targets.features) if feature_layers is None else list(feature_layers)
    missing = [layer for layer in layers if layer not in targets.features]
    if missing:
        raise KeyError(f'the teacher produced features for layers {sorted(targets.features)}, not {missing}; set '
                       f'--layers to a subset or add the layers to the teacher\'s feature_layers.')
    for layer in layers:
        feature = pool_features(targets.features[layer][index].detach().cpu(), feature_pool)
        tensors[f'features.{layer}'] = feature.to(feature_dtype).contiguous()
    metadata = dict(video=json.dumps(str(key)), image_hw=json.dumps(list(targets.image_hw or [])),
                    frame_indices=json.dumps(None if frame_indices is None else [int(i) for i in frame_indices]),
                    feature_pool=json.dumps(int(feature_pool)))
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path.stat().st_size


def shard_path(out_dir: str | Path, meta: dict, frame_indices: Sequence[int]) -> Path:
    """The shard of a sample's video (:func:`video_key` of ``meta``) and ``frame_indices`` in ``out_dir``."""
    return Path(out_dir) / shard_name(video_key(meta), [int(i) for i in frame_indices])


def cache_sample(teacher: BaseTeacher, sample: dict, out_dir: str | Path, device: str | torch.device = 'cpu',
                 overwrite: bool = False, **write_kwargs) -> tuple[Path, int, bool]:
    """Run ``teacher`` on one dataset sample and write its shard into ``out_dir`` (skipped if it exists).

    The shard key is the sample's video (:func:`video_key`) and ``frame_indices`` (frames ``0..T-1`` when the
    sample has none, as the model's data preprocessor assumes), so ``CachedTeacher`` finds it for exactly those
    frames, and another question about the same video and frames reuses it (the teacher does not run).
    ``write_kwargs`` go to :func:`write_shard` (``feature_layers``, ``feature_pool``, dtypes).

    Returns:
        ``(shard path, its size in bytes, whether it was written now)``.
    """
    meta = dict(sample['meta'])
    indices = sample.get('frame_indices')
    meta['frame_indices'] = [int(i) for i in indices] if indices is not None else list(range(len(sample['frames'])))
    key = video_key(meta)
    path = shard_path(out_dir, meta, meta['frame_indices'])
    if path.is_file() and not overwrite:
        return path, path.stat().st_size, False
    frames = torch.as_tensor(sample['frames'])[None].to(device)
    targets = teacher(frames, [meta], [sample.get('geometry')])
    return path, write_shard(path, targets, 0, key, meta['frame_indices'], **write_kwargs), True


def write_cache_info(out_dir: str | Path, info: dict) -> None:
    """Write ``cache_info.json`` (the settings a cache was made with) atomically."""
    path = Path(out_dir) / CACHE_INFO
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_shard(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and decoded metadata of a shard (a truncated or corrupt one raises InputFileError naming it)."""
    fix = 're-run tools/cache_teacher.py for this dataset (it rewrites the cache), or delete the shard and re-run it'
    with reading(path, 'teacher-cache shard', fix), safe_open(str(path), framework='pt') as handle:
        metadata = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return tensors, metadata


@TEACHERS.register_module()
class CachedTeacher(BaseTeacher):
    """Targets precomputed by ``tools/cache_teacher.py``, looked up by the video and ``meta['frame_indices']``.

    The video is ``meta['video']`` (else ``meta['id']``, see :func:`video_key`). If a sample's ``meta`` has no
    ``frame_indices``, its video must have exactly one shard. Features come back as
    float32 (they were stored as float16, possibly 2x2-pooled: see ``cache_info.json``).

    Args:
        cache_dir: the ``--out`` directory of ``tools/cache_teacher.py``.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        super().__init__()
        self.cache_dir = Path(cache_dir).expanduser()
        info = self.cache_dir / CACHE_INFO
        if not info.is_file():
            raise FileNotFoundError(f'{self.cache_dir} is not a teacher cache ({CACHE_INFO} missing). Run '
                                    f'`python tools/cache_teacher.py CONFIG --out {self.cache_dir}` first, or set '
                                    f'`cache_dir` of the CachedTeacher to the directory it wrote.')
        self.info = json.loads(info.read_text())
        if self.info.get('format') != CACHE_FORMAT:
            raise ValueError(f'{self.cache_dir} is a teacher cache of format {self.info.get("format")} (shards keyed '
                             f'per question); this geokit reads format {CACHE_FORMAT} (keyed by video and frames). '
                             f'Rebuild it with `python tools/cache_teacher.py CONFIG --out NEW_DIR`.')

    def shard_path(self, meta: dict) -> Path:
        """The shard of one sample (see the class docstring for the lookup rule)."""
        key = video_key(meta)
        frame_indices = meta.get('frame_indices')
        if frame_indices is not None:
            path = self.cache_dir / shard_name(key, [int(i) for i in frame_indices])
            if not path.is_file():
                raise FileNotFoundError(f'no cached targets for video {key!r} with frames '
                                        f'{list(map(int, frame_indices))} in {self.cache_dir}; re-run '
                                        f'tools/cache_teacher.py with the same dataset and frame sampler.')
            return path
        candidates = sorted(self.cache_dir.glob(shard_name(key, None).split('__')[0] + '__*.safetensors'))
        candidates = [p for p in candidates if read_shard_key(p) == key]
        if len(candidates) != 1:
            raise FileNotFoundError(f'{len(candidates)} cached shards for video {key!r} in {self.cache_dir} '
                                    f'and no meta["frame_indices"] to choose; pass the sample\'s frame_indices in '
                                    f'meta.')
        return candidates[0]

    @torch.no_grad()
    def forward(self, frames: torch.Tensor | None, meta: Sequence[dict],
                geometry: Sequence[dict | None] | None = None) -> TeacherTargets:
        shards = [read_shard(self.shard_path(m)) for m in meta]
        names = set(shards[0][0])
        if any(set(tensors) != names for tensors, _ in shards):
            raise ValueError('cached shards of one batch hold different targets; rebuild the cache with one config.')
        stacked = {}
        for name in names:
            values = [tensors[name] for tensors, _ in shards]
            if len({tuple(v.shape) for v in values}) != 1:
                raise ValueError(f'cached {name} differs in shape across the batch ({[tuple(v.shape) for v in values]})'
                                 f'; use batch size 1 or a frame sampler with a fixed number of frames.')
            stacked[name] = torch.stack([v.float() for v in values])   # float16 shards; also under autocast
        device = frames.device if isinstance(frames, torch.Tensor) else torch.device('cpu')
        features = {int(name.split('.', 1)[1]): value.to(device) for name, value in stacked.items()
                    if name.startswith('features.')}
        dense = {name: stacked[name].to(device) if name in stacked else None for name in DENSE_FIELDS}
        image_hw = tuple(shards[0][1].get('image_hw') or ()) or None
        return TeacherTargets(features=features, image_hw=image_hw, **dense)


def read_shard_key(path: Path) -> str | None:
    """The video key stored in a shard's metadata."""
    with safe_open(str(path), framework='pt') as handle:
        value = (handle.metadata() or {}).get('video')
    return json.loads(value) if value is not None else None
