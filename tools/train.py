"""Train a geokit model from a config.

    python tools/train.py projects/geovr/config.py
    python tools/train.py CONFIG --work-dir work_dirs/x --cfg-options train_cfg.max_iters=20
    python tools/train.py CONFIG --resume                  # continue from the newest complete checkpoint in work_dir
    python tools/train.py CONFIG --resume PATH.safetensors # continue from a given checkpoint
    torchrun --nproc-per-node 2 tools/train.py CONFIG --launcher pytorch
"""
from __future__ import annotations

import argparse
import os

from mmengine.config import DictAction

from geokit.engine.launch import build_runner, load_config, prepare_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a geokit model.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the newest complete checkpoint in work_dir (last_checkpoint, else a scan of '
                             'the folder), or from the given checkpoint path')
    parser.add_argument('--amp', action='store_true', help='mixed precision training (needs a GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_cfg.max_iters=20 model.teacher.type=OracleTeacher')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher: torchrun (pytorch) or slurm')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = prepare_config(cfg, config_path=args.config, work_dir=args.work_dir, cfg_options=args.cfg_options,
                         launcher=args.launcher, amp=args.amp, resume=args.resume)
    runner = build_runner(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
