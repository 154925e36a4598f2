"""What the entry points in ``tools/`` share: loading (:func:`load_config`) and preparing configs, building runners."""
from __future__ import annotations

import importlib
import os
import os.path as osp
import sys
import warnings

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import init_default_scope

from geokit.engine.config_checks import (
    add_missing_eval_loops,
    check_config_keys,
    check_hook_args,
    resolve_relative_paths,
)
from geokit.registry import RUNNERS, check_config_types


def load_config(config: str | Config, cfg_options: dict | None = None) -> Config:
    """Read a config and import its ``custom_imports``: the one way geokit's tools and APIs read a config.

    A project keeps its own package beside its configs (``projects/<name>/<name>/``, imported as
    ``projects.<name>.<name>``), which is importable only when the directory holding ``projects/`` is on
    ``sys.path``. For each module of ``custom_imports``, the nearest ancestor directory of the config file that holds
    the module's top-level package (a folder or ``.py`` of that name) is put on ``sys.path``, so the config works
    from any current directory without setting ``PYTHONPATH``. Modules found in no ancestor (installed packages such
    as ``geokit``) are imported as they are.

    Args:
        config: a config file path, or a ``Config`` already read (its ``filename`` locates the project).
        cfg_options: ``--cfg-options`` overrides, merged before the imports.

    Raises:
        ImportError: a module of ``custom_imports`` cannot be imported (unless the config sets
            ``allow_failed_imports=True``, which warns instead), naming the module and the fix.
    """
    cfg = Config.fromfile(config, import_custom_modules=False) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # an in-memory Config without a file is looked up from the current directory
    path = config if isinstance(config, str) else (cfg.filename or osp.join(os.getcwd(), '<in-memory config>'))
    custom = cfg.get('custom_imports') or {}
    modules = custom.get('imports', [])
    modules = [modules] if isinstance(modules, str) else list(modules)
    for module in modules:
        root = _package_root(path, module.split('.')[0])
        if root is not None and root not in sys.path:
            sys.path.insert(0, root)
        try:
            importlib.import_module(module)
        except ImportError as error:
            message = (f'{path}: custom_imports module {module!r} cannot be imported ({error}). Fix: keep the config '
                       f"inside the checkout that holds {module.split('.')[0]!r} (found from the config's "
                       f'folder upwards), install the package, or remove it from custom_imports.')
            if custom.get('allow_failed_imports', False):
                warnings.warn(message, UserWarning, stacklevel=2)
                continue
            raise ImportError(message, name=module) from error
    return cfg


def _package_root(config_path: str, package: str) -> str | None:
    """The nearest ancestor directory of ``config_path`` that holds ``package`` (a folder or ``<package>.py``)."""
    folder = osp.dirname(osp.abspath(config_path))
    while True:
        if osp.isdir(osp.join(folder, package)) or osp.isfile(osp.join(folder, f'{package}.py')):
            return folder
        parent = osp.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def prepare_config(cfg: Config, config_path: str, work_dir: str | None = None, cfg_options: dict | None = None,
                   launcher: str = 'none', amp: bool = False, resume: str | None = None,
                   load_from: str | None = None) -> Config:
    """Apply command-line choices to a loaded config and check every ``type=`` before anything is built.

    Args:
        resume: ``None`` (start fresh), ``'auto'`` (latest checkpoint in ``work_dir``) or a checkpoint path.
        load_from: weights to load without resuming the training state (``tools/test.py``).
    Also: misspelt top-level keys and hook arguments fail here, relative asset paths are resolved against the
    config's folder and the repository when they do not exist from the current directory, and a split with a
    dataloader and an evaluator but no loop config gets the default loop (see :mod:`geokit.engine.config_checks`).

    Raises:
        KeyError: a ``type=`` that is not registered, with the registry's contents; a top-level key nothing reads.
        TypeError: a hook argument the hook does not accept.
        RuntimeError: ``amp`` on a machine without a GPU.
    """
    check_config_keys(cfg, cfg_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    resolve_relative_paths(cfg, config_path)
    add_missing_eval_loops(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    if cfg.get('runner_type') in FLEXIBLE_RUNNERS:
        cfg.runner_type = 'GeoKitFlexibleRunner'  # the same runner plus the work-dir guard and strict loading
        _prepare_strategy(cfg, launcher)
    if not torch.cuda.is_available():
        if cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend') == 'nccl':
            cfg.env_cfg.dist_cfg.backend = 'gloo'
        if launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
            # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], which torch rejects for CPU modules
            cfg.model_wrapper_cfg = CPU_DDP_WRAPPER
        strategy = cfg.get('strategy') or {}
        if strategy.get('type') == 'GeoKitDDPStrategy' and strategy.get('model_wrapper') is None:
            strategy.model_wrapper = CPU_DDP_WRAPPER
        if strategy.get('type') == 'GeoKitFSDPStrategy':
            # mmengine passes device_id=LOCAL_RANK (a CUDA index); FSDP on gloo keeps the shards on the CPU
            strategy.model_wrapper = dict(device_id='cpu', **(strategy.get('model_wrapper') or {}))
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
    check_hook_args(cfg)
    return cfg


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config's folder>/<config name>``: projects name their main config ``config.py``, so the
    folder keeps ``projects/geovr/config.py`` and ``projects/spatial_mllm/config.py`` apart. A project's
    ``configs`` folder is named by its project (``projects/tiny_teacher/configs/x.py`` -> ``work_dirs/tiny_teacher/x``).
    """
    folder = osp.dirname(osp.abspath(config_path))
    if osp.basename(folder) == 'configs' and osp.basename(osp.dirname(osp.dirname(folder))) == 'projects':
        folder = osp.dirname(folder)
    return osp.join('work_dirs', osp.basename(folder), osp.splitext(osp.basename(config_path))[0])


def split_dataset_config(cfg: Config, split: str) -> dict:
    """``<split>_dataloader.dataset`` of a config (tools that read one split: probes, teacher caches).

    Raises:
        KeyError: the config defines no such dataloader, naming the fix.
    """
    dataloader = cfg.get(f'{split}_dataloader')
    if not dataloader or 'dataset' not in dataloader:
        raise KeyError(f'the config has no {split}_dataloader.dataset; choose --split among the dataloaders it '
                       f'defines.')
    return dataloader['dataset']


#: runner types that take a ``strategy``
FLEXIBLE_RUNNERS = ('FlexibleRunner', 'GeoKitFlexibleRunner')

#: DDP wrapper for CPU processes (gloo): no ``device_ids``
CPU_DDP_WRAPPER = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)

#: mmengine strategies that checkpoint with pickle -> geokit's safetensors subclass
SAFETENSORS_STRATEGIES = {'SingleDeviceStrategy': 'GeoKitSingleDeviceStrategy', 'DDPStrategy': 'GeoKitDDPStrategy',
                          'FSDPStrategy': 'GeoKitFSDPStrategy'}


def _prepare_strategy(cfg: Config, launcher: str) -> None:
    """``FlexibleRunner``: default to geokit's safetensors strategies; refuse mmengine's pickling ones."""
    strategy = cfg.get('strategy')
    if strategy is None:
        cfg.strategy = dict(type='GeoKitSingleDeviceStrategy' if launcher == 'none' else 'GeoKitDDPStrategy')
        return
    name = strategy.get('type')
    if name in SAFETENSORS_STRATEGIES:
        raise ValueError(f"strategy.type='{name}' writes pickle checkpoints that torch>=2.6 will not load back. "
                         f"Use strategy.type='{SAFETENSORS_STRATEGIES[name]}' (same options, safetensors "
                         f'checkpoints; see docs/scale_out.md).')


def build_runner(cfg: Config):
    """Build the runner named by ``runner_type`` (geokit configs use ``GeoKitRunner``)."""
    if 'runner_type' not in cfg:
        cfg.runner_type = 'GeoKitRunner'
    if cfg.get('launcher', 'none') == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        # mmengine's pytorch launcher calls torch.cuda.set_device unconditionally; on CPU the process group is
        # created here (gloo, from torchrun's environment) and mmengine then uses it as it is.
        dist.init_process_group(backend='gloo')
    if cfg.runner_type in FLEXIBLE_RUNNERS:
        # FlexibleRunner builds its strategy before it sets the default scope; without the scope mmengine's root
        # registry would not see geokit's strategies
        init_default_scope(cfg.get('default_scope', 'geokit'))
    return RUNNERS.build(cfg)
