"""Shapes, fusion semantics and input checks of the registered connectors."""
from __future__ import annotations

import pytest
import torch

from geokit.models.connectors import MLPAddConnector, spatial_tokens_for_vit
from geokit.registry import CONNECTORS

GRID = torch.tensor([[2, 4, 6], [1, 2, 4]])
N_TOKENS = 2 * 4 * 6 // 4 + 1 * 2 * 4 // 4
SPATIAL_DIM, LLM_DIM = 6, 16


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    vision = torch.randn(N_TOKENS, LLM_DIM, generator=g)
    spatial = [torch.randn(4, 5, 7, SPATIAL_DIM, generator=g), torch.randn(1, 2, 4, SPATIAL_DIM, generator=g)]
    return vision, spatial


@pytest.mark.parametrize('cfg', [
    dict(type='MLPAddConnector'),
    dict(type='MLPConcatConnector'),
    dict(type='CrossAttentionConnector', num_heads=2, gate_init=0.5),
])
def test_registered_connectors_keep_shape_order_and_dtype(cfg):
    torch.manual_seed(0)
    connector = CONNECTORS.build(dict(cfg, spatial_dim=SPATIAL_DIM, llm_dim=LLM_DIM))
    vision, spatial = _inputs()
    vision.requires_grad_(True)
    fused = connector(vision, spatial, GRID)
    assert fused.shape == (N_TOKENS, LLM_DIM) and fused.dtype == vision.dtype
    assert torch.isfinite(fused).all() and not torch.allclose(fused, vision)
    fused.square().sum().backward()
    assert vision.grad is not None and all(p.grad is not None for p in connector.parameters())


def test_mlp_add_is_vision_plus_mlp_of_normalised_merged_spatial_tokens():
    torch.manual_seed(0)
    connector = MLPAddConnector(SPATIAL_DIM, LLM_DIM, hidden_dim=32)
    vision, spatial = _inputs()
    tokens = spatial_tokens_for_vit(spatial, GRID)
    assert tokens.shape == (N_TOKENS, 4 * 2 * SPATIAL_DIM)
    expected = vision + connector.mlp(connector.norm(tokens))
    assert torch.allclose(connector(vision, spatial, GRID), expected)
    # token n of the fused output depends only on spatial token n
    perturbed = [spatial[0].clone(), spatial[1]]
    perturbed[0][2:4, :, :] += 1.0  # frames of the second temporal patch of video 0 (tokens 6..11)
    changed = (connector(vision, perturbed, GRID) != connector(vision, spatial, GRID)).any(-1)
    assert changed.tolist() == [False] * 6 + [True] * 6 + [False] * 2


def test_zero_init_and_gate_init_start_as_identity():
    vision, spatial = _inputs()
    add = MLPAddConnector(SPATIAL_DIM, LLM_DIM, zero_init=True)
    cross = CONNECTORS.build(dict(type='CrossAttentionConnector', spatial_dim=SPATIAL_DIM, llm_dim=LLM_DIM,
                                  num_heads=4))
    assert torch.equal(add(vision, spatial, GRID), vision)
    assert torch.equal(cross(vision, spatial, GRID), vision)


def test_cross_attention_stays_within_each_video():
    torch.manual_seed(0)
    connector = CONNECTORS.build(dict(type='CrossAttentionConnector', spatial_dim=SPATIAL_DIM, llm_dim=LLM_DIM,
                                      num_heads=2, gate_init=1.0))
    vision, spatial = _inputs()
    perturbed = [spatial[0], spatial[1] + 1.0]
    changed = (connector(vision, perturbed, GRID) != connector(vision, spatial, GRID)).any(-1)
    assert not changed[:12].any() and changed[12:].all() and len(changed) == 14


def test_bfloat16_vision_tokens_keep_their_dtype():
    connector = MLPAddConnector(SPATIAL_DIM, LLM_DIM).to(torch.bfloat16)
    vision, spatial = _inputs()
    assert connector(vision.bfloat16(), spatial, GRID).dtype == torch.bfloat16


@pytest.mark.parametrize('change,match', [
    (dict(vision=torch.zeros(N_TOKENS + 1, LLM_DIM)), 'gives 14 merged tokens but vision_embeds has 15'),
    (dict(vision=torch.zeros(N_TOKENS, LLM_DIM + 1)), 'llm_dim=16'),
    (dict(spatial=[torch.zeros(4, 4, 6, 3), torch.zeros(1, 2, 4, 3)]), 'spatial_dim=6'),
    (dict(spatial=[torch.zeros(4, 4, 6, SPATIAL_DIM)]), 'features for 1 videos but grid_thw has 2 rows'),
    (dict(grid=torch.tensor([[2, 4, 6], [2, 2, 4]])), 'run the spatial encoder on exactly the frames'),
])
def test_wrong_inputs_name_the_problem(change, match):
    connector = MLPAddConnector(SPATIAL_DIM, LLM_DIM)
    vision, spatial = _inputs()
    grid = GRID
    if 'grid' in change:
        grid = change['grid']
        vision = torch.zeros(sum(int(t * h * w) // 4 for t, h, w in grid.tolist()), LLM_DIM)
    with pytest.raises(ValueError, match=match):
        connector(change.get('vision', vision), change.get('spatial', spatial), grid)
