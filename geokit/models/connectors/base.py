"""Shared input handling of the spatial-feature connectors."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .token_layout import merged_token_counts, spatial_tokens_for_vit

__all__ = ['BaseSpatialConnector']


class BaseSpatialConnector(nn.Module):
    """Fuses spatial-encoder patch features into the merged vision tokens of a Qwen-VL MLLM.

    Every connector has the same call: ``forward(vision_embeds, spatial_feats, grid_thw) -> fused`` with

    - ``vision_embeds``: ``(N_tokens, llm_dim)`` output of the vision tower's patch merger (what the MLLM scatters
      into the video placeholder tokens), videos concatenated in ``grid_thw`` order;
    - ``spatial_feats``: ``(B, T, h, w, spatial_dim)`` spatial-encoder patch tokens of the same ``T`` frames (or a
      sequence of ``(T_b, h_b, w_b, spatial_dim)``); a grid ``(h, w)`` other than the ViT's is resized bilinearly,
      an odd ``T`` is padded like the Qwen-VL processor pads frames;
    - ``grid_thw``: ``(B, 3)`` ViT patch grid per video (``video_grid_thw`` from the processor);
    - returns ``(N_tokens, llm_dim)`` fused tokens in the same order and dtype as ``vision_embeds``.

    Inside ``GeometricMLLM(fusion=dict(type='SpatialEncoderFusion', ...))`` the sizes default to the backbone's
    (``llm_dim``, ``spatial_merge_size``, ``temporal_patch_size``) and the spatial encoder's (``spatial_dim``), so
    a connector config names only what differs; a value it gives wins (and is checked against the inputs).

    Args:
        spatial_dim: channels ``C`` of the spatial features (``2 * 1024`` for a VGGT-1B aggregator layer, whose
            patch tokens concatenate the frame-attention and global-attention outputs).
        llm_dim: width of the vision embeddings (the LLM hidden size).
        spatial_merge_size: the vision config's ``spatial_merge_size`` (2 for Qwen2.5-VL / Qwen3-VL).
        temporal_patch_size: the vision config's ``temporal_patch_size`` (2 for Qwen2.5-VL / Qwen3-VL).
    """

    def __init__(self, spatial_dim: int, llm_dim: int, spatial_merge_size: int = 2, temporal_patch_size: int = 2):
        super().__init__()
        self.spatial_dim = spatial_dim
        self.llm_dim = llm_dim
        self.spatial_merge_size = spatial_merge_size
        self.temporal_patch_size = temporal_patch_size
        #: channels of one merged spatial token: ``m * m * spatial_dim * temporal_patch_size``.
        self.merged_dim = spatial_dim * temporal_patch_size * spatial_merge_size**2

    def merged_spatial_tokens(self, vision_embeds: torch.Tensor, spatial_feats: torch.Tensor | Sequence[torch.Tensor],
                              grid_thw: torch.Tensor) -> torch.Tensor:
        """Check the inputs and return ``(N_tokens, merged_dim)`` spatial tokens aligned with ``vision_embeds``."""
        name = type(self).__name__
        if vision_embeds.dim() != 2 or vision_embeds.shape[-1] != self.llm_dim:
            raise ValueError(f'{name} expects vision_embeds of shape (N_tokens, llm_dim={self.llm_dim}), got '
                             f'{tuple(vision_embeds.shape)}; remove llm_dim from the connector config (GeometricMLLM '
                             f'passes the MLLM hidden size) or set it to that size.')
        channels = {int(f.shape[-1]) for f in spatial_feats}
        if channels != {self.spatial_dim}:
            raise ValueError(f'{name} was built with spatial_dim={self.spatial_dim} but the spatial features have '
                             f'{sorted(channels)} channels; remove spatial_dim from the connector config '
                             f'(SpatialEncoderFusion passes the encoder\'s out_channels) or set it to that width.')
        if isinstance(spatial_feats, torch.Tensor) and spatial_feats.dim() != 5:
            raise ValueError(f'{name} expects spatial_feats of shape (B, T, h, w, C), got '
                             f'{tuple(spatial_feats.shape)}.')
        counts = merged_token_counts(grid_thw, self.spatial_merge_size)
        if sum(counts) != vision_embeds.shape[0]:
            raise ValueError(f'{name}: grid_thw {grid_thw.tolist()} with spatial_merge_size={self.spatial_merge_size} '
                             f'gives {sum(counts)} merged tokens but vision_embeds has {vision_embeds.shape[0]}; '
                             f'pass the merger output together with the grid_thw of the same videos.')
        tokens = spatial_tokens_for_vit(spatial_feats, grid_thw, self.temporal_patch_size, self.spatial_merge_size)
        param = next(self.parameters(), None)
        return tokens.to(param.dtype if param is not None else vision_embeds.dtype)

    def extra_repr(self) -> str:
        return (f'spatial_dim={self.spatial_dim}, llm_dim={self.llm_dim}, '
                f'spatial_merge_size={self.spatial_merge_size}, temporal_patch_size={self.temporal_patch_size}')
