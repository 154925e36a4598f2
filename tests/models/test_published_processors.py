"""The data path at the released checkpoints' processor settings (Qwen3-VL-2B-Instruct, Qwen2.5-VL-3B-Instruct).

The tiny assets' processors were written by us (frame sampling off); these tests use the published
``preprocessor_config.json`` / ``video_preprocessor_config.json`` (``geokit/assets/mllms/published``) with the
stand-in tokenizer at the release's special-token ids, on a tiny random model of the same backbone class.
"""
from __future__ import annotations

import json
import os.path as osp

import pytest
import torch
from transformers import AutoProcessor

from geokit.benchmarking.published import FIRST_ADDED_ID, published_config, published_dir, write_published_processor
from geokit.models.data_preprocessor import QwenVLDataPreprocessor
from geokit.models.mllms.qwen_vl import ASSET_ROOT
from geokit.registry import MLLMS

TINY = {'Qwen3VLBackbone': 'tiny-qwen3vl', 'Qwen25VLBackbone': 'tiny-qwen2_5vl'}
TOKEN_KEYS = ('image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id')


@pytest.fixture(scope='module', params=['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def published_backbone(request, tmp_path_factory):
    """A tiny random backbone whose processor is the release's (patch size and token ids of the release)."""
    kind = request.param
    processor_dir = write_published_processor(kind, tmp_path_factory.mktemp('processor'))
    with open(osp.join(ASSET_ROOT, 'mllms', TINY[kind], 'config.json')) as f:
        arch = json.load(f)
    release = published_config(kind)
    arch.update({key: release[key] for key in TOKEN_KEYS})
    arch['text_config'].update(vocab_size=release.get('vocab_size') or release['text_config']['vocab_size'],
                               pad_token_id=None)
    arch['vision_config']['patch_size'] = release['vision_config']['patch_size']
    backbone = MLLMS.build(dict(type=kind, path=str(tmp_path_factory.mktemp('no_weights')), load_weights=False,
                                config=arch, processor_path=processor_dir))
    return kind, backbone


def test_published_processor_settings(published_backbone):
    kind, backbone = published_backbone
    video = backbone.processor.video_processor
    source = osp.join(published_dir(kind), 'video_preprocessor_config.json')
    if not osp.isfile(source):                      # Qwen2.5-VL-3B ships one preprocessor config for both
        source = osp.join(published_dir(kind), 'preprocessor_config.json')
    with open(source) as f:
        release = json.load(f)
    assert video.patch_size == release['patch_size'] and video.merge_size == release['merge_size']
    assert list(video.image_mean) == pytest.approx(release['image_mean'])
    if 'size' in release:
        assert video.size.longest_edge == release['size']['longest_edge']
    else:
        assert video.size.longest_edge == release['max_pixels']
    tokenizer = backbone.processor.tokenizer
    assert tokenizer.convert_tokens_to_ids('<|endoftext|>') == FIRST_ADDED_ID
    assert tokenizer.convert_tokens_to_ids('<|video_pad|>') == backbone.video_token_id == 151656
    assert backbone.hf_model.get_input_embeddings().num_embeddings == 151936
    assert video.do_sample_frames is False          # geokit's frame sampler owns the choice of frames


def test_processor_at_published_defaults_keeps_geokit_frames_and_timestamps(published_backbone):
    """Frames 0/300/600/899 of a 30 fps clip: the four given frames are used (Qwen3-VL's processor would resample
    them, ``do_sample_frames=True`` by default, and index frames that do not exist) and time is right."""
    kind, backbone = published_backbone
    preprocessor = QwenVLDataPreprocessor(insert_geometry_tokens=True)
    preprocessor.bind(backbone)
    sample = {'frames': torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8),
              'frame_indices': torch.tensor([0, 300, 600, 899]),
              'conversations': [{'from': 'human', 'value': '<video>\nHow many chairs?'}, {'from': 'gpt', 'value': '2'}],
              'meta': {'id': 'x', 'fps': 30.0}}
    inputs = preprocessor([sample], training=True)['inputs']
    assert inputs['video_grid_thw'].tolist() == [[2, 4, 4]]         # 4 frames -> 2 temporal groups
    if kind == 'Qwen3VLBackbone':
        text = backbone.processor.tokenizer.decode(inputs['input_ids'][0])
        # temporal groups (0, 300) and (600, 899) at 30 fps: mean times 5.0 s and 24.98 s
        assert '<5.0 seconds>' in text and '<25.0 seconds>' in text
    else:
        # the stock rule: temporal_patch_size / (sampled frames / total frames * fps)
        assert inputs['second_per_grid_ts'].tolist() == pytest.approx([2 / (4 / 900 * 30.0)])


def test_processor_sampling_cannot_be_switched_on(tmp_path):
    processor_dir = write_published_processor('Qwen3VLBackbone', tmp_path / 'p')
    assert AutoProcessor.from_pretrained(processor_dir).video_processor.do_sample_frames is True  # the release's
    with pytest.raises(ValueError, match='frame_sampler'):
        MLLMS.build(dict(type='Qwen3VLBackbone', path='geokit://mllms/tiny-qwen3vl', load_weights=False,
                         processor_kwargs=dict(do_sample_frames=True)))
