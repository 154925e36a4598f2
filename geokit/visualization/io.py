"""Loading reconstructions to visualise: SynthVSI ``geometry.safetensors`` and prediction files."""
from __future__ import annotations

import json
import os.path as osp

import torch
from safetensors import safe_open

from geokit.errors import InputFileNotFoundError, reading
from geokit.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics

GEOMETRY_FILE = 'geometry.safetensors'


def load_geometry(path: str, intrinsics_fallback: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Depth and cameras from a safetensors file (or a SynthVSI scene directory holding ``geometry.safetensors``).

    Accepted keys: ``depth (T, H, W)``; ``extrinsics (T, 3, 4)`` camera-from-world, or ``pose_enc (T, 9)``
    (VGGT encoding, decoded at the depth's resolution); ``intrinsics (T, 3, 3)`` pixels; optional
    ``metric_scale`` (metres per depth unit) and ``depth_conf``; ``frame_indices (T,)`` from the tensors or the
    file's metadata. Prediction files written by ``GeometryMetric(save_predictions=True)`` and teacher shards
    written by ``tools/cache_teacher.py`` (metadata ``image_hw``, ``frame_indices``) have this layout.

    Args:
        intrinsics_fallback: ``(T, 3, 3)`` used when the file has neither intrinsics nor a pose encoding.
    Returns:
        dict with at least ``depth``, ``extrinsics``, ``intrinsics`` (float32).
    Raises:
        InputFileError: a missing (also a ``FileNotFoundError``), truncated or corrupt file, naming it.
        KeyError: naming the file and the entries it lacks.
    """
    file = osp.join(path, GEOMETRY_FILE) if osp.isdir(path) else path
    fix = f'pass a .safetensors geometry or prediction file, or a SynthVSI scene directory with {GEOMETRY_FILE}'
    if not osp.isfile(file):
        raise InputFileNotFoundError(file, 'no geometry file here', fix)
    with reading(file, 'geometry file', fix), safe_open(file, framework='pt') as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    tensors = {key: value.float() if value.is_floating_point() else value for key, value in tensors.items()}
    if 'depth' not in tensors:
        raise KeyError(f'{file} has no `depth` (T, H, W); keys: {sorted(tensors)}.')
    if 'frame_indices' not in tensors and json.loads(metadata.get('frame_indices', 'null')) is not None:
        tensors['frame_indices'] = torch.tensor(json.loads(metadata['frame_indices']), dtype=torch.long)
    image_hw = tuple(json.loads(metadata.get('image_hw', '[]')) or tensors['depth'].shape[-2:])
    if 'extrinsics' not in tensors or 'intrinsics' not in tensors:
        if 'pose_enc' in tensors:
            extrinsics, intrinsics = pose_encoding_to_extrinsics_intrinsics(tensors['pose_enc'], image_hw)
            tensors.setdefault('extrinsics', extrinsics)
            tensors.setdefault('intrinsics', intrinsics)
        elif 'extrinsics' in tensors and intrinsics_fallback is not None:
            tensors['intrinsics'] = intrinsics_fallback.float()
        else:
            raise KeyError(f'{file} needs `extrinsics` + `intrinsics` or a `pose_enc`; keys: {sorted(tensors)}.')
    if 'metric_scale' in tensors and 'depth' in tensors and tensors['metric_scale'].numel() == 1:
        tensors['metric_scale'] = tensors['metric_scale'].reshape(())
    return tensors

