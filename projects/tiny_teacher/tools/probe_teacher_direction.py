"""Learnability probe for a VGGT trained from scratch: can it tell which way a shifted view moved?

    python projects/tiny_teacher/tools/probe_teacher_direction.py \
        projects/tiny_teacher/configs/vggt_tiny_synthvsi.py --shift 10 --steps 2000
    python projects/tiny_teacher/tools/probe_teacher_direction.py \
        projects/tiny_teacher/configs/vggt_tiny_synthvsi.py --shift 28 --steps 1500 \
        --init-values 1.0 --token-init-std 1.0 --readout camera-head

Builds the config's ``model.net`` (a fresh network, random init), draws frames from its training dataset, and
trains it on pairs ``[crop, the crop moved by +-shift px]`` (a pan, no wrap-around) to predict the direction
(:func:`projects.tiny_teacher.tiny_teacher.direction_probe.direction_probe`). Prints the accuracy per 50 steps and
writes ``<work_dir>/direction_probe.json``. Chance is 0.5.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from geokit.engine.launch import default_work_dir, load_config, split_dataset_config
from geokit.evaluation.records import write_json_atomic
from geokit.models.teachers.preprocess import TeacherView
from geokit.models.teachers.vggt.model import VGGTNet
from geokit.registry import DATASETS

#: the checkout that holds projects/ (three folders up): the tool runs from a fresh clone without PYTHONPATH
CHECKOUT = str(Path(__file__).resolve().parents[3])
if CHECKOUT not in sys.path:
    sys.path.insert(0, CHECKOUT)
from projects.tiny_teacher.tiny_teacher import READOUTS, collect_frames, direction_probe, windowed_accuracy  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Probe whether a VGGT config learns the direction of a view shift.')
    parser.add_argument('config', help='a teacher training config (model.net, model.image_size, train_dataloader)')
    parser.add_argument('--shift', type=int, default=10, help='horizontal shift in pixels of the teacher view')
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--lr', type=float, default=3e-4)
    parser.add_argument('--readout', choices=READOUTS, default='camera-token')
    parser.add_argument('--init-values', type=float, help='override the aggregator layer-scale init')
    parser.add_argument('--token-init-std', type=float, help='override the camera/register token init std')
    parser.add_argument('--videos', type=int, default=64, help='distinct videos to draw frames from')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', help='default: work_dirs/<project>/<config name>_direction_probe')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def load_frames(cfg: Config, videos: int) -> torch.Tensor:
    """``(N, 3, H, W)`` teacher-view frames in ``[0, 1]`` from the first ``videos`` videos of the training split."""
    dataset = DATASETS.build(split_dataset_config(cfg, 'train'))
    view = TeacherView(image_size=cfg.model.get('image_size', 518), patch_size=cfg.model.net.get('patch_size', 14),
                       mode=cfg.model.get('mode', 'crop'))
    return collect_frames(dataset, view, videos)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'geokit'))
    work_dir = args.work_dir or default_work_dir(args.config) + '_direction_probe'
    torch.manual_seed(args.seed)
    net_cfg = dict(cfg.model.net.to_dict())
    for key, value in (('init_values', args.init_values), ('token_init_std', args.token_init_std)):
        if value is not None:
            net_cfg[key] = value
    net = VGGTNet(**net_cfg)
    images = load_frames(cfg, args.videos)
    accuracies = direction_probe(net, images, args.shift, args.steps, args.batch_size, args.readout, args.lr,
                                 seed=args.seed)
    windows = windowed_accuracy(accuracies)
    for window, accuracy in enumerate(windows):
        print_log(f'steps {window * 50 + 1}-{min((window + 1) * 50, args.steps)}: accuracy {accuracy:.2f}',
                  logger='current')
    result = dict(config=args.config, shift=args.shift, steps=args.steps, batch_size=args.batch_size,
                  readout=args.readout, net=net_cfg, frames=int(images.shape[0]), accuracy_per_50_steps=windows)
    os.makedirs(work_dir, exist_ok=True)
    write_json_atomic(osp.join(work_dir, 'direction_probe.json'), result)
    return result


if __name__ == '__main__':
    main()
