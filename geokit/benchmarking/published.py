"""The released checkpoints' public settings, written into the repository, and processors built from them.

``geokit/assets/mllms/published/<name>/`` holds the public ``config.json``, ``preprocessor_config.json`` and (Qwen3-VL)
``video_preprocessor_config.json`` of Qwen3-VL-2B-Instruct and Qwen2.5-VL-3B-Instruct as released (field names of
the release); ``geokit/assets/teachers/VGGT-1B/config.json`` holds VGGT-1B's. No weights and no tokenizer are
stored. :func:`write_published_processor` assembles a processor directory with the published image/video
processor settings and a *stand-in* tokenizer: the tiny assets' BPE vocabulary, padded with unreachable filler
entries so that the special tokens sit at the release's ids (``<|endoftext|>`` = 151643, ..., ``<|video_pad|>`` =
151656, ...) and the model's vocabulary size is the release's (151936). Text is tokenised differently from the
release (fewer, shorter tokens); ids, special tokens and the chat layout around the video are the release's.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
from pathlib import Path

from geokit.models.mllms.qwen_vl import ASSET_ROOT

PUBLISHED_ROOT = osp.join(ASSET_ROOT, 'mllms', 'published')
VGGT_1B_CONFIG = osp.join(ASSET_ROOT, 'teachers', 'VGGT-1B', 'config.json')

#: Published checkpoint directory name per backbone type.
PUBLISHED = {'Qwen3VLBackbone': 'Qwen3-VL-2B-Instruct', 'Qwen25VLBackbone': 'Qwen2.5-VL-3B-Instruct'}
#: The tiny asset whose tokenizer vocabulary and chat template stand in.
STAND_IN = {'Qwen3VLBackbone': 'tiny-qwen3vl', 'Qwen25VLBackbone': 'tiny-qwen2_5vl'}

#: Special / added tokens of the Qwen2.5 and Qwen3 tokenizers from id 151643 on (the release's order).
QWEN_ADDED_TOKENS = (
    '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>',
    '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
    '<|image_pad|>', '<|video_pad|>', '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>',
    '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>')
#: Qwen3 adds these after the Qwen2.5 list.
QWEN3_EXTRA_TOKENS = ('<tool_response>', '</tool_response>', '<think>', '</think>')
FIRST_ADDED_ID = 151643
SPECIAL = set(QWEN_ADDED_TOKENS[:14])   # the ones marked special in the release (the rest are plain added tokens)


def published_dir(backbone_type: str) -> str:
    """``geokit/assets/mllms/published/<name>`` of a backbone type."""
    if backbone_type not in PUBLISHED:
        raise KeyError(f'no published settings for backbone {backbone_type!r}; known: {sorted(PUBLISHED)}.')
    return osp.join(PUBLISHED_ROOT, PUBLISHED[backbone_type])


def published_config(backbone_type: str) -> dict:
    """The release's ``config.json`` as a dict."""
    with open(osp.join(published_dir(backbone_type), 'config.json')) as f:
        return json.load(f)


def vggt_1b_config() -> dict:
    """VGGT-1B's public ``config.json`` (``img_size``, ``patch_size``, ``embed_dim``) plus its aggregator depth."""
    with open(VGGT_1B_CONFIG) as f:
        return json.load(f)


def stand_in_tokenizer(backbone_type: str) -> dict:
    """``tokenizer.json`` content: the tiny vocabulary padded so the added tokens get the release's ids."""
    with open(osp.join(ASSET_ROOT, 'mllms', STAND_IN[backbone_type], 'tokenizer.json')) as f:
        tokenizer = json.load(f)
    vocab = tokenizer['model']['vocab']
    tiny_added = {t['content'] for t in tokenizer['added_tokens']}
    added = QWEN_ADDED_TOKENS + (QWEN3_EXTRA_TOKENS if backbone_type == 'Qwen3VLBackbone' else ())
    missing = tiny_added - set(added)
    if missing:
        raise ValueError(f'the stand-in tokenizer has added tokens the release lacks: {sorted(missing)}.')
    base = len(vocab)
    for index in range(base, FIRST_ADDED_ID):     # unreachable by the BPE merges: never produced by encoding
        vocab[f'<|geokit_filler_{index}|>'] = index
    tokenizer['added_tokens'] = [
        dict(id=FIRST_ADDED_ID + i, content=token, single_word=False, lstrip=False, rstrip=False, normalized=False,
             special=token in SPECIAL) for i, token in enumerate(added)]
    return tokenizer


def write_published_processor(backbone_type: str, out_dir: str | os.PathLike) -> str:
    """A processor directory at the release's image/video processor settings with the stand-in tokenizer.

    Returns:
        ``out_dir`` (load it with ``AutoProcessor.from_pretrained`` or as ``model.backbone.processor_path``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = Path(published_dir(backbone_type))
    for name in ('preprocessor_config.json', 'video_preprocessor_config.json'):
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    tiny = Path(ASSET_ROOT, 'mllms', STAND_IN[backbone_type])
    shutil.copyfile(tiny / 'chat_template.jinja', out / 'chat_template.jinja')
    with open(tiny / 'tokenizer_config.json') as f:
        tokenizer_config = json.load(f)
    processor_class = json.loads((source / 'preprocessor_config.json').read_text())['processor_class']
    tokenizer_config['processor_class'] = processor_class
    (out / 'tokenizer_config.json').write_text(json.dumps(tokenizer_config, indent=2))
    (out / 'tokenizer.json').write_text(json.dumps(stand_in_tokenizer(backbone_type)))
    return str(out)
