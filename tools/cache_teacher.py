"""Run a config's 3D teacher over its dataset once and store the targets on disk.

    python tools/cache_teacher.py CONFIG --out DIR [--split train] [--layers 4 11 17 23] [--pool 2]

The teacher is the config's ``teacher`` (or ``model.teacher``), the dataset is ``<split>_dataloader.dataset``.
One safetensors shard per (video, sampled frames) (see geokit/models/teachers/cached.py), written atomically; the
questions that share a video and its frames share the shard, and shards that exist are skipped without decoding
the video (for datasets that expose ``frame_indices``, as geokit's readers do), so an interrupted run resumes where
it stopped and a video is decoded once per frame selection, not once per question. The summary reports bytes per
video (per shard) and per sample. What shrinks a cache:
``--pool 2`` (features / 4), ``--layers`` (only the layers the objectives read), ``--dense-dtype float16`` (pose,
depth, confidence / 2); see docs/benchmarks.md for the sizes at paper settings. Train from the cache with
``model.teacher=dict(type='CachedTeacher', cache_dir=DIR)``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from tqdm import tqdm

from geokit.engine.launch import load_config, split_dataset_config
from geokit.errors import InputFileError
from geokit.models.teachers.cached import (
    CACHE_FORMAT,
    CACHE_INFO,
    cache_sample,
    shard_path,
    write_cache_info,
)
from geokit.registry import DATASETS, TEACHERS

DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16, 'float32': torch.float32}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Precompute teacher targets for a dataset.')
    parser.add_argument('config', help='config file with a teacher (or model.teacher) and <split>_dataloader')
    parser.add_argument('--out', required=True, help='cache directory')
    parser.add_argument('--split', default='train', help='which <split>_dataloader.dataset to cache')
    parser.add_argument('--layers', type=int, nargs='*', default=None,
                        help='feature layers to store (default: all the teacher produces; none: --layers)')
    parser.add_argument('--pool', type=int, default=1, choices=[1, 2], help='2: 2x2 average-pool the features')
    parser.add_argument('--feature-dtype', default='float16', choices=sorted(DTYPES))
    parser.add_argument('--dense-dtype', default='float32', choices=sorted(DTYPES),
                        help='dtype of pose, depth, points and confidences')
    parser.add_argument('--max-samples', type=int, default=None, help='cache only the first N samples')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def teacher_config(cfg: Config) -> dict:
    if cfg.get('teacher') is not None:
        return cfg.teacher
    if cfg.get('model') is not None and cfg.model.get('teacher') is not None:
        return cfg.model.teacher
    raise KeyError('the config has no `teacher` (nor `model.teacher`); add one, e.g. '
                   "teacher = dict(type='VGGTTeacher', load_from='/path/to/VGGT-1B').")


def check_cache_info(out: Path, info: dict) -> None:
    """Write ``cache_info.json``, or check that an existing cache was made with the same settings."""
    path = out / CACHE_INFO
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != info:
            changed = sorted(k for k in set(existing) | set(info) if existing.get(k) != info.get(k))
            raise ValueError(f'{out} holds a cache made with different settings ({changed}); use another --out or '
                             f'delete it.')
        return
    write_cache_info(out, info)


def existing_shard(dataset, index: int, out: Path) -> Path | None:
    """The shard of item ``index`` when ``out`` already holds it, found without decoding the video.

    Needs a dataset that tells an item's frames from the video's header (``frame_indices(index)``, as
    ``VSIBenchDataset`` / ``VSI590KDataset`` do) and its meta without reading it (``get_data_info``); for any other
    dataset, or an unreadable video (reading the item then reports or skips it), ``None``.
    """
    if not (hasattr(dataset, 'frame_indices') and hasattr(dataset, 'get_data_info')):
        return None
    try:
        indices = dataset.frame_indices(index)
    except InputFileError:
        return None
    path = shard_path(out, dataset.get_data_info(index)['meta'], indices)
    return path if path.is_file() else None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'geokit'))
    dataset_cfg = split_dataset_config(cfg, args.split)
    teacher_cfg = teacher_config(cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = dict(format=CACHE_FORMAT, teacher=json.loads(json.dumps(teacher_cfg.to_dict(), default=str)),
                dataset=json.loads(json.dumps(dataset_cfg.to_dict(), default=str)),
                feature_layers=args.layers, feature_pool=args.pool, feature_dtype=args.feature_dtype,
                dense_dtype=args.dense_dtype)
    check_cache_info(out, info)
    dataset = DATASETS.build(dataset_cfg)
    teacher = TEACHERS.build(teacher_cfg).to(args.device)
    count = len(dataset) if args.max_samples is None else min(args.max_samples, len(dataset))
    written = skipped = 0
    shards: dict[Path, int] = {}
    for index in tqdm(range(count), desc=f'caching teacher targets -> {out}', unit='sample'):
        done = existing_shard(dataset, index, out)
        if done is not None:
            shards[done] = done.stat().st_size
            skipped += 1
            continue
        path, size, wrote = cache_sample(teacher, dataset[index], out, args.device, feature_layers=args.layers,
                                         feature_pool=args.pool, feature_dtype=DTYPES[args.feature_dtype],
                                         dense_dtype=DTYPES[args.dense_dtype])
        shards[path] = size
        written += int(wrote)
        skipped += int(not wrote)
    total_bytes = sum(shards.values())
    summary = dict(samples=count, videos=len(shards), written=written, skipped=skipped, total_bytes=total_bytes,
                   bytes_per_video=total_bytes / max(len(shards), 1), bytes_per_sample=total_bytes / max(count, 1))
    print_log(f'teacher cache {out}: {summary}', logger='current')
    return summary


if __name__ == '__main__':
    main()
