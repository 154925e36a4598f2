"""Training checkpoints as safetensors: no pickle, atomic writes.

A checkpoint is one ``.safetensors`` file. Every tensor (model weights, optimizer moments, RNG states) is stored as a
safetensors entry; everything else (iteration counters, optimizer hyper-parameters, scheduler states, log history)
is a JSON skeleton kept in the file's metadata under ``geokit``. In the skeleton a tensor is referenced by its entry
name, so tensors that share storage (tied embeddings) are written once and come back shared. Loading never runs
``pickle``: a checkpoint from an untrusted source can at worst hold wrong numbers.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from safetensors import safe_open
from safetensors.torch import save_file

from geokit.errors import InputFileNotFoundError, reading

METADATA_KEY = 'geokit'
FORMAT_VERSION = 1

#: what to do about a checkpoint that cannot be read
CHECKPOINT_FIX = ('pass an existing, complete checkpoint to --resume / `load_from` (or --resume without a path to '
                  'continue from the newest complete checkpoint in work_dir)')


class _Flattener:
    """Turns a nested Python structure into (tensors, JSON skeleton)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._by_storage: dict[tuple, str] = {}

    def tensor_ref(self, tensor: torch.Tensor, path: str) -> str:
        tensor = tensor.detach()
        if tensor.device.type != 'cpu':
            tensor = tensor.cpu()
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                    tuple(tensor.stride()), tensor.dtype) if tensor.numel() else None
        if identity is not None and identity in self._by_storage:
            return self._by_storage[identity]
        name = path if path not in self.tensors else f'{path}#{len(self.tensors)}'
        # safetensors refuses tensors that share memory; a private contiguous copy is written for later aliases
        self.tensors[name] = tensor.contiguous().clone() if self._shares_memory(tensor) else tensor.contiguous()
        if identity is not None:
            self._by_storage[identity] = name
        return name

    def _shares_memory(self, tensor: torch.Tensor) -> bool:
        if not tensor.numel():
            return False
        ptr = tensor.untyped_storage().data_ptr()
        return any(key[0] == ptr for key in self._by_storage)

    def __call__(self, obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            return {'__tensor__': self.tensor_ref(obj, path)}
        if isinstance(obj, np.ndarray):
            return {'__ndarray__': self.tensor_ref(torch.from_numpy(np.ascontiguousarray(obj)), path)}
        if isinstance(obj, HistoryBuffer):
            log, count = obj.data
            return {'__history_buffer__': {'log': self(log, f'{path}.log'), 'count': self(count, f'{path}.count'),
                                           'max_length': obj.max_length}}
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, torch.dtype):
            return {'__dtype__': str(obj).removeprefix('torch.')}
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj):
                return {'__dict__': {k: self(v, f'{path}.{k}') for k, v in obj.items()}}
            return {'__items__': [[self(k, f'{path}.key'), self(v, f'{path}.{k}')] for k, v in obj.items()]}
        if isinstance(obj, tuple):
            return {'__tuple__': [self(v, f'{path}.{i}') for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self(v, f'{path}.{i}') for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        print_log(f'checkpoint: {path} of type {type(obj).__name__} is not a tensor or plain data; '
                  f'it is stored as its repr() and comes back as a string.', logger='current', level='WARNING')
        return {'__repr__': repr(obj)}


def _unflatten(node: Any, tensors: Callable[[str], torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_unflatten(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    ((tag, value),) = node.items()
    if tag == '__tensor__':
        return tensors(value)
    if tag == '__ndarray__':
        return tensors(value).numpy()
    if tag == '__history_buffer__':
        return HistoryBuffer(_unflatten(value['log'], tensors).tolist(), _unflatten(value['count'], tensors).tolist(),
                             value['max_length'])
    if tag == '__dtype__':
        return getattr(torch, value)
    if tag == '__dict__':
        return {k: _unflatten(v, tensors) for k, v in value.items()}
    if tag == '__items__':
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in value}
    if tag == '__tuple__':
        return tuple(_unflatten(v, tensors) for v in value)
    if tag == '__repr__':
        return value
    raise ValueError(f'Unknown tag {tag!r} in a geokit checkpoint skeleton; the file is corrupt or from a newer '
                     f'geokit (format {FORMAT_VERSION} here).')


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: str,
                            metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically: a temporary file in the same folder, then ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix='.tmp-', suffix='.safetensors', dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp_path, metadata=metadata)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def save_checkpoint_safetensors(checkpoint: dict[str, Any], path: str) -> None:
    """Save an mmengine-style checkpoint dict (``meta``, ``state_dict``, ``optimizer``, ...) to ``path``."""
    flattener = _Flattener()
    skeleton = flattener(checkpoint, 'ckpt')
    metadata = {METADATA_KEY: json.dumps({'format': FORMAT_VERSION, 'checkpoint': skeleton})}
    atomic_save_safetensors(flattener.tensors, path, metadata)


def load_checkpoint_safetensors(path: str, map_location: str | torch.device | None = 'cpu') -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint_safetensors`.

    A plain safetensors state dict (no geokit metadata, e.g. an exported model) loads as ``{'state_dict': ...}``.
    Raises:
        InputFileError: a missing (:class:`~geokit.errors.InputFileNotFoundError`), truncated or corrupt file,
            naming the path.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise InputFileNotFoundError(path, 'checkpoint does not exist', CHECKPOINT_FIX)
    device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
    with reading(path, 'checkpoint', CHECKPOINT_FIX), safe_open(path, framework='pt', device=device) as handle:
        metadata = handle.metadata() or {}
        if METADATA_KEY not in metadata:
            return {'state_dict': {name: handle.get_tensor(name) for name in handle.keys()}, 'meta': {}}
        payload = json.loads(metadata[METADATA_KEY])
        cache: dict[str, torch.Tensor] = {}

        def tensor(name: str) -> torch.Tensor:
            if name not in cache:
                cache[name] = handle.get_tensor(name)
            return cache[name]

        return _unflatten(payload['checkpoint'], tensor)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a readable geokit training checkpoint (header, skeleton and every tensor's extent in
    the file); reads the header only."""
    try:
        with safe_open(path, framework='pt') as handle:
            metadata = handle.metadata() or {}
            return 'checkpoint' in json.loads(metadata.get(METADATA_KEY, '{}'))
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a complete checkpoint
        return False
