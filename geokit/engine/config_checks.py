"""Config mistakes that mmengine would ignore, or only report after training has started, caught before anything is
built: misspelt top-level keys, hook arguments nobody reads, relative asset paths, a missing evaluation loop.
"""
from __future__ import annotations

import difflib
import inspect
import logging
import os
import os.path as osp
from typing import Any

from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import FlexibleRunner, Runner

from geokit.registry import HOOKS, RUNNERS

#: the repository root (where ``configs/``, ``projects/`` and ``data/`` live)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: top-level keys the runners and geokit's tools read, beyond the runners' constructor arguments
GEOKIT_KEYS = {'_base_', 'custom_imports', 'runner_type', 'model_wrapper_cfg', 'compile', 'activation_checkpointing',
               'efficient_conv_bn_eval', 'load_strict', 'filename', 'launcher'}


def known_top_level_keys() -> set[str]:
    keys = set(GEOKIT_KEYS)
    for runner in (Runner, FlexibleRunner):
        keys |= set(inspect.signature(runner.__init__).parameters) - {'self', 'cfg'}
    return keys


def _did_you_mean(name: str, candidates: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f' Did you mean `{close[0]}`?' if close else ''


def check_config_keys(cfg: Config, cfg_options: dict | None = None) -> None:
    """Refuse top-level keys that nothing reads.

    A ``--cfg-options`` key whose first part is neither in the config nor a runner/geokit setting (``randomnes.seed=5``)
    is an error; so is a top-level key in the file that is one typo away from a runner setting (``randomnes = ...``).
    Other new names in a file are the config's own variables (``data_root``, ``max_iters``) and are allowed.

    Raises:
        KeyError: naming the key and the closest known one.
    """
    known = known_top_level_keys()
    present = set(cfg.keys())
    for option in cfg_options or {}:
        top = option.split('.')[0]
        if top not in present and top not in known:
            raise KeyError(f'--cfg-options {option}: `{top}` is not a key of this config and no runner or geokit '
                           f'setting reads it, so it would be ignored.{_did_you_mean(top, known | present)}')
    for key in present - known:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.85)
        if close:
            raise KeyError(f'config key `{key}` is not read by anything (would be ignored). Did you mean '
                           f'`{close[0]}`?')


def _signature_names(fn: Any) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {'self'}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def check_hook_args(cfg: Config) -> None:
    """Every argument of ``default_hooks`` / ``custom_hooks`` is one its hook accepts.

    ``CheckpointHook`` passes arguments it does not know to ``runner.save_checkpoint``, so a misspelt one
    (``max_keep_ckpt``) would fail only at the first save, after training; here it fails before.

    Raises:
        TypeError: naming the hook, the argument and the closest accepted one.
    """
    hooks = [(f'default_hooks.{name}', hook) for name, hook in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks[{i}]', hook) for i, hook in enumerate(cfg.get('custom_hooks') or [])]
    runner_cls = RUNNERS.get(cfg.get('runner_type') or 'GeoKitRunner')
    for where, hook in hooks:
        if not isinstance(hook, dict) or not isinstance(hook.get('type'), str):
            continue
        hook_cls = HOOKS.get(hook['type'])
        if hook_cls is None:
            continue  # an unknown type= is reported by check_config_types
        accepted, open_ended = _signature_names(hook_cls.__init__)
        if issubclass(hook_cls, CheckpointHook) and runner_cls is not None and hasattr(runner_cls, 'save_checkpoint'):
            saved, save_open = _signature_names(runner_cls.save_checkpoint)
            accepted, open_ended = accepted | saved, save_open
        if open_ended:
            continue
        for arg in sorted(set(hook) - accepted - {'type', 'priority'}):
            raise TypeError(f'{where}: {hook["type"]} has no argument `{arg}`.{_did_you_mean(arg, accepted)} '
                            f'(It accepts {sorted(accepted)}.)')


def add_missing_eval_loops(cfg: Config) -> None:
    """A config with a ``<split>_dataloader`` and ``<split>_evaluator`` but no ``<split>_cfg`` gets the default
    loop (``ValLoop`` / ``TestLoop``); mmengine would refuse to start."""
    for split, loop in (('val', 'ValLoop'), ('test', 'TestLoop')):
        if cfg.get(f'{split}_dataloader') and cfg.get(f'{split}_evaluator') and cfg.get(f'{split}_cfg') is None:
            cfg[f'{split}_cfg'] = dict(type=loop)


#: config keys (at any depth) holding a local file or folder
PATH_KEYS = ('path', 'processor_path', 'load_from', 'data_root', 'checkpoint', 'cache_dir')


def resolve_relative_paths(cfg: Config, config_path: str) -> None:
    """Relative asset paths that do not exist from the current directory are looked up next to the config file and
    in the repository (so ``tools/train.py`` works from any directory); found ones become absolute.

    Keys: ``path``, ``processor_path``, ``load_from``, ``data_root``, ``checkpoint``, ``cache_dir``, at any depth.
    A path found nowhere is left as it is (its own error then names it as relative).
    """
    bases = [osp.dirname(osp.abspath(config_path)), REPO_ROOT]

    def visit(node: Any, where: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            here = f'{where}.{key}' if where else str(key)
            if isinstance(value, (dict, list)):
                visit(value, here)
            elif isinstance(key, str) and key in PATH_KEYS and isinstance(value, str) and value \
                    and '://' not in value and not osp.isabs(osp.expanduser(value)) and not osp.exists(value):
                found = next((osp.join(base, value) for base in bases if osp.exists(osp.join(base, value))), None)
                if found is not None:
                    node[key] = found
                    print_log(f'{here}={value!r} is relative and not found from {os.getcwd()}; using {found}.',
                              logger='current', level=logging.INFO)

    for key in list(cfg.keys()):
        value = cfg[key]
        if isinstance(value, (dict, list)):
            visit(value, key)
        elif key in PATH_KEYS and isinstance(value, str):
            holder = {key: value}
            visit(holder, '')
            cfg[key] = holder[key]
