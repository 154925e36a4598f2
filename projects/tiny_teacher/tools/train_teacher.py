"""Train a VGGT teacher on ground-truth geometry, export its weights and compare it with the untrained network.

    python projects/tiny_teacher/tools/train_teacher.py projects/tiny_teacher/configs/vggt_tiny_synthvsi_pan.py \
        --export geokit/assets/teachers/vggt_tiny_synthvsi.safetensors
    python projects/tiny_teacher/tools/train_teacher.py CONFIG --eval-only --weights PATH   # evaluate weights only
    python projects/tiny_teacher/tools/train_teacher.py CONFIG \
        --export-from work_dirs/<name>/iter_N.safetensors --export PATH    # export (and evaluate) a runner checkpoint

Training is ``tools/train.py``'s (the config's ``model`` is a ``VGGTGeometryModel``); the exported file holds the
bare VGGT state dict (official key names) that ``VGGTTeacher(load_from=...)`` loads. The evaluation runs the
config's ``teacher`` (trained weights vs. the same network at random init) over
``teacher_eval_dataloader.dataset``, puts the pose AUC@30 of reference predictors built from the ground truth beside
them (``references``: what the metric asks of a teacher on that data) and writes ``<work_dir>/teacher_eval.json``.
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

from geokit.engine.launch import build_runner, load_config, prepare_config
from geokit.evaluation.records import write_json_atomic
from geokit.models.teachers.vggt import load_vggt_weights, save_vggt_weights
from geokit.registry import DATASETS, MODELS, TEACHERS

#: the checkout that holds projects/ (three folders up): the tool runs from a fresh clone without PYTHONPATH
CHECKOUT = str(Path(__file__).resolve().parents[3])
if CHECKOUT not in sys.path:
    sys.path.insert(0, CHECKOUT)
from projects.tiny_teacher.tiny_teacher import evaluate_pose_references, evaluate_teacher  # noqa: E402

#: where a runner checkpoint (geokit's safetensors format) keeps the VGGT of a VGGTGeometryModel
RUNNER_CHECKPOINT_PREFIX = 'ckpt.state_dict.vggt.'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train, export and evaluate a VGGT teacher.')
    parser.add_argument('config')
    parser.add_argument('--work-dir', help='default: work_dirs/<project>/<config name>')
    parser.add_argument('--export', help='write the trained VGGT weights here (safetensors)')
    parser.add_argument('--export-from', help='skip training; export the VGGT of this runner checkpoint')
    parser.add_argument('--eval-only', action='store_true', help='skip training; evaluate --weights')
    parser.add_argument('--weights', help='weights to evaluate with --eval-only')
    parser.add_argument('--max-videos', type=int, default=None, help='evaluate on at most N distinct videos')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def evaluate(cfg: Config, weights: str | None, max_videos: int | None = None) -> dict:
    """Trained (``weights``) vs. untrained teacher on the config's validation dataset, and the reference poses."""
    init_default_scope(cfg.get('default_scope', 'geokit'))
    dataset = DATASETS.build(cfg.teacher_eval_dataloader.dataset)
    results = {}
    for name, load_from in (('untrained', None), ('trained', weights)):
        if name == 'trained' and load_from is None:
            continue
        torch.manual_seed(cfg.get('randomness', {}).get('seed', 0))
        teacher = TEACHERS.build(dict(cfg.teacher.to_dict(), load_from=load_from))
        results[name] = evaluate_teacher(teacher, dataset, max_videos=max_videos)
        print_log(f'{name} teacher: {results[name]}', logger='current')
    results['references'] = evaluate_pose_references(dataset, max_videos=max_videos, progress=False)
    for name, auc in results['references']['auc30'].items():
        print_log(f'reference AUC@30 {auc:.4f}: {name}', logger='current')
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = prepare_config(cfg, config_path=args.config, work_dir=args.work_dir, cfg_options=args.cfg_options)
    weights = args.weights
    if args.export_from:
        init_default_scope(cfg.get('default_scope', 'geokit'))
        model = MODELS.build(cfg.model)
        load_vggt_weights(model.vggt, args.export_from, prefix=RUNNER_CHECKPOINT_PREFIX)
        weights = args.export or osp.join(cfg.work_dir, 'vggt_teacher.safetensors')
        save_vggt_weights(model.vggt, weights, metadata=dict(config=osp.basename(args.config),
                                                              source=osp.basename(args.export_from)))
    elif not args.eval_only:
        runner = build_runner(cfg)
        runner.train()
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        weights = args.export or osp.join(cfg.work_dir, 'vggt_teacher.safetensors')
        save_vggt_weights(model.vggt, weights, metadata=dict(config=osp.basename(args.config),
                                                              iters=str(cfg.train_cfg.max_iters)))
        print_log(f'exported VGGT weights to {weights} ({os.path.getsize(weights) / 1e6:.2f} MB)', logger='current')
    elif weights is None:
        raise ValueError('--eval-only needs --weights PATH (an exported VGGT safetensors file).')
    results = evaluate(cfg, weights, args.max_videos)
    os.makedirs(cfg.work_dir, exist_ok=True)
    write_json_atomic(osp.join(cfg.work_dir, 'teacher_eval.json'), dict(weights=weights, **results))
    return results


if __name__ == '__main__':
    main()
