"""Export a trained :class:`~geokit.models.GeometricMLLM` as a stock Hugging Face checkpoint (heads separate).

The backbone *is* the stock transformers class, so the export is its ``save_pretrained`` (LoRA adapters merged
first) plus the processor (the tokenizer keeps the geometry tokens, harmless for plain inference). GeoVR's heads
go to ``geovr_heads.safetensors`` with their objective configs in ``geovr_heads.json``; plain transformers never
reads them.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import tempfile

from safetensors.torch import save_file
from torch import nn

HEADS_FILE = 'geovr_heads.safetensors'
HEADS_CONFIG_FILE = 'geovr_heads.json'


def stock_hf_model(backbone: nn.Module) -> nn.Module:
    """The backbone's transformers model with LoRA merged (a copy when merging is needed)."""
    model = backbone.model
    if hasattr(model, 'merge_and_unload'):
        import copy
        return copy.deepcopy(model).merge_and_unload()
    return model


def export_hf(model: nn.Module, out_dir: str, objectives_cfg: list | None = None) -> dict[str, str]:
    """Write ``out_dir`` atomically: HF model + processor + ``geovr_heads.safetensors`` / ``.json``.

    Args:
        model: a ``GeometricMLLM`` with trained weights loaded.
        out_dir: target directory (replaced if it exists).
        objectives_cfg: the objectives' config dicts, stored next to the heads for reference.

    Returns:
        ``{'model': out_dir, 'heads': path of the heads file}``.
    """
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
    try:
        stock_hf_model(model.backbone).save_pretrained(tmp, safe_serialization=True)
        model.backbone.processor.save_pretrained(tmp)
        heads = {f'{name}': tensor.detach().contiguous().cpu() for name, tensor in model.heads.state_dict().items()}
        save_file(heads, osp.join(tmp, HEADS_FILE), metadata={'format': 'geokit-geovr-heads'})
        with open(osp.join(tmp, HEADS_CONFIG_FILE), 'w') as f:
            json.dump({'objectives': objectives_cfg or [], 'heads': {n: type(h).__name__ for n, h in
                                                                      model.heads.items()}}, f, indent=2)
        os.chmod(tmp, 0o755)
        if osp.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {'model': out_dir, 'heads': osp.join(out_dir, HEADS_FILE)}
