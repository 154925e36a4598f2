"""Export a trained :class:`~geokit.models.GeometricMLLM` as a stock Hugging Face checkpoint, and load it back.

The backbone *is* the stock transformers class, so the export is its ``save_pretrained`` (LoRA adapters merged
first) plus the processor (the tokenizer keeps the geometry tokens, harmless for plain inference). Beside it:

* GeoVR: the heads go to ``geovr_heads.safetensors`` with their objective configs in ``geovr_heads.json``; plain
  transformers never reads them, and the exported model is the whole inference model (heads are dropped there).
* Fusion models (Spatial-MLLM): the inference model needs the spatial encoder and the connector, which stock
  transformers cannot run. Their weights go to ``geokit_fusion.safetensors`` (``spatial_encoder.*`` and
  ``connector.*``), their config to ``geokit_export.json``; :func:`load_exported` rebuilds the whole model.

``geokit_export.json`` (every export) records the backbone type, the data preprocessor and the fusion config, so
:func:`load_exported` needs no training config.
"""
from __future__ import annotations

import copy
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

HEADS_FILE = 'geovr_heads.safetensors'
HEADS_CONFIG_FILE = 'geovr_heads.json'
FUSION_FILE = 'geokit_fusion.safetensors'
EXPORT_INFO_FILE = 'geokit_export.json'
EXPORT_FORMAT = 1


def stock_hf_model(backbone: nn.Module) -> nn.Module:
    """The backbone's transformers model with LoRA merged (a copy when merging is needed)."""
    model = backbone.model
    if hasattr(model, 'merge_and_unload'):
        return copy.deepcopy(model).merge_and_unload()
    return model


def _plain(value: Any) -> Any:
    """A JSON-serialisable copy of a config value (mmengine ConfigDicts included)."""
    return json.loads(json.dumps(value.to_dict() if hasattr(value, 'to_dict') else value, default=str))


def fusion_export_config(fusion_cfg: dict) -> dict:
    """The fusion config as stored in an export: the spatial encoder is rebuilt from the exported weights."""
    cfg = copy.deepcopy(_plain(fusion_cfg))
    encoder = cfg.get('spatial_encoder')
    if isinstance(encoder, dict) and 'load_from' in encoder:
        encoder['load_from'] = None
    return cfg


def export_hf(model: nn.Module, out_dir: str, objectives_cfg: list | None = None, fusion_cfg: dict | None = None,
              data_preprocessor_cfg: dict | None = None) -> dict[str, str]:
    """Write ``out_dir`` atomically: HF model + processor + heads (GeoVR) or spatial encoder + connector (fusion).

    Args:
        model: a ``GeometricMLLM`` with trained weights loaded.
        out_dir: target directory (replaced if it exists).
        objectives_cfg: the objectives' config dicts, stored next to the heads for reference.
        fusion_cfg: the ``model.fusion`` config; required when the model has a fusion module.
        data_preprocessor_cfg: the ``model.data_preprocessor`` config (default: geometry tokens off at inference).

    Returns:
        ``{'model': out_dir, 'heads': heads file, 'fusion': fusion file (fusion models only)}``.

    Raises:
        ValueError: a fusion model without ``fusion_cfg``.
    """
    fusion = getattr(model, 'fusion', None)
    if fusion is not None and fusion_cfg is None:
        raise ValueError('the model has a fusion module (spatial encoder + connector): pass fusion_cfg (the '
                         'config\'s model.fusion) so the export can be rebuilt by geokit.load_exported.')
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
    written = {'model': out_dir, 'heads': osp.join(out_dir, HEADS_FILE)}
    try:
        stock_hf_model(model.backbone).save_pretrained(tmp, safe_serialization=True)
        model.backbone.processor.save_pretrained(tmp)
        heads = {f'{name}': tensor.detach().contiguous().cpu() for name, tensor in model.heads.state_dict().items()}
        save_file(heads, osp.join(tmp, HEADS_FILE), metadata={'format': 'geokit-geovr-heads'})
        with open(osp.join(tmp, HEADS_CONFIG_FILE), 'w') as f:
            json.dump({'objectives': objectives_cfg or [], 'heads': {n: type(h).__name__ for n, h in
                                                                      model.heads.items()}}, f, indent=2)
        info = {'format': EXPORT_FORMAT, 'backbone_type': type(model.backbone).__name__,
                'data_preprocessor': _plain(data_preprocessor_cfg or {'type': 'QwenVLDataPreprocessor'}),
                'max_new_tokens': int(getattr(model, 'max_new_tokens', 16)), 'fusion': None}
        if fusion is not None:
            tensors = {f'connector.{k}': v for k, v in fusion.connector.state_dict().items()}
            tensors.update({f'spatial_encoder.{k}': v for k, v in fusion.spatial_encoder.state_dict().items()})
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, osp.join(tmp, FUSION_FILE),
                      metadata={'format': 'geokit-fusion'})
            info['fusion'] = fusion_export_config(fusion_cfg)
            written['fusion'] = osp.join(out_dir, FUSION_FILE)
        with open(osp.join(tmp, EXPORT_INFO_FILE), 'w') as f:
            json.dump(info, f, indent=2)
        os.chmod(tmp, 0o755)
        if osp.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def load_exported(path: str, dtype: str = 'float32', device: str = 'cpu') -> nn.Module:
    """Rebuild the inference model of an export written by :func:`export_hf`, as a ``GeometricMLLM``.

    The backbone loads from ``path`` with transformers' ``from_pretrained``; a fusion export also gets its spatial
    encoder and connector back from ``geokit_fusion.safetensors``. No teacher and no heads (the inference model).

    Raises:
        FileNotFoundError: ``path`` is not a geokit export (no ``geokit_export.json``).
        KeyError: the fusion weights do not match the stored fusion config.
    """
    from geokit.registry import MODELS

    info_path = osp.join(path, EXPORT_INFO_FILE)
    if not osp.isfile(info_path):
        raise FileNotFoundError(f'{path} has no {EXPORT_INFO_FILE}: it was not written by tools/export_hf.py (a '
                                f'plain Hugging Face checkpoint loads with AutoModelForImageTextToText).')
    with open(info_path) as f:
        info = json.load(f)
    if info.get('format') != EXPORT_FORMAT:
        raise ValueError(f'{info_path} has format {info.get("format")}, this geokit reads {EXPORT_FORMAT}.')
    model = MODELS.build(dict(type='GeometricMLLM',
                              backbone=dict(type=info['backbone_type'], path=path, load_weights=True, dtype=dtype),
                              data_preprocessor=info['data_preprocessor'], fusion=info['fusion'],
                              max_new_tokens=info['max_new_tokens']))
    if info['fusion'] is not None:
        tensors = load_file(osp.join(path, FUSION_FILE))
        for part, module in (('connector', model.fusion.connector), ('spatial_encoder', model.fusion.spatial_encoder)):
            state = {k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(f'{part}.')}
            missing = sorted(set(module.state_dict()) ^ set(state))
            if missing:
                raise KeyError(f'{FUSION_FILE} in {path} does not match the stored fusion config ({part}: '
                               f'{missing[:5]}); re-export with tools/export_hf.py.')
            module.load_state_dict(state, strict=True)
    return model.to(device).eval()
