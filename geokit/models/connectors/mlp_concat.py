"""Concatenate vision and spatial tokens along channels, then map back to the LLM width with an MLP."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from geokit.registry import CONNECTORS

from .base import BaseSpatialConnector

__all__ = ['MLPConcatConnector']


@CONNECTORS.register_module()
class MLPConcatConnector(BaseSpatialConnector):
    """``fused = MLP(concat[vision_embeds, RMSNorm(spatial)])`` (the concatenation baseline of dual-encoder fusion).

    The merged spatial tokens (``merged_dim`` channels, aligned one-to-one with the ViT tokens, see
    :mod:`geokit.models.connectors.token_layout`) are RMS-normalised, concatenated to the vision tokens along the
    channel axis and mapped by ``Linear(llm_dim + merged_dim, hidden_dim) -> GELU -> Linear(hidden_dim, llm_dim)``.
    There is no residual path: the MLP output replaces the vision tokens.

    Call: ``forward(vision_embeds (N_tokens, llm_dim), spatial_feats (B, T, h, w, spatial_dim), grid_thw (B, 3))
    -> (N_tokens, llm_dim)`` (see :class:`BaseSpatialConnector`).

    Args:
        spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size: see :class:`BaseSpatialConnector`.
        hidden_dim: MLP width; ``None`` uses ``llm_dim``.
        eps: RMSNorm epsilon.
    """

    def __init__(self, spatial_dim: int, llm_dim: int, spatial_merge_size: int = 2, temporal_patch_size: int = 2,
                 hidden_dim: int | None = None, eps: float = 1e-6):
        super().__init__(spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size)
        hidden_dim = hidden_dim or llm_dim
        self.norm = nn.RMSNorm(self.merged_dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(llm_dim + self.merged_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, llm_dim))

    def forward(self, vision_embeds: torch.Tensor, spatial_feats: torch.Tensor | Sequence[torch.Tensor],
                grid_thw: torch.Tensor) -> torch.Tensor:
        """``(N_tokens, llm_dim)`` fused tokens (same order, dtype of ``vision_embeds``)."""
        spatial = self.norm(self.merged_spatial_tokens(vision_embeds, spatial_feats, grid_thw))
        fused = torch.cat([vision_embeds.to(spatial.dtype), spatial], dim=-1)
        return self.mlp(fused).to(vision_embeds.dtype)
