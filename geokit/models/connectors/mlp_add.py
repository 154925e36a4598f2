"""Spatial-MLLM's connector: merged spatial tokens -> RMSNorm -> MLP -> added to the ViT tokens."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from geokit.registry import CONNECTORS

from .base import BaseSpatialConnector

__all__ = ['MLPAddConnector']


@CONNECTORS.register_module()
class MLPAddConnector(BaseSpatialConnector):
    """Add projected spatial tokens to the vision tokens (Spatial-MLLM, Wu et al. 2025).

    The spatial features of the ``temporal_patch_size`` frames and ``m x m`` patches behind each merged ViT token
    are concatenated (``merged_dim = m * m * spatial_dim * temporal_patch_size`` channels, see
    :mod:`geokit.models.connectors.token_layout`), normalised with RMSNorm, mapped to ``llm_dim`` by a
    ``Linear -> GELU -> Linear`` MLP and added: ``fused = vision_embeds + MLP(RMSNorm(spatial))``.

    Call: ``forward(vision_embeds (N_tokens, llm_dim), spatial_feats (B, T, h, w, spatial_dim), grid_thw (B, 3))
    -> (N_tokens, llm_dim)`` (see :class:`BaseSpatialConnector`).

    Args:
        spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size: see :class:`BaseSpatialConnector`.
        hidden_dim: MLP width; ``None`` uses ``merged_dim`` as Spatial-MLLM does.
        eps: RMSNorm epsilon.
        zero_init: initialise the last linear layer to zero, so the fused tokens start equal to the ViT tokens
            (off by default, as in Spatial-MLLM).
    """

    def __init__(self, spatial_dim: int, llm_dim: int, spatial_merge_size: int = 2, temporal_patch_size: int = 2,
                 hidden_dim: int | None = None, eps: float = 1e-6, zero_init: bool = False):
        super().__init__(spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size)
        hidden_dim = hidden_dim or self.merged_dim
        self.norm = nn.RMSNorm(self.merged_dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(self.merged_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, llm_dim))
        if zero_init:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, vision_embeds: torch.Tensor, spatial_feats: torch.Tensor | Sequence[torch.Tensor],
                grid_thw: torch.Tensor) -> torch.Tensor:
        """``(N_tokens, llm_dim)`` vision tokens + projected spatial tokens (same order, dtype of ``vision_embeds``)."""
        spatial = self.merged_spatial_tokens(vision_embeds, spatial_feats, grid_thw)
        return vision_embeds + self.mlp(self.norm(spatial)).to(vision_embeds.dtype)
