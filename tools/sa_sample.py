"""Precompute Spatial-MLLM space-aware frame selections for every video of a dataset.

    python tools/sa_sample.py CONFIG --out work_dirs/sa_test.jsonl
    python tools/sa_sample.py CONFIG --out sa.jsonl --num-frames 16 --candidates 128 --device cuda
    python tools/sa_sample.py CONFIG --out sa.jsonl --dataset-key train_dataloader.dataset \
        --cfg-options model.teacher.type=OracleTeacher

For each distinct video of the dataset at ``--dataset-key``, ``--candidates`` frames are taken uniformly, the
config's teacher (``--teacher-key``, e.g. a ``VGGTTeacher`` with point maps, or ``OracleTeacher`` on SynthVSI)
predicts their point maps, and :func:`geokit.datasets.space_aware_sampler.space_aware_select` picks at most
``--num-frames`` of them. One JSON object per video is written to ``--out`` (schema in
:mod:`geokit.datasets.space_aware_sampler`); the file is rewritten atomically every ``--save-every`` videos, and a
re-run skips the videos already in it (resume). Use the result with
``frame_sampler=dict(type='SpaceAwareSampler', num_frames=K, selection_file=OUT)``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from tqdm import tqdm

from geokit.datasets import distinct_videos
from geokit.datasets.space_aware_sampler import read_selection_rows, selection_key, space_aware_select
from geokit.engine.launch import load_config
from geokit.registry import DATASETS, TEACHERS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Precompute space-aware frame selections (Spatial-MLLM).')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--out', required=True, help='output JSONL file (resumed if it exists)')
    parser.add_argument('--num-frames', type=int, default=16, help='frames to select per video (K)')
    parser.add_argument('--candidates', type=int, default=128,
                        help='frames taken uniformly from each video for the teacher to see')
    parser.add_argument('--dataset-key', default='test_dataloader.dataset', help='dotted config key of the dataset')
    parser.add_argument('--teacher-key', default='model.teacher', help='dotted config key of the teacher')
    parser.add_argument('--conf-threshold', type=float, default=0.1, help='absolute confidence floor')
    parser.add_argument('--voxel-divisor', type=float, default=20.0,
                        help='voxel size = smallest bounding-box side / this')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--save-every', type=int, default=20, help='rewrite the output every N videos')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def _get(cfg: Config, dotted: str) -> dict:
    node = cfg.to_dict()
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f'the config has no `{dotted}` (missing `{part}`); pass the right --dataset-key / '
                           f'--teacher-key or add it to the config.')
        node = node[part]
    return copy.deepcopy(node)


def _write_atomic(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(''.join(json.dumps(row) + '\n' for row in rows), encoding='utf-8')
    os.replace(tmp, path)


def select_video(teacher: torch.nn.Module, sample: dict, num_frames: int, device: str, conf_threshold: float,
                 voxel_divisor: float) -> dict:
    """Run the teacher on one dataset sample's frames and return the JSONL record of its selection."""
    indices = sample['frame_indices']
    keep = torch.ones(len(indices), dtype=torch.bool)
    keep[1:] = indices[1:] != indices[:-1]  # short videos: the uniform candidates repeat frames
    indices = indices[keep]
    geometry = sample.get('geometry')
    if geometry is not None:
        geometry = {name: value[keep] for name, value in geometry.items()}
    meta = dict(sample['meta'], frame_indices=indices.tolist())
    targets = teacher(sample['frames'][keep][None].to(device), [meta], [geometry])
    targets.require('points', consumer='tools/sa_sample.py')
    points = targets.points[0].float().cpu()
    conf = next((c for c in (targets.points_conf, targets.depth_conf) if c is not None), None)
    conf = torch.ones(points.shape[:-1]) if conf is None else conf[0].float().cpu()
    chosen, info = space_aware_select(points, conf, num_frames, conf_threshold, voxel_divisor)
    return dict(video=str(sample['meta']['video']), frame_indices=[int(indices[i]) for i in chosen],
                num_frames=num_frames, num_candidates=int(len(indices)), covered_voxels=info['covered_voxels'],
                voxel_size=info['voxel_size'], teacher=type(teacher).__name__)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'geokit'))
    dataset_cfg = _get(cfg, args.dataset_key)
    dataset_cfg.update(frame_sampler=dict(type='UniformSampler', num_frames=args.candidates), pipeline=[])
    dataset = DATASETS.build(dataset_cfg)
    teacher = TEACHERS.build(_get(cfg, args.teacher_key)).to(args.device).eval()

    out = Path(args.out)
    rows = read_selection_rows(out) if out.is_file() else []
    done = {selection_key(row['video']) for row in rows}
    first_item = {}
    for index in distinct_videos(dataset):
        first_item.setdefault(selection_key(dataset.get_data_info(index)['meta']['video']), index)
    pending = [index for key, index in first_item.items() if key not in done]
    print_log(f'{len(first_item)} videos, {len(first_item) - len(pending)} already in {out}, {len(pending)} to do.',
              logger='current')
    for count, index in enumerate(tqdm(pending, desc='space-aware sampling'), 1):
        rows.append(select_video(teacher, dataset[index], args.num_frames, args.device, args.conf_threshold,
                                 args.voxel_divisor))
        if count % args.save_every == 0:
            _write_atomic(out, rows)
    _write_atomic(out, rows)
    print_log(f'wrote {len(rows)} selections to {out}', logger='current')
    return rows


if __name__ == '__main__':
    main()
