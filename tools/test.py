"""Evaluate a trained geokit model with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/eval --cfg-options test_dataloader.batch_size=4

The checkpoint must fit the config's model exactly (a checkpoint of another project is an error that lists the
differences); ``--cfg-options load_strict=False`` loads the matching keys only (docs/reliability.md).
"""
from __future__ import annotations

import argparse
import os

from mmengine.config import DictAction

from geokit.engine.launch import build_runner, load_config, prepare_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a geokit model.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint (.safetensors) to evaluate')
    parser.add_argument('--work-dir', help='where logs and predictions go (default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', help='mixed precision inference (needs a GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = prepare_config(cfg, config_path=args.config, work_dir=args.work_dir, cfg_options=args.cfg_options,
                         launcher=args.launcher, amp=args.amp, load_from=args.checkpoint)
    runner = build_runner(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
