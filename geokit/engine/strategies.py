"""mmengine ``FlexibleRunner`` strategies whose checkpoints are geokit's safetensors files.

``runner_type='FlexibleRunner'`` hands checkpointing to its strategy, and mmengine's strategies write pickles with
``torch.save`` and read them with ``torch.load`` (refused by torch >= 2.6 for mmengine's checkpoints, and unsafe to
re-enable). These subclasses keep each strategy's sharding, wrapping and state-dict gathering as they are and only
change the file: one ``.safetensors`` checkpoint written atomically by the main process (see
:mod:`geokit.engine.checkpoint`), read without pickle by :func:`geokit.engine.runner.load_checkpoint_file`.
Resuming goes through mmengine's own ``resume`` (optimizer, schedulers, seed, gradient-accumulation counters),
which calls the ``load_checkpoint`` below.

DeepSpeed keeps its own checkpoint directories (its engine partitions optimizer state per rank and reads it back
itself); see docs/scale_out.md.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import mmengine
import torch
from mmengine._strategy import DDPStrategy, SingleDeviceStrategy
from mmengine.dist import barrier, is_main_process
from mmengine.utils import get_git_hash

from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.engine.runner import CHECKPOINT_SUFFIX, load_checkpoint_file
from geokit.registry import STRATEGIES

try:  # FSDP needs a torch build with distributed support; mmengine skips the strategy otherwise
    from mmengine._strategy import FSDPStrategy
except ImportError:  # pragma: no cover - depends on the torch build
    FSDPStrategy = None


#: the keys of a torch optimizer state dict (an mmengine optim wrapper adds its own, e.g. ``loss_scaler``)
OPTIMIZER_KEYS = ('state', 'param_groups')


class SafetensorsCheckpointMixin:
    """Replaces a strategy's ``save_checkpoint``/``load_checkpoint`` with geokit's safetensors format.

    The state dicts come from the strategy's own ``model_state_dict``/``optim_state_dict``/
    ``scheduler_state_dict`` (collective calls under FSDP, so every rank runs them); only the main process writes.
    """

    def _check_gatherable(self) -> None:
        """Strategies whose state dicts are per-rank shards refuse here (overridden by FSDP)."""

    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True, save_param_scheduler: bool = True,
                        extra_ckpt: dict | None = None, callback: Callable | None = None) -> None:
        if not str(filename).endswith(CHECKPOINT_SUFFIX):
            raise ValueError(f'geokit checkpoints are safetensors, got {filename!r}. Set '
                             f"default_hooks.checkpoint.filename_tmpl='iter_{{}}{CHECKPOINT_SUFFIX}' (as "
                             f'configs/_base_/default_runtime.py does).')
        self._check_gatherable()
        checkpoint: dict = {'state_dict': self.model_state_dict()}
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            checkpoint['optimizer'] = self.optim_state_dict()
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            checkpoint['param_schedulers'] = self.scheduler_state_dict()
        extra = dict(extra_ckpt or {})
        extra['meta'] = dict(extra.get('meta') or {}, seed=self.seed,
                             time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                             mmengine=mmengine.__version__ + get_git_hash())
        checkpoint.update(extra)
        if callback is not None:
            callback(checkpoint)
        if is_main_process():
            save_checkpoint_safetensors(checkpoint, filename)
        barrier()

    def load_checkpoint(self, filename: str, *, map_location: str | Callable = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')],  # noqa: B006 (mmengine's signature)
                        callback: Callable | None = None) -> dict:
        self.logger.info(f'Load checkpoint from {filename}')
        location = 'cpu' if map_location == 'default' or callable(map_location) else map_location
        checkpoint = load_checkpoint_file(filename, location)
        if callback is not None:
            callback(checkpoint)
        self.load_model_state_dict(checkpoint.pop('state_dict'), strict=strict, revise_keys=revise_keys)
        return checkpoint


@STRATEGIES.register_module()
class GeoKitSingleDeviceStrategy(SafetensorsCheckpointMixin, SingleDeviceStrategy):
    """mmengine's ``SingleDeviceStrategy`` with safetensors checkpoints."""


@STRATEGIES.register_module()
class GeoKitDDPStrategy(SafetensorsCheckpointMixin, DDPStrategy):
    """mmengine's ``DDPStrategy`` with safetensors checkpoints."""


if FSDPStrategy is not None:

    @STRATEGIES.register_module()
    class GeoKitFSDPStrategy(SafetensorsCheckpointMixin, FSDPStrategy):
        """mmengine's ``FSDPStrategy`` (ZeRO-2 style ``SHARD_GRAD_OP`` or ZeRO-3 style ``FULL_SHARD``) with
        safetensors checkpoints.

        The checkpoint is the full (unsharded) state gathered to rank 0, so it loads on any number of GPUs and in
        a plain ``GeoKitRunner``. That needs ``state_dict_cfg='full'``, the default here (mmengine's is ``'local'``:
        per-rank flat shards).
        """

        def __init__(self, *, state_dict_cfg: str | dict = 'full', **kwargs) -> None:
            super().__init__(state_dict_cfg=state_dict_cfg, **kwargs)
            if state_dict_cfg == 'full' and not torch.cuda.is_available():
                # On CPU (gloo), offload_to_cpu=True returned optimizer states that share one storage (AdamW's
                # exp_avg and exp_avg_sq came back identical), so a resume was not exact; without it they are copies.
                from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig
                self.state_dict_config = FullStateDictConfig(rank0_only=True, offload_to_cpu=False)
                self.optim_state_dict_config = FullOptimStateDictConfig(rank0_only=True, offload_to_cpu=False)

        def optim_state_dict(self) -> dict:
            """FSDP's gathered optimizer state plus the wrapper's own entries (e.g. ``loss_scaler``), which
            ``FSDP.optim_state_dict`` does not know about."""
            from torch.distributed.fsdp import FullyShardedDataParallel
            extras = {key: value for key, value in self.optim_wrapper.state_dict().items()
                      if key not in OPTIMIZER_KEYS}
            return {**FullyShardedDataParallel.optim_state_dict(self.model, self.optim_wrapper.optimizer), **extras}

        def load_optim_state_dict(self, state_dict: dict) -> None:
            """mmengine 0.10 calls ``FSDP.optim_state_dict_to_load`` with the argument order of torch < 2.1, which
            fails on current torch; this is the call with today's ``(model, optim, optim_state_dict)``."""
            from torch.distributed.fsdp import FullyShardedDataParallel
            extras = {key: value for key, value in state_dict.items() if key not in OPTIMIZER_KEYS}
            optimizer_state = {key: value for key, value in state_dict.items() if key in OPTIMIZER_KEYS}
            sharded = FullyShardedDataParallel.optim_state_dict_to_load(self.model, self.optim_wrapper.optimizer,
                                                                         optimizer_state)
            self.optim_wrapper.load_state_dict({**sharded, **extras})

        def build_optim_wrapper(self, optim_wrapper, model=None):
            wrapper = super().build_optim_wrapper(optim_wrapper, model)
            if getattr(wrapper, 'clip_func', None) is torch.nn.utils.clip_grad_norm_:
                wrapper.clip_func = self._clip_grad_norm_over_all_shards
            return wrapper

        def _clip_grad_norm_over_all_shards(self, params: list, max_norm: float, norm_type: float = 2.0,
                                            **unused) -> torch.Tensor:
            """``clip_grad_norm_`` on one rank's shards would clip every shard by its own norm (mmengine's
            ``OptimWrapper`` does that under FSDP); FSDP's method reduces the norm over all ranks first."""
            return self.model.clip_grad_norm_(max_norm, norm_type)

        def _check_gatherable(self) -> None:
            from torch.distributed.fsdp import StateDictType
            if self.state_dict_type != StateDictType.FULL_STATE_DICT:
                raise ValueError(f'GeoKitFSDPStrategy writes one full safetensors checkpoint, but state_dict_cfg '
                                 f'gives {self.state_dict_type.name}. Set strategy.state_dict_cfg="full".')
