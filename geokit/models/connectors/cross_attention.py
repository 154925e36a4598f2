"""Vision tokens attend to the spatial tokens of their own video (gated residual cross-attention)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from geokit.registry import CONNECTORS

from .base import BaseSpatialConnector
from .token_layout import merged_token_counts, merged_token_positions

__all__ = ['CrossAttentionConnector', 'sincos_position_embedding_3d']


def sincos_position_embedding_3d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed sine-cosine embedding of integer 3D positions.

    Each axis gets ``2 * (dim // 6)`` channels (``sin`` then ``cos`` over ``dim // 6`` frequencies); the
    remaining ``dim % 6`` channels are zero.

    Args:
        positions: ``(N, 3)`` positions (any numeric dtype).
        dim: embedding width.

    Returns:
        ``(N, dim)`` float32.
    """
    num_freqs = dim // 6
    out = torch.zeros(positions.shape[0], dim, device=positions.device)
    if num_freqs == 0:
        return out
    freqs = temperature ** (-torch.arange(num_freqs, device=positions.device, dtype=torch.float32) / num_freqs)
    angles = positions.float()[:, :, None] * freqs  # (N, 3, F)
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1).reshape(positions.shape[0], 6 * num_freqs)
    out[:, :emb.shape[1]] = emb
    return out


@CONNECTORS.register_module()
class CrossAttentionConnector(BaseSpatialConnector):
    """``fused = vision + tanh(gate) * CrossAttn(q=vision, kv=spatial)``, attention restricted to each video.

    The merged spatial tokens (aligned one-to-one with the ViT tokens, see
    :mod:`geokit.models.connectors.token_layout`) are RMS-normalised and projected to ``llm_dim``; the
    RMS-normalised vision tokens are the queries. Both get the same fixed 3D sine-cosine embedding of their
    block position ``(t, i, j)``, so attention can prefer the spatial tokens of the same place and time. Every
    vision token attends to all spatial tokens of its own video (``nn.MultiheadAttention``, one video at a time).
    The gate is a learnable scalar; ``gate_init=0`` makes the connector start as the identity (Flamingo-style).

    Call: ``forward(vision_embeds (N_tokens, llm_dim), spatial_feats (B, T, h, w, spatial_dim), grid_thw (B, 3))
    -> (N_tokens, llm_dim)`` (see :class:`BaseSpatialConnector`).

    Args:
        spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size: see :class:`BaseSpatialConnector`.
        num_heads: attention heads (must divide ``llm_dim``).
        gate_init: initial value of the residual gate (before ``tanh``).
        eps: RMSNorm epsilon.
    """

    def __init__(self, spatial_dim: int, llm_dim: int, spatial_merge_size: int = 2, temporal_patch_size: int = 2,
                 num_heads: int = 8, gate_init: float = 0.0, eps: float = 1e-6):
        super().__init__(spatial_dim, llm_dim, spatial_merge_size, temporal_patch_size)
        if llm_dim % num_heads:
            raise ValueError(f'CrossAttentionConnector: num_heads={num_heads} must divide llm_dim={llm_dim}; '
                             f'set num_heads in the connector config.')
        self.num_heads = num_heads
        self.query_norm = nn.RMSNorm(llm_dim, eps=eps)
        self.spatial_norm = nn.RMSNorm(self.merged_dim, eps=eps)
        self.spatial_proj = nn.Linear(self.merged_dim, llm_dim)
        self.attn = nn.MultiheadAttention(llm_dim, num_heads, batch_first=True)
        self.gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.pos_scale = 1.0 / math.sqrt(2.0)

    def forward(self, vision_embeds: torch.Tensor, spatial_feats: torch.Tensor | Sequence[torch.Tensor],
                grid_thw: torch.Tensor) -> torch.Tensor:
        """``(N_tokens, llm_dim)`` fused tokens (same order, dtype of ``vision_embeds``)."""
        spatial = self.spatial_proj(self.spatial_norm(self.merged_spatial_tokens(vision_embeds, spatial_feats,
                                                                                 grid_thw)))
        dtype = spatial.dtype
        pos = sincos_position_embedding_3d(merged_token_positions(grid_thw, self.spatial_merge_size),
                                           self.llm_dim).to(dtype) * self.pos_scale
        query = self.query_norm(vision_embeds.to(dtype)) + pos
        key = spatial + pos
        outputs = []
        for q, k, v in zip(*(x.split(merged_token_counts(grid_thw, self.spatial_merge_size))
                             for x in (query, key, spatial))):
            outputs.append(self.attn(q[None], k[None], v[None], need_weights=False)[0][0])
        attended = torch.cat(outputs, dim=0)
        return vision_embeds + (torch.tanh(self.gate) * attended).to(vision_embeds.dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', num_heads={self.num_heads}'
