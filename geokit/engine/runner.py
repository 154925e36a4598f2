"""``GeoKitRunner``: mmengine's Runner with safetensors checkpoints (no pickle, atomic, torch >= 2.6 safe)."""
from __future__ import annotations

import contextlib
import os.path as osp
import pickle
import re
import time
from typing import Any, Callable

import mmengine
import torch
from mmengine.dist import is_main_process, master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import FlexibleRunner, Runner
from mmengine.runner.checkpoint import load_state_dict
from mmengine.utils import get_git_hash

from geokit.engine import work_dir as work_dirs
from geokit.engine.checkpoint import CHECKPOINT_FIX, load_checkpoint_safetensors, save_checkpoint_safetensors
from geokit.errors import InputFileError, InputFileNotFoundError
from geokit.registry import RUNNERS

CHECKPOINT_SUFFIX = '.safetensors'


def load_checkpoint_file(filename: str, map_location: str | torch.device | Callable | None = 'cpu') -> dict:
    """Read a checkpoint without unpickling arbitrary objects.

    geokit's own checkpoints are safetensors. A ``.pth``/``.bin`` file from elsewhere is read with
    ``torch.load(weights_only=True)``: plain tensors load; a file that needs arbitrary Python objects is refused.

    Raises:
        InputFileError: the file is missing, truncated or corrupt, or needs arbitrary Python objects; naming it.
    """
    if str(filename).endswith(CHECKPOINT_SUFFIX):
        return load_checkpoint_safetensors(filename, map_location if not callable(map_location) else 'cpu')
    if not osp.isfile(filename):
        raise InputFileNotFoundError(filename, 'checkpoint does not exist', CHECKPOINT_FIX)
    try:
        checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if 'weights only' not in str(error).lower():
            raise InputFileError(filename, f'cannot read this pickle checkpoint ({str(error)[:200]}); the file is '
                                           f'truncated or corrupt', CHECKPOINT_FIX) from None
        raise InputFileError(
            filename, f'this pickle checkpoint needs arbitrary Python objects to load, and geokit never unpickles '
                      f'untrusted files ({_unsupported_global(error)})',
            'convert its weights to safetensors (safetensors.torch.save_file(state_dict, "model.safetensors")) '
            'and load that') from None
    except Exception as error:  # noqa: BLE001 - torch reports truncation as RuntimeError, EOFError, KeyError...
        raise InputFileError(filename, f'cannot read this checkpoint ({type(error).__name__}: '
                                       f'{str(error).splitlines()[0][:160]}); the file is truncated or corrupt',
                             CHECKPOINT_FIX) from None
    return checkpoint if isinstance(checkpoint, dict) and 'state_dict' in checkpoint else {'state_dict': checkpoint,
                                                                                           'meta': {}}


def _unsupported_global(error: Exception) -> str:
    lines = str(error).splitlines()
    return next((line.strip()[:200] for line in lines if 'global' in line.lower()), lines[0][:200] if lines else '')


class WorkDirGuardMixin:
    """Training that holds the work dir's lock (see :mod:`geokit.engine.work_dir`), for mmengine runners.

    Before anything is trained: a second run on the same work dir is refused; unfinished temporary files are
    removed; ``--resume`` without a path continues from the newest complete checkpoint (the ``last_checkpoint``
    pointer may be missing, empty or stale); a fresh run refuses to overwrite an earlier run's checkpoints.
    """

    def train(self) -> torch.nn.Module:
        main = is_main_process()
        # one lock per run: the main process holds it for every rank of a distributed run
        with work_dirs.WorkDirLock(self.work_dir) if main else contextlib.nullcontext():
            if main:
                work_dirs.remove_orphan_temp_files(self.work_dir)
            if self._resume is True and self._load_from is None:
                # every rank resolves the same file (read-only), so all of them resume from one checkpoint
                self._load_from = work_dirs.find_resume_checkpoint(self.work_dir)
                if self._load_from is None:
                    self._resume = False
                    self.logger.info(f'--resume: no checkpoint in {self.work_dir} yet; training from the start.')
                else:
                    self.logger.info(f'Resuming from {self._load_from}.')
            elif not self._resume and main:
                earlier = work_dirs.checkpoint_files(self.work_dir)
                if earlier:
                    raise work_dirs.WorkDirError(
                        f'work_dir {self.work_dir} already holds checkpoints of an earlier run '
                        f'({[p.name for p in earlier][-4:]}); this new run would overwrite them. Fix: add --resume '
                        f'to continue that run, or give this run another --work-dir (or move those files away).')
            return super().train()


@RUNNERS.register_module()
class GeoKitFlexibleRunner(WorkDirGuardMixin, FlexibleRunner):
    """mmengine's ``FlexibleRunner`` (FSDP / DeepSpeed strategies) with geokit's work-dir guard and strict loading
    by default (``load_strict``); ``runner_type='FlexibleRunner'`` configs run on it."""

    def load_checkpoint(self, filename: str, *, map_location: str | Callable = 'cpu', strict: bool | None = None,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006 (mmengine's signature)
        strict = self.cfg.get('load_strict', True) if strict is None else strict
        return super().load_checkpoint(filename, map_location=map_location, strict=strict, revise_keys=revise_keys)


@RUNNERS.register_module()
class GeoKitRunner(WorkDirGuardMixin, Runner):
    """mmengine ``Runner`` whose checkpoints are single ``.safetensors`` files.

    Why not ``torch.save``/``torch.load``: since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and
    refuses mmengine's pickled checkpoints (message hub buffers, numpy scalars, config text). Turning the default off
    globally (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) would re-enable arbitrary code execution for every load in the
    process. Instead the checkpoint holds no pickle at all (see :mod:`geokit.engine.checkpoint`), so resuming is both
    safe and exact: weights, optimizer moments, scheduler state, counters and (with ``RNGStateHook``) RNG states.
    """

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: dict | None = None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True, meta: dict | None = None,
                        by_epoch: bool = True, backend_args: dict | None = None) -> None:
        if not filename.endswith(CHECKPOINT_SUFFIX):
            raise ValueError(f'geokit checkpoints are safetensors, got filename {filename!r}. Set '
                             f"default_hooks.checkpoint.filename_tmpl='iter_{{}}{CHECKPOINT_SUFFIX}' (as "
                             f'configs/_base_/default_runtime.py does).')
        meta = dict(meta or {})
        meta.setdefault('epoch', self.epoch + 1 if by_epoch else self.epoch)
        meta.setdefault('iter', self.iter if by_epoch else self.iter + 1)
        meta.update(cfg=self.cfg.pretty_text, seed=self.seed, experiment_name=self.experiment_name,
                    time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                    mmengine_version=mmengine.__version__ + get_git_hash())
        if hasattr(self.train_dataloader.dataset, 'metainfo'):
            meta.update(dataset_meta=self.train_dataloader.dataset.metainfo)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint: dict[str, Any] = {'meta': meta, 'state_dict': model.state_dict(),
                                      'message_hub': self.message_hub.state_dict()}
        if save_optimizer:
            checkpoint['optimizer'] = self.optim_wrapper.state_dict()
        if save_param_scheduler and self.param_schedulers is not None:
            if isinstance(self.param_schedulers, dict):
                checkpoint['param_schedulers'] = {name: [s.state_dict() for s in schedulers]
                                                  for name, schedulers in self.param_schedulers.items()}
            else:
                checkpoint['param_schedulers'] = [s.state_dict() for s in self.param_schedulers]
        self.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        save_checkpoint_safetensors(checkpoint, osp.join(out_dir, filename))

    def load_checkpoint(self, filename: str, map_location: str | Callable = 'cpu', strict: bool | None = None,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006 (mmengine's signature)
        """Load weights (``load_from``, ``tools/test.py``, resume).

        Strict by default: a checkpoint whose keys or shapes differ from the model (e.g. a checkpoint of another
        project) raises :class:`~geokit.errors.InputFileError` listing the differences and what the checkpoint was
        trained as. ``load_strict=False`` in the config relaxes this to a logged warning (see docs/reliability.md).
        """
        strict = self.cfg.get('load_strict', True) if strict is None else strict
        checkpoint = load_checkpoint_file(filename, map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        state_dict = checkpoint['state_dict']
        for pattern, replacement in revise_keys:
            state_dict = {re.sub(pattern, replacement, key): value for key, value in state_dict.items()}
        check_state_dict_fits(model, state_dict, filename, checkpoint.get('meta') or {}, strict=strict,
                              logger=self.logger)
        load_state_dict(model, state_dict, strict=False, logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

def _origin(meta: dict) -> str:
    """What a checkpoint was trained as, from its stored config text (read as text, never executed)."""
    text = meta.get('cfg') or ''
    work_dir = re.search(r"^work_dir = '([^']*)'", text, re.M)
    model = re.search(r'^model = dict\((.*?)^\S', text, re.M | re.S)
    types = sorted(set(re.findall(r"type='(\w+)'", model.group(1)))) if model else []
    parts = [f"work_dir '{work_dir.group(1)}'" if work_dir else None,
             f"experiment {meta['experiment_name']!r}" if meta.get('experiment_name') else None,
             f'model parts {types}' if types else None]
    parts = [part for part in parts if part]
    return 'a run of ' + ', '.join(parts) if parts else 'an unknown config (no geokit metadata)'


def _key_groups(keys: list[str], limit: int = 6) -> str:
    """``['heads.camera.w', 'heads.camera.b', 'fusion.x']`` -> ``"heads.camera.* (2), fusion.* (1)"``."""
    groups: dict[str, int] = {}
    for key in keys:
        prefix = '.'.join(key.split('.')[:2])
        groups[prefix] = groups.get(prefix, 0) + 1
    shown = [f'{prefix}.* ({count})' for prefix, count in list(groups.items())[:limit]]
    return ', '.join(shown) + (f', ... ({len(groups) - limit} more groups)' if len(groups) > limit else '')


def check_state_dict_fits(model: torch.nn.Module, state_dict: dict, filename: str, meta: dict, strict: bool = True,
                          logger: Any = None) -> None:
    """Compare a checkpoint's keys and shapes with the model's.

    A model may name keys that a checkpoint is allowed to lack in ``checkpoint_optional_keys`` (they keep their
    initial value), e.g. the rollout counter of GRPO, whose runs start from an SFT checkpoint.

    Raises:
        InputFileError: ``strict`` and some key is missing, unexpected or of another shape; the message groups the
            keys by module, says what the checkpoint was trained as and how to relax the check.
    """
    own = model.state_dict()
    # state a model starts afresh when a checkpoint lacks it (e.g. GRPO's rollout counter in an SFT checkpoint)
    optional = set(getattr(model, 'checkpoint_optional_keys', ()))
    missing = [key for key in own if key not in state_dict and key not in optional]
    unexpected = [key for key in state_dict if key not in own]
    shapes = [f'{key} {tuple(state_dict[key].shape)} vs {tuple(own[key].shape)}' for key in own
              if key in state_dict and hasattr(state_dict[key], 'shape') and state_dict[key].shape != own[key].shape]
    if not (missing or unexpected or shapes):
        return
    parts = [f'{len(missing)} missing keys: {_key_groups(missing)}' if missing else None,
             f'{len(unexpected)} unexpected keys: {_key_groups(unexpected)}' if unexpected else None,
             f'{len(shapes)} shape mismatches: {shapes[:3]}' if shapes else None]
    cause = (f'checkpoint does not fit the model of this config ({"; ".join(p for p in parts if p)}); it was saved '
             f'by {_origin(meta)}')
    fix = ('evaluate/load it with the config that trained it, or, where a difference is intended (e.g. a checkpoint '
           'without the geometry heads loaded into a model that has them, or a teacher-free model), set '
           '`load_strict=False` in the config (--cfg-options load_strict=False)')
    if strict:
        raise InputFileError(filename, cause, fix)
    if logger is not None:
        logger.warning(f'{filename}: {cause} (load_strict=False: loading the matching keys).')
