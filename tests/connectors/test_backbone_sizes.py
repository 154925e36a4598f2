"""Connectors get the backbone's sizes as defaults (as heads get in_channels); a wrong explicit size still fails."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from geokit.registry import MODELS

from .test_spatial_encoder import TINY_NET, _sample

REPO = Path(__file__).resolve().parents[2]
SIZES = ('llm_dim', 'spatial_merge_size', 'temporal_patch_size', 'spatial_dim')


def _tiny_model_cfg(**connector) -> dict:
    cfg = Config.fromfile(str(REPO / 'configs/_base_/models/spatial_mllm_qwen2_5vl_tiny.py')).model.to_dict()
    assert not set(SIZES) & set(cfg['fusion']['connector'])          # the config names none of the sizes
    cfg['fusion']['spatial_encoder'].update(image_size=56, net=TINY_NET, load_from=None)
    cfg['fusion']['connector'].update(connector)
    return cfg


def test_connector_sizes_default_to_the_backbone_and_the_encoder():
    model = MODELS.build(_tiny_model_cfg())
    connector, backbone = model.fusion.connector, model.backbone
    assert (connector.llm_dim, connector.spatial_merge_size, connector.temporal_patch_size) == \
        (backbone.hidden_size, backbone.spatial_merge_size, backbone.frames_per_token) == (128, 2, 2)
    assert connector.spatial_dim == model.fusion.spatial_encoder.out_channels == 2 * TINY_NET['embed_dim']
    assert model.fusion.connector.mlp[-1].out_features == 128


def test_with_frames_fed_twice_the_connector_merges_one_frame_per_temporal_token():
    """GeoVR's repeat_frames=2 makes one temporal token per input frame; the spatial encoder sees the frames once, so
    the connector's temporal merge must be 1 (the ViT's temporal patch 2 would ask for twice the frames)."""
    cfg = _tiny_model_cfg()
    cfg['data_preprocessor'] = dict(type='QwenVLDataPreprocessor', repeat_frames=2)
    model = MODELS.build(cfg)
    assert model.fusion.connector.temporal_patch_size == model.frames_per_token == 1
    losses = model(**model.data_preprocessor([_sample(0)], True), mode='loss')
    assert torch.isfinite(losses['loss_lm'])


def test_an_explicitly_wrong_llm_dim_still_fails_with_the_clear_error():
    model = MODELS.build(_tiny_model_cfg(llm_dim=64))                # a value the config gives wins ...
    assert model.fusion.connector.llm_dim == 64
    data = model.data_preprocessor([_sample(0)], True)
    with pytest.raises(ValueError, match=r"llm_dim=64.*remove llm_dim from the connector config"):
        model(**data, mode='loss')                                    # ... and is checked against the ViT tokens


def test_paper_config_connector_has_the_release_widths():
    """Spatial-MLLM at paper scale (Qwen2.5-VL-3B + VGGT-1B), built on the meta device: llm_dim 2048 comes from
    the backbone, spatial_dim 2 * 1024 from the encoder, so the MLP is (16384 -> 16384 -> 2048) as released."""
    cfg = Config.fromfile(str(REPO / 'configs/_base_/models/spatial_mllm_qwen2_5vl_3b.py'))
    model_cfg = cfg.model.to_dict()
    assert not set(SIZES) & set(model_cfg['fusion']['connector'])
    model_cfg['backbone'].update(load_weights=False, processor_path='geokit://mllms/tiny-qwen2_5vl',
                                 config=cfg.qwen25vl_3b_arch.to_dict())
    model_cfg['fusion']['spatial_encoder']['load_from'] = None
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    connector = model.fusion.connector
    assert (connector.llm_dim, connector.spatial_dim, connector.merged_dim) == (2048, 2048, 2048 * 2 * 4)
    assert [tuple(m.weight.shape) for m in connector.mlp if isinstance(m, torch.nn.Linear)] == \
        [(16384, 16384), (2048, 16384)]
