"""The DINOv2-style ViT that VGGT uses as its patch embedding (``aggregator.patch_embed``).

Parameter names follow DINOv2 with registers (``cls_token``, ``register_tokens``, ``pos_embed``, ``mask_token``,
``patch_embed.proj``, ``blocks.<i>``, ``norm``) as stored in VGGT's checkpoint. The official VGGT-1B uses ViT-L/14
(``embed_dim=1024, depth=24, num_heads=16``, 4 registers, layer scale 1.0, LayerNorm eps 1e-6, no QK-norm) with a
learned position embedding for 518 px images that is resized bicubically (with anti-aliasing) to other grids.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block


class ConvPatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` convolution: ``(N, 3, H, W) -> (N, H/p * W/p, C)``."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f'image size {(height, width)} is not a multiple of the patch size {self.patch_size}; '
                             f'set the teacher image_size to a multiple of it.')
        return self.proj(images).flatten(2).transpose(1, 2)


class DinoV2PatchEmbed(nn.Module):
    """DINOv2 ViT with register tokens, returning the final-normed patch tokens.

    Args:
        img_size: image side the learned position embedding was trained for (518 for VGGT-1B).
        patch_size: patch side in pixels (14).
        embed_dim, depth, num_heads, mlp_ratio: ViT size (ViT-L: 1024, 24, 16, 4).
        num_register_tokens: register tokens (4).
        init_values: layer-scale init (1.0 as in VGGT's construction).
    """

    def __init__(self, img_size: int = 518, patch_size: int = 14, embed_dim: int = 1024, depth: int = 24,
                 num_heads: int = 16, mlp_ratio: float = 4.0, num_register_tokens: int = 4,
                 init_values: float = 1.0) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        self.grid = img_size // patch_size
        self.patch_embed = ConvPatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) \
            if num_register_tokens else None
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, init_values=init_values, norm_eps=1e-6)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def position_embedding(self, grid_hw: tuple[int, int]) -> torch.Tensor:
        """``(1, 1 + h*w, C)``: the class token's embedding and the patch grid's, resized to ``grid_hw``."""
        if grid_hw == (self.grid, self.grid):
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        channels = patch_pos.shape[-1]
        patch_pos = patch_pos.float().reshape(1, self.grid, self.grid, channels).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=grid_hw, mode='bicubic', antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, channels).to(cls_pos.dtype)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: ``(N, 3, H, W)`` ImageNet-normalised -> patch tokens ``(N, H/p * W/p, C)``."""
        grid_hw = (images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size)
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position_embedding(grid_hw)
        if self.register_tokens is not None:
            x = torch.cat([x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_register_tokens:]
