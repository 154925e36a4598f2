"""VGGT's aggregator: alternating frame-wise and global attention over patch, camera and register tokens."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD
from .dinov2 import ConvPatchEmbed, DinoV2PatchEmbed
from .layers import Block, RotaryEmbedding2D


def first_and_rest_tokens(token: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """Expand a ``(1, 2, X, C)`` special token to ``(batch * frames, X, C)``.

    Index 0 is used for the first (reference) frame of every video and index 1 for all later frames.
    """
    first = token[:, :1].expand(batch, 1, *token.shape[2:])
    rest = token[:, 1:].expand(batch, frames - 1, *token.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(batch * frames, *token.shape[2:])


def patch_positions(batch: int, grid_hw: tuple[int, int], num_special: int, device: torch.device) -> torch.Tensor:
    """RoPE positions ``(batch, num_special + h*w, 2)``: special tokens at (0, 0), patches at ``(y + 1, x + 1)``."""
    rows, cols = torch.meshgrid(torch.arange(grid_hw[0], device=device), torch.arange(grid_hw[1], device=device),
                                indexing='ij')
    grid = torch.stack([rows.flatten(), cols.flatten()], dim=-1) + 1
    pos = torch.cat([torch.zeros(num_special, 2, dtype=grid.dtype, device=device), grid], dim=0)
    return pos[None].expand(batch, -1, -1)


class Aggregator(nn.Module):
    """Alternating-attention transformer of VGGT.

    Each of the ``depth`` steps runs one frame block (attention within each frame, tokens ``(B*S, P, C)``) then one
    global block (attention across all frames of a video, tokens ``(B, S*P, C)``). The output of step ``i`` is the
    concatenation ``[frame_i, global_i]`` of shape ``(B, S, P, 2C)``; the first ``patch_start_idx`` tokens of every
    frame are the camera token and the register tokens.

    Args:
        img_size: image side the patch embedding's position embedding was trained for (518).
        patch_size: 14.
        embed_dim, depth, num_heads, mlp_ratio: aggregator size (VGGT-1B: 1024, 24, 16, 4).
        num_register_tokens: 4.
        patch_embed: ``'dinov2'`` (a DINOv2 ViT, as VGGT-1B) or ``'conv'`` (a single patchify convolution).
        patch_embed_cfg: size of the DINOv2 ViT: ``depth``, ``num_heads`` (ViT-L: 24, 16); its width is
            ``embed_dim``.
        qk_norm, rope_freq, init_values: block options (True, 100, 0.01). ``init_values`` is the layer-scale
            initialisation; VGGT's 0.01 suits fine-tuning from pretrained DINOv2 (docs/teachers.md compares 1.0 for
            training from scratch).
        token_init_std: standard deviation of the initial camera and register tokens (VGGT: 1e-6). The reference
            frame differs from the others only through these tokens, so a tiny value starts training with the frames
            nearly interchangeable.
    """

    def __init__(self, img_size: int = 518, patch_size: int = 14, embed_dim: int = 1024, depth: int = 24,
                 num_heads: int = 16, mlp_ratio: float = 4.0, num_register_tokens: int = 4,
                 patch_embed: str = 'dinov2', patch_embed_cfg: dict | None = None, qk_norm: bool = True,
                 rope_freq: float = 100.0, init_values: float = 0.01, token_init_std: float = 1e-6) -> None:
        super().__init__()
        if patch_embed == 'dinov2':
            cfg = dict(depth=24, num_heads=16, mlp_ratio=4.0)
            cfg.update(patch_embed_cfg or {})
            self.patch_embed = DinoV2PatchEmbed(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim,
                                                num_register_tokens=num_register_tokens, **cfg)
        elif patch_embed == 'conv':
            self.patch_embed = ConvPatchEmbed(patch_size, embed_dim)
        else:
            raise ValueError(f"patch_embed must be 'dinov2' or 'conv', got {patch_embed!r}.")
        self.rope = RotaryEmbedding2D(rope_freq) if rope_freq > 0 else None

        def make_blocks() -> nn.ModuleList:
            return nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, init_values=init_values,
                                        qk_norm=qk_norm, rope=self.rope) for _ in range(depth)])

        self.frame_blocks = make_blocks()
        self.global_blocks = make_blocks()
        self.depth = depth
        self.patch_size = patch_size
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, embed_dim) * token_init_std)
        self.register_token = nn.Parameter(torch.randn(1, 2, num_register_tokens, embed_dim) * token_init_std)
        self.patch_start_idx = 1 + num_register_tokens
        self.register_buffer('_mean', torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer('_std', torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, keep_layers: Iterable[int] | None = None) -> dict[int, torch.Tensor]:
        """Run the aggregator.

        Args:
            images: ``(B, S, 3, H, W)`` RGB in ``[0, 1]``; ``H`` and ``W`` multiples of ``patch_size``.
            keep_layers: which step outputs to return (default: all). Negative indices count from the end.
        Returns:
            ``{layer: (B, S, P, 2C)}`` with ``P = patch_start_idx + (H/p) * (W/p)``.
        """
        batch, frames, channels, height, width = images.shape
        if channels != 3:
            raise ValueError(f'VGGT expects (B, S, 3, H, W) RGB images, got shape {tuple(images.shape)}.')
        keep = set(range(self.depth)) if keep_layers is None else {k % self.depth for k in keep_layers}
        images = ((images - self._mean) / self._std).reshape(batch * frames, 3, height, width)
        patches = self.patch_embed(images)
        tokens = torch.cat([first_and_rest_tokens(self.camera_token, batch, frames),
                            first_and_rest_tokens(self.register_token, batch, frames), patches], dim=1)
        num_tokens, dim = tokens.shape[1:]
        grid_hw = (height // self.patch_size, width // self.patch_size)
        pos = patch_positions(batch * frames, grid_hw, self.patch_start_idx, images.device) \
            if self.rope is not None else None
        outputs = {}
        for index in range(self.depth):
            tokens = self.frame_blocks[index](tokens.reshape(batch * frames, num_tokens, dim), pos=pos)
            frame_out = tokens.reshape(batch, frames, num_tokens, dim)
            global_pos = pos.reshape(batch, frames * num_tokens, 2) if pos is not None else None
            tokens = self.global_blocks[index](tokens.reshape(batch, frames * num_tokens, dim), pos=global_pos)
            if index in keep:
                outputs[index] = torch.cat([frame_out, tokens.reshape(batch, frames, num_tokens, dim)], dim=-1)
        return outputs
