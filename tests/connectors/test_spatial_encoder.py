"""The VGGT spatial encoder, the fusion module, and Spatial-MLLM inside GeometricMLLM (the embedded config)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from geokit.registry import CONNECTORS, MODELS, TEACHERS, check_config_types

REPO = Path(__file__).resolve().parents[2]
TINY_NET = dict(img_size=112, patch_size=14, embed_dim=16, depth=2, num_heads=2, num_register_tokens=4,
                patch_embed='conv', camera_head=dict(trunk_depth=1, num_heads=2),
                dpt_head=dict(features=8, out_channels=(8, 8, 8, 8), intermediate_layer_idx=(0, 1, 1, 1)))


def _encoder(**kwargs):
    return dict(type='VGGTSpatialEncoder', image_size=56, net=TINY_NET, **kwargs)


def _frames(batch=1, frames=4, height=48, width=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, frames, height, width, 3), dtype=torch.uint8, generator=g)


def test_encoder_returns_one_frozen_layer_over_the_whole_frame():
    encoder = TEACHERS.build(_encoder(layer=-1))
    assert encoder.layer == 1 and encoder.out_channels == 32
    assert not any(p.requires_grad for p in encoder.parameters())
    targets = encoder(_frames())
    assert targets.image_hw == (42, 56)                       # longer side 56, both multiples of 14, no crop
    assert set(targets.features) == {1} and targets.features[1].shape == (1, 4, 3, 4, 32)
    assert encoder(_frames(), image_hw=(28, 42)).features[1].shape == (1, 4, 2, 3, 32)
    with pytest.raises(ValueError, match='out of range'):
        TEACHERS.build(_encoder(layer=5))


def test_fusion_keeps_encoder_out_of_the_state_dict_and_fuses_in_order():
    fusion = CONNECTORS.build(dict(type='SpatialEncoderFusion', spatial_encoder=_encoder(),
                                   connector=dict(type='MLPAddConnector', llm_dim=24, hidden_dim=32)))
    assert fusion.connector.spatial_dim == 32                 # defaulted from the encoder's width
    assert all(key.startswith('connector.') for key in fusion.state_dict())
    grid = torch.tensor([[2, 6, 8]])                          # ViT grid differs from the encoder's 3 x 4
    vision = torch.randn(2 * 6 * 8 // 4, 24)
    frames = _frames()
    fused = fusion(vision_embeds=vision, frames=frames, video_grid_thw=grid, meta=[dict(id='a')])
    spatial = fusion.spatial_encoder(frames).features[1]
    assert torch.allclose(fused, fusion.connector(vision, spatial, grid))
    fusion.double()
    assert next(fusion.spatial_encoder.parameters()).dtype == torch.float64
    matched = CONNECTORS.build(dict(type='SpatialEncoderFusion', spatial_encoder=_encoder(), match_vit_grid=True,
                                    connector=dict(type='MLPAddConnector', llm_dim=24)))
    assert matched.encode(frames, grid).shape == (1, 4, 6, 8, 32)


def _sample(seed):
    return {'frames': _frames(seed=seed)[0], 'frame_indices': torch.arange(4),
            'conversations': [{'from': 'human', 'value': '<video>\nHow many chair(s) are in this room?'},
                              {'from': 'gpt', 'value': '3'}],
            'meta': {'id': f's{seed}', 'dataset': 'fake', 'scene_name': 'x', 'question_type': 'object_counting',
                     'options': None, 'ground_truth': '3', 'video': 'v.mp4'},
            'geometry': None}


def test_embedded_spatial_mllm_model_trains_the_connector_and_not_the_encoder():
    cfg = Config.fromfile(str(REPO / 'configs/_base_/models/spatial_mllm_qwen2_5vl_tiny.py'))
    # a smaller, randomly initialised encoder for speed
    cfg.model.fusion.spatial_encoder.update(image_size=56, net=TINY_NET, load_from=None)
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor([_sample(0), _sample(1)], True)
    losses = model(**data, mode='loss')
    assert set(k for k in losses if k.startswith('loss_')) == {'loss_lm'} and torch.isfinite(losses['loss_lm'])
    losses['loss_lm'].backward()
    assert all(p.grad is not None for p in model.fusion.connector.parameters())
    assert all(p.grad is None for p in model.fusion.spatial_encoder.parameters())
    assert not any(key.startswith('fusion.') and 'connector' not in key for key in model.state_dict())
    model.eval()
    predictions = model(**model.data_preprocessor([_sample(0)], False), mode='predict')
    assert len(predictions) == 1 and isinstance(predictions[0]['prediction'], str)


PROJECT_CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / 'projects/spatial_mllm').glob('*.py'))


@pytest.mark.parametrize('config', PROJECT_CONFIGS)
def test_project_configs_name_only_registered_types(config):
    cfg = Config.fromfile(str(REPO / config))
    check_config_types(cfg.to_dict())
    assert cfg.model.fusion.type == 'SpatialEncoderFusion'
