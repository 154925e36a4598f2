"""Linear probes on the frozen hidden states of a checkpoint: how linearly decodable are depth and pose per layer?

    python tools/probe.py CONFIG CHECKPOINT [--layers 1 2 3 4] [--split test] [--out DIR]

Runs the model as at inference (prompt only, no geometry tokens) over one item per video of
``<split>_dataloader.dataset`` (ground-truth geometry required: SynthVSI), taps the video tokens at every requested
decoder layer and fits closed-form ridge probes (see geokit/evaluation/probes.py): per-token log depth and per-frame
relative pose, split by video. Writes ``probe_results.json``, ``probe_results.md`` and ``probe_errors.png`` to
``--out`` (default ``work_dirs/<config name>/probes``).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from geokit.datasets import distinct_videos
from geokit.engine.launch import default_work_dir, load_config, split_dataset_config
from geokit.engine.runner import load_checkpoint_file
from geokit.evaluation.features import extract_probe_data, resolve_layers
from geokit.evaluation.probes import (
    TASK_METRICS,
    format_probe_markdown,
    plot_probe_errors,
    probe_results_to_dict,
    run_probe_tasks,
)
from geokit.evaluation.records import write_json_atomic, write_text_atomic
from geokit.registry import DATASETS, MODELS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Linear depth / pose probes on frozen hidden states, per layer.')
    parser.add_argument('config', help='config file of a GeometricMLLM')
    parser.add_argument('checkpoint', help='checkpoint (.safetensors) whose hidden states are probed')
    parser.add_argument('--layers', type=int, nargs='+', help='1-based decoder layers (negative: from the end); '
                                                              'default all')
    parser.add_argument('--split', default='test', help='which <split>_dataloader.dataset to read (default test)')
    parser.add_argument('--out', help='output directory (default work_dirs/<config name>/probes)')
    parser.add_argument('--max-videos', type=int, help='use at most this many videos')
    parser.add_argument('--val-fraction', type=float, default=0.25, help='fraction of videos held out')
    parser.add_argument('--seed', type=int, default=0, help='seed of the train/val split of the videos')
    parser.add_argument('--batch-size', type=int, default=4, help='videos per forward pass')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def build_model(cfg: Config, checkpoint: str, device: str):
    """The config's model without its teachers (unused here) and with the checkpoint's weights."""
    model = MODELS.build(dict(cfg.model, teacher=None, scale_teacher=None))
    state_dict = load_checkpoint_file(checkpoint)['state_dict']
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if len(missing) == len(model.state_dict()):
        raise ValueError(f'{checkpoint} holds none of the weights of the model of the config (e.g. '
                         f'{sorted(state_dict)[:3]}); give the checkpoint that was trained with this config.')
    if missing or unexpected:
        print_log(f'checkpoint: {len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected '
                  f'(e.g. {unexpected[:3]})', logger='current', level=30)
    return model.to(device)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'geokit'))
    dataset_cfg = split_dataset_config(cfg, args.split)
    out = args.out or osp.join(default_work_dir(args.config), 'probes')
    os.makedirs(out, exist_ok=True)
    dataset = DATASETS.build(dict(dataset_cfg, load_geometry=True))
    indices = distinct_videos(dataset, args.max_videos)
    if len(indices) < 2:
        raise ValueError(f'{args.split} split has {len(indices)} video(s); the probes hold out whole videos and need '
                         f'at least 2 (use a larger split, e.g. --split train).')
    model = build_model(cfg, args.checkpoint, args.device)
    layers = resolve_layers(args.layers, model.backbone.num_layers)
    data = extract_probe_data(model, (dataset[i] for i in indices), layers, args.batch_size, total=len(indices))
    results = run_probe_tasks(data, args.val_fraction, args.seed)
    summary = dict(config=args.config, checkpoint=args.checkpoint, split=args.split, videos=len(indices),
                   depth_rows=int(data.depth_targets.shape[0]), pose_rows=int(data.pose_targets.shape[0]),
                   results=probe_results_to_dict(results))
    table = format_probe_markdown(results)
    write_json_atomic(osp.join(out, 'probe_results.json'), summary)
    write_text_atomic(osp.join(out, 'probe_results.md'),
                      f'Linear probes of `{args.checkpoint}` ({len(indices)} {args.split} videos)\n\n{table}')
    plot_probe_errors(results, TASK_METRICS, osp.join(out, 'probe_errors.png'),
                      title=f'{osp.basename(args.checkpoint)}: linear probe error per layer')
    print_log(f'linear probes ({len(indices)} videos, layers {list(layers)}) -> {out}\n{table}', logger='current')
    return summary


if __name__ == '__main__':
    main()
