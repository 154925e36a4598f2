"""Training side effects as mmengine hooks."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook

from geokit.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the RNG states (torch, CUDA, numpy, python) in each checkpoint and restore them on resume.

    The states are restored right before the first training iteration after resuming, so dropout masks and other
    in-step randomness continue exactly as in an uninterrupted run. Datasets should derive their randomness from
    ``(seed, index)`` (geokit's datasets do): mmengine re-reads the already-trained batches to skip them.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(), 'python': random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(_as_python_random_state(state['python']))
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(state['cuda']))


def _as_python_random_state(state: Any) -> tuple:
    version, internal, gauss = state
    return version, tuple(internal), gauss
