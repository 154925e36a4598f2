"""``GeoKitRunner``: mmengine's Runner with safetensors checkpoints (no pickle, atomic, torch >= 2.6 safe)."""
from __future__ import annotations

import os.path as osp
import re
import time
from typing import Any, Callable

import mmengine
import torch
from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_state_dict
from mmengine.utils import get_git_hash

from geokit.engine.checkpoint import load_checkpoint_safetensors, save_checkpoint_safetensors
from geokit.registry import RUNNERS

CHECKPOINT_SUFFIX = '.safetensors'


def load_checkpoint_file(filename: str, map_location: str | torch.device | Callable | None = 'cpu') -> dict:
    """Read a checkpoint without unpickling arbitrary objects.

    geokit's own checkpoints are safetensors. A ``.pth``/``.bin`` file from elsewhere is read with
    ``torch.load(weights_only=True)``: plain tensors load; a file that needs arbitrary Python objects is refused.
    """
    if str(filename).endswith(CHECKPOINT_SUFFIX):
        return load_checkpoint_safetensors(filename, map_location if not callable(map_location) else 'cpu')
    try:
        checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'Checkpoint {filename} does not exist; check `load_from`/--resume.') from None
    except Exception as error:
        raise RuntimeError(
            f'{filename} is a pickle checkpoint that needs arbitrary Python objects to load, and geokit never '
            f'unpickles untrusted files ({error.__class__.__name__}: {str(error)[:200]}). Convert its weights to '
            f'safetensors (safetensors.torch.save_file(state_dict, "model.safetensors")) and load that.') from None
    return checkpoint if isinstance(checkpoint, dict) and 'state_dict' in checkpoint else {'state_dict': checkpoint,
                                                                                           'meta': {}}


@RUNNERS.register_module()
class GeoKitRunner(Runner):
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

    def load_checkpoint(self, filename: str, map_location: str | Callable = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006 (mmengine's signature)
        checkpoint = load_checkpoint_file(filename, map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        state_dict = checkpoint['state_dict']
        for pattern, replacement in revise_keys:
            state_dict = {re.sub(pattern, replacement, key): value for key, value in state_dict.items()}
        load_state_dict(model, state_dict, strict=strict, logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

