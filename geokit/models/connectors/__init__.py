"""Connectors: fuse spatial-encoder patch features into the merged vision tokens of a Qwen-VL MLLM.

All share ``forward(vision_embeds (N_tokens, llm_dim), spatial_feats (B, T, h, w, spatial_dim), grid_thw (B, 3))
-> (N_tokens, llm_dim)``; the spatial tokens are put in the vision merger's token order by
:mod:`geokit.models.connectors.token_layout`. :class:`SpatialEncoderFusion` (frozen spatial encoder + connector) is
the module ``GeometricMLLM(fusion=...)`` builds for Spatial-MLLM; :class:`VGGTSpatialEncoder` is its VGGT encoder.
"""
from .base import BaseSpatialConnector
from .cross_attention import CrossAttentionConnector, sincos_position_embedding_3d
from .mlp_add import MLPAddConnector
from .mlp_concat import MLPConcatConnector
from .spatial_encoder import SpatialEncoderFusion, VGGTSpatialEncoder
from .token_layout import (
    align_spatial_to_vit_grid,
    merge_spatial_tokens,
    merged_token_counts,
    merged_token_positions,
    spatial_tokens_for_vit,
)

__all__ = [
    'BaseSpatialConnector', 'CrossAttentionConnector', 'MLPAddConnector', 'MLPConcatConnector', 'SpatialEncoderFusion',
    'VGGTSpatialEncoder',
    'align_spatial_to_vit_grid', 'merge_spatial_tokens', 'merged_token_counts', 'merged_token_positions',
    'sincos_position_embedding_3d', 'spatial_tokens_for_vit',
]
