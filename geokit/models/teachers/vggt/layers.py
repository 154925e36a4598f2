"""Transformer building blocks of VGGT: attention with QK-norm and 2D RoPE, MLP, layer scale.

Module and parameter names follow the official VGGT release so that its ``model.safetensors`` loads by name:
a block is ``norm1, attn.{qkv, q_norm, k_norm, proj}, ls1.gamma, norm2, mlp.{fc1, fc2}, ls2.gamma``.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


class LayerScale(nn.Module):
    """Per-channel residual scaling ``x * gamma`` (``gamma`` of shape ``(dim,)``)."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two-layer perceptron ``fc2(GELU(fc1(x)))``."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RotaryEmbedding2D(nn.Module):
    """2D rotary position embedding as in VGGT (no parameters).

    The head dimension is split in two halves: the first is rotated by the token's row (y) position, the second by
    its column (x) position. Each half uses the usual rotate-half RoPE with inverse frequencies
    ``frequency ** (-2i / d)`` where ``d`` is the half's size.
    """

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = float(frequency)

    def _cos_sin(self, dim: int, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        exponents = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim
        inv_freq = self.frequency ** (-exponents)
        angles = positions.to(torch.float32)[..., None] * inv_freq  # (B, N, dim/2)
        angles = torch.cat([angles, angles], dim=-1).to(dtype)
        return angles.cos()[:, None], angles.sin()[:, None]  # (B, 1, N, dim)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotate queries or keys.

        Args:
            x: ``(B, heads, N, D)`` with ``D`` divisible by 4.
            positions: ``(B, N, 2)`` integer ``(y, x)`` grid positions of the tokens.
        """
        if x.shape[-1] % 4 != 0:
            raise ValueError(f'2D RoPE needs a head dimension divisible by 4, got {x.shape[-1]}; '
                             f'choose embed_dim / num_heads accordingly.')
        rows, cols = x.chunk(2, dim=-1)
        half = rows.shape[-1]
        out = []
        for part, pos in ((rows, positions[..., 0]), (cols, positions[..., 1])):
            cos, sin = self._cos_sin(half, pos, x.dtype)
            out.append(part * cos + self._rotate_half(part) * sin)
        return torch.cat(out, dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head LayerNorm on q/k and optional 2D RoPE."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 qk_norm: bool = False, rope: RotaryEmbedding2D | None = None) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'embed dim {dim} is not divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, N, C)``; ``pos``: ``(B, N, 2)`` token positions for RoPE (ignored without RoPE)."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, channels))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x))); x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 proj_bias: bool = True, ffn_bias: bool = True, init_values: float | None = None,
                 qk_norm: bool = False, rope: RotaryEmbedding2D | None = None, norm_eps: float = 1e-5) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=norm_eps)
        self.norm1 = norm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
