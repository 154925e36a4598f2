"""Strict loading of VGGT weights from a local ``model.safetensors`` (the official ``facebook/VGGT-1B`` file or a
geokit-trained one). Never downloads, never unpickles."""
from __future__ import annotations

from pathlib import Path

import torch
from mmengine.logging import print_log
from safetensors import safe_open
from torch import nn

from geokit.errors import reading

#: Checkpoint parts that geokit deliberately does not build: VGGT's point-tracking head.
UNBUILT_HEAD_PREFIXES = ('track_head.',)


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's parameter names or shapes do not match the configured network."""


#: what to do about a VGGT checkpoint that cannot be read
VGGT_FIX = 're-copy model.safetensors (e.g. of facebook/VGGT-1B) or point `load_from` at a complete copy'


def resolve_checkpoint(path: str | Path, config_key: str = 'load_from') -> Path:
    """``path`` is a ``.safetensors`` file or a directory containing ``model.safetensors``."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / 'model.safetensors'
    if not path.is_file():
        raise FileNotFoundError(f'No VGGT checkpoint at {path}. Set `{config_key}` to a local directory holding '
                                f'model.safetensors (e.g. a copy of facebook/VGGT-1B) or to the .safetensors file; '
                                f'geokit never downloads weights.')
    return path


def checkpoint_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of a safetensors file, read from its header only."""
    with reading(path, 'VGGT checkpoint', VGGT_FIX), safe_open(str(path), framework='pt') as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}


def state_dict_differences(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
                           ) -> tuple[list[str], list[str], list[str]]:
    """Compare name -> shape tables: ``(missing, unexpected, shape mismatches as 'name: found vs expected')``."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(f'{key}: checkpoint {list(found[key])} vs model {list(expected[key])}'
                        for key in set(expected) & set(found) if tuple(found[key]) != tuple(expected[key]))
    return missing, unexpected, mismatched


def check_strict_match(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], source: str,
                       max_listed: int = 40) -> None:
    """Raise :class:`CheckpointMismatchError` listing every missing, unexpected or mis-shaped key."""
    missing, unexpected, mismatched = state_dict_differences(expected, found)
    if not (missing or unexpected or mismatched):
        return
    lines = [f'VGGT checkpoint {source} does not match the configured network (strict loading).']
    for title, keys in (('missing from the checkpoint', missing), ('unexpected in the checkpoint', unexpected),
                        ('shape mismatches', mismatched)):
        if keys:
            more = f' ... and {len(keys) - max_listed} more' if len(keys) > max_listed else ''
            lines.append(f'{len(keys)} {title}: {", ".join(keys[:max_listed])}{more}')
    lines.append('Fix: make the teacher config (embed_dim, depth, num_heads, patch_embed_cfg, camera_head, '
                 'dpt_head, with_points) describe the network the checkpoint was saved from; for facebook/VGGT-1B '
                 'use the defaults (configs/teachers/vggt_1b.py).')
    raise CheckpointMismatchError('\n'.join(lines))


def load_vggt_weights(model: nn.Module, path: str | Path, prefix: str = '',
                      skip_prefixes: tuple[str, ...] = UNBUILT_HEAD_PREFIXES) -> list[str]:
    """Load ``path`` into ``model`` with strict name and shape matching.

    Args:
        model: a :class:`~geokit.models.teachers.vggt.model.VGGTNet`.
        path: ``model.safetensors`` or a directory containing it.
        prefix: only keys starting with ``prefix`` are read, with the prefix removed (e.g. ``'vggt.'`` for a
            geokit training checkpoint of a model that holds the network as ``vggt``, such as
            ``projects/tiny_teacher``'s ``VGGTGeometryModel``).
        skip_prefixes: checkpoint parts the network deliberately does not build; a network without a point
            head also skips ``point_head.``.
    Returns:
        the checkpoint keys that were skipped.
    Raises:
        CheckpointMismatchError: any other missing, unexpected or mis-shaped key (all listed).
    """
    path = resolve_checkpoint(path)
    skip = tuple(skip_prefixes) + (() if getattr(model, 'point_head', None) is not None else ('point_head.',))
    found = {key[len(prefix):]: shape for key, shape in checkpoint_shapes(path).items() if key.startswith(prefix)}
    skipped = sorted(key for key in found if key.startswith(skip))
    found = {key: shape for key, shape in found.items() if not key.startswith(skip)}
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    check_strict_match(expected, found, str(path))
    state = {}
    with reading(path, 'VGGT checkpoint', VGGT_FIX), safe_open(str(path), framework='pt') as handle:
        for key, reference in model.state_dict().items():
            state[key] = handle.get_tensor(prefix + key).to(dtype=reference.dtype)
    model.load_state_dict(state, strict=True)
    if skipped:
        heads = sorted({key.split('.')[0] for key in skipped})
        print_log(f'VGGT checkpoint {path}: skipped {len(skipped)} tensors of heads not built here ({heads}).',
                  logger='current')
    return skipped


def save_vggt_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model.state_dict()`` as safetensors (same names as the official file), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)


def cast_floating(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Cast the floating-point tensors of a state dict (e.g. to fp16 for a compact asset)."""
    return {key: value.to(dtype) if value.is_floating_point() else value for key, value in state.items()}
