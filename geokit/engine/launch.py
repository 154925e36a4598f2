"""What the thin entry points in ``tools/`` share: config preparation and runner construction."""
from __future__ import annotations

import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config

from geokit.registry import RUNNERS, check_config_types


def prepare_config(cfg: Config, config_path: str, work_dir: str | None = None, cfg_options: dict | None = None,
                   launcher: str = 'none', amp: bool = False, resume: str | None = None,
                   load_from: str | None = None) -> Config:
    """Apply command-line choices to a loaded config and check every ``type=`` before anything is built.

    Args:
        resume: ``None`` (start fresh), ``'auto'`` (latest checkpoint in ``work_dir``) or a checkpoint path.
        load_from: weights to load without resuming the training state (``tools/test.py``).
    Raises:
        KeyError: a ``type=`` that is not registered, with the registry's contents.
        RuntimeError: ``amp`` on a machine without a GPU.
    """
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    if not torch.cuda.is_available():
        if cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend') == 'nccl':
            cfg.env_cfg.dist_cfg.backend = 'gloo'
        if launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
            # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], which torch rejects for CPU modules
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
    if amp:
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); train in fp32 on a CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16')
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    if load_from is not None:
        cfg.load_from = load_from
    check_config_types(cfg.to_dict())
    return cfg


def build_runner(cfg: Config):
    """Build the runner named by ``runner_type`` (geokit configs use ``GeoKitRunner``)."""
    if 'runner_type' not in cfg:
        cfg.runner_type = 'GeoKitRunner'
    if cfg.get('launcher', 'none') == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        # mmengine's pytorch launcher calls torch.cuda.set_device unconditionally; on CPU the process group is
        # created here (gloo, from torchrun's environment) and mmengine then uses it as it is.
        dist.init_process_group(backend='gloo')
    return RUNNERS.build(cfg)
