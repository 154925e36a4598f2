"""One training step of a paper config under a scale-out strategy, a checkpoint, and a resume that continues it.

``tools/rehearse.py CONFIG --strategy fsdp_zero2 --check-resume --launcher pytorch`` (under ``torchrun``) builds
the config's model as the rehearsal does (the releases' real widths, random weights, depth truncated by the same
flags; :func:`~geokit.benchmarking.rehearsal.rehearsal_model_configs`) and trains it with mmengine's
FlexibleRunner (``GeoKitFlexibleRunner``) under one of the strategies of ``configs/_base_/strategies.py``:

1. a first run trains ``steps`` iterations and writes its checkpoint (FSDP: one gathered safetensors file;
   DeepSpeed: its own checkpoint folder);
2. with ``check_resume``, a second runner resumes from that work dir and trains one more iteration.

Returned: the strategy, the iterations reached by each run, the losses of every iteration (finite or not) and the
checkpoint files written. The online teacher runs inside the model as in training (no cache).
"""
from __future__ import annotations

import copy
import math
import os
import os.path as osp
import shutil
import tempfile
from typing import Any

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from torch.utils.data import Dataset

from geokit.engine.launch import build_runner, load_config, prepare_config
from geokit.registry import DATASETS, HOOKS

from .published import write_published_processor
from .rehearsal import RehearsalSettings, optim_wrapper_config, rehearsal_model_configs, rehearsal_samples

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STRATEGIES_FILE = osp.join(REPO, 'configs', '_base_', 'strategies.py')
STRATEGY_NAMES = ('fsdp_zero2', 'fsdp_zero3', 'deepspeed_zero2', 'deepspeed_zero3')


@DATASETS.register_module()
class RehearsalVideoQA(Dataset):
    """The rehearsal's synthetic video QA sample (the config's frame count, 480 x 640), repeated ``length`` times.

    Args:
        config: the paper config the sample is shaped for.
        length: number of items.
        seed: the synthetic video's seed.
        num_frames, frame_hw: as :class:`~geokit.benchmarking.rehearsal.RehearsalSettings`.
    """

    def __init__(self, config: str, length: int = 8, seed: int = 0, num_frames: int | None = None,
                 frame_hw: tuple[int, int] | None = None) -> None:
        self.sample = rehearsal_samples(load_config(config), seed, num_frames,
                                        tuple(frame_hw) if frame_hw else None)[0]
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return copy.deepcopy(self.sample)


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Keeps every iteration's total loss on ``runner.recorded_losses`` (for the strategy check's report)."""

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        losses = getattr(runner, 'recorded_losses', [])
        total = sum(float(v) for k, v in (outputs or {}).items() if k.startswith('loss'))
        losses.append(dict(iter=runner.iter + 1, loss=total))
        runner.recorded_losses = losses


def strategy_optim_wrapper(cfg: Config, strategy: str) -> dict:
    """The config's optimizer wrapper, or DeepSpeed's own wrapper (DeepSpeed owns the step, bf16 and clipping)."""
    optim = optim_wrapper_config(cfg)
    if strategy.startswith('deepspeed'):
        return dict(type='DeepSpeedOptimWrapper', optimizer=optim['optimizer'])
    return optim


def runner_config(cfg: Config, settings: RehearsalSettings, strategy: str, model: dict, work_dir: str,
                  max_iters: int, launcher: str) -> Config:
    """The FlexibleRunner config of one strategy-check run."""
    if strategy not in STRATEGY_NAMES:
        raise ValueError(f'--strategy must be one of {STRATEGY_NAMES} (configs/_base_/strategies.py), got '
                         f'{strategy!r}.')
    strategies = load_config(STRATEGIES_FILE)
    # DeepSpeed writes its own checkpoint folder; the FSDP strategy one gathered safetensors file
    checkpoint = dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                      filename_tmpl='iter_{}' if strategy.startswith('deepspeed') else 'iter_{}.safetensors')
    return Config(dict(
        runner_type='FlexibleRunner', work_dir=work_dir, launcher=launcher, model=model,
        strategy=copy.deepcopy(strategies[strategy]), optim_wrapper=strategy_optim_wrapper(cfg, strategy),
        train_dataloader=dict(batch_size=1, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              dataset=dict(type='RehearsalVideoQA', config=settings.config, seed=settings.seed,
                                           num_frames=settings.num_frames, frame_hw=settings.frame_hw)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10 ** 9),
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='LossRecorderHook')],
        param_scheduler=[], randomness=dict(seed=settings.seed), default_scope='geokit',
        env_cfg=dict(dist_cfg=dict(backend='nccl' if settings.device == 'cuda' else 'gloo')),
    ))


def _run(cfg: Config, config_path: str, launcher: str, resume: bool) -> tuple[int, list[dict]]:
    run_cfg = prepare_config(copy.deepcopy(cfg), config_path=config_path, launcher=launcher,
                             resume='auto' if resume else None)
    runner = build_runner(run_cfg)
    runner.train()
    return runner.iter, getattr(runner, 'recorded_losses', [])


def check_strategy(settings: RehearsalSettings, strategy: str, check_resume: bool = True, steps: int = 1,
                   launcher: str = 'pytorch') -> dict[str, Any]:
    """Train ``steps`` iterations of ``settings.config`` under ``strategy``, checkpoint, and (optionally) resume.

    Returns:
        ``{'strategy', 'first_run': {'iter', 'losses'}, 'resumed_run': {'iter', 'losses'} | None,
        'checkpoints': [...], 'finite': bool, 'resumed_exactly': bool | None}``; ``resumed_exactly`` says that
        the resumed run started at iteration ``steps`` (not 0) and ran exactly one more.
    """
    init_default_scope('geokit')
    cfg = load_config(settings.config, settings.cfg_options)
    torch.manual_seed(settings.seed)
    # every rank needs the same folder: rank 0's temporary directory is not visible to the others in general,
    # so the work dir comes from settings (one per check) or a fixed name under the system temp dir
    work = settings.work_dir or osp.join(tempfile.gettempdir(), f'geokit-strategy-{strategy}')
    os.makedirs(work, exist_ok=True)
    processor_dir = write_published_processor(cfg.model.backbone.type, osp.join(work, 'processor'))
    path_dir = osp.join(work, 'no_weights')
    os.makedirs(path_dir, exist_ok=True)
    configs, _ = rehearsal_model_configs(cfg, settings, processor_dir, path_dir, osp.join(work, 'unused_cache'))
    work_dir = osp.join(work, 'run')
    if int(os.environ.get('RANK', '0')) == 0:
        shutil.rmtree(work_dir, ignore_errors=True)  # a fresh first run (geokit refuses to overwrite checkpoints)
    first_iter, first_losses = _run(runner_config(cfg, settings, strategy, configs['main'], work_dir, steps,
                                                  launcher), settings.config, launcher, resume=False)
    result: dict[str, Any] = dict(strategy=strategy, first_run=dict(iter=first_iter, losses=first_losses),
                                  resumed_run=None, resumed_exactly=None)
    losses = list(first_losses)
    if check_resume:
        resumed_iter, resumed_losses = _run(runner_config(cfg, settings, strategy, configs['main'], work_dir,
                                                          steps + 1, launcher), settings.config, launcher,
                                            resume=True)
        result['resumed_run'] = dict(iter=resumed_iter, losses=resumed_losses)
        result['resumed_exactly'] = (resumed_iter == steps + 1 and [r['iter'] for r in resumed_losses]
                                     == [steps + 1])
        losses += resumed_losses
    result['checkpoints'] = sorted(name for name in os.listdir(work_dir) if name.startswith('iter_'))
    result['finite'] = bool(losses) and all(math.isfinite(r['loss']) for r in losses)
    return result


def format_strategy_report(result: dict) -> str:
    """A few markdown lines for :func:`check_strategy`'s result."""
    lines = [f"### {result['strategy']}", '',
             f"- first run: iteration {result['first_run']['iter']}, losses "
             f"{[round(r['loss'], 4) for r in result['first_run']['losses']]}"]
    if result['resumed_run'] is not None:
        lines.append(f"- resumed run: iteration {result['resumed_run']['iter']}, losses "
                     f"{[round(r['loss'], 4) for r in result['resumed_run']['losses']]}; continued exactly: "
                     f"{result['resumed_exactly']}")
    lines.append(f"- checkpoints: {', '.join(result['checkpoints'])}; all losses finite: {result['finite']}")
    return '\n'.join(lines) + '\n'
