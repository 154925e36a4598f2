"""VGGT's prediction heads: the iterative camera head and the DPT dense head (depth or world points).

Names follow the official checkpoint (``trunk``, ``token_norm``, ``trunk_norm``, ``empty_pose_tokens``,
``embed_pose``, ``poseLN_modulation``, ``pose_branch``; DPT ``norm``, ``projects``, ``resize_layers``,
``scratch.{layer*_rn, refinenet*, output_conv1, output_conv2}``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, Mlp


def activate_pose(pose_enc: torch.Tensor) -> torch.Tensor:
    """VGGT's pose activation: identity on translation and quaternion, ReLU on the two fields of view."""
    return torch.cat([pose_enc[..., :7], F.relu(pose_enc[..., 7:])], dim=-1)


class CameraHead(nn.Module):
    """Iterative camera head: AdaLN-modulated camera tokens through a small trunk, refined ``num_iterations`` times.

    Args:
        dim_in: width of the aggregator output (``2 * embed_dim``).
        trunk_depth, num_heads, mlp_ratio, init_values: trunk size (VGGT-1B: 4, 16, 4, 0.01).
    """

    def __init__(self, dim_in: int = 2048, trunk_depth: int = 4, num_heads: int = 16, mlp_ratio: float = 4.0,
                 init_values: float = 0.01, target_dim: int = 9) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*[Block(dim_in, num_heads, mlp_ratio=mlp_ratio, init_values=init_values)
                                     for _ in range(trunk_depth)])
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, target_dim))
        self.embed_pose = nn.Linear(target_dim, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, target_dim)

    def forward(self, tokens: torch.Tensor, num_iterations: int = 4) -> list[torch.Tensor]:
        """``tokens``: last aggregator output ``(B, S, P, dim_in)`` -> list of ``(B, S, 9)`` pose encodings."""
        camera = self.token_norm(tokens[:, :, 0])
        pose_enc = None
        predictions = []
        for _ in range(num_iterations):
            if pose_enc is None:
                condition = self.embed_pose(self.empty_pose_tokens.expand(*camera.shape[:2], -1))
            else:
                pose_enc = pose_enc.detach()  # as VGGT: each refinement learns its own delta, no gradient through
                condition = self.embed_pose(pose_enc)  # the earlier iterations' accumulated pose
            shift, scale, gate = self.poseLN_modulation(condition).chunk(3, dim=-1)
            modulated = gate * (self.adaln_norm(camera) * (1 + scale) + shift) + camera
            delta = self.pose_branch(self.trunk_norm(self.trunk(modulated)))
            pose_enc = delta if pose_enc is None else pose_enc + delta
            predictions.append(activate_pose(pose_enc))
        return predictions


def uv_grid(height: int, width: int, aspect_ratio: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(H, W, 2)`` normalised ``(u, v)`` cell centres spanning the image diagonal-normalised extent."""
    diag = math.sqrt(aspect_ratio ** 2 + 1.0)
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype,
                        device=device)
    ys = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype,
                        device=device)
    v, u = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([u, v], dim=-1)


def sincos_embed_2d(grid: torch.Tensor, channels: int, omega_0: float = 100.0) -> torch.Tensor:
    """Sinusoidal embedding ``(H, W, channels)`` of a ``(H, W, 2)`` grid: ``[sin, cos](u) ++ [sin, cos](v)``."""
    quarter = channels // 4
    omega = 1.0 / omega_0 ** (torch.arange(quarter, dtype=torch.float64, device=grid.device) / quarter)
    parts = []
    for axis in range(2):
        angles = grid[..., axis].to(torch.float64)[..., None] * omega
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=-1).float()


class ResidualConvUnit(nn.Module):
    """``relu(x) + conv2(relu(conv1(relu(x))))`` with 3x3 convolutions.

    The skip adds ``relu(x)``, not ``x``: the reference implementation applies an in-place ReLU to its input before
    the residual add, and the released weights were trained with that behaviour.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FeatureFusionBlock(nn.Module):
    """DPT fusion: add the (refined) skip, refine, upsample (to ``size`` or 2x), 1x1 conv."""

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.has_residual = has_residual
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if self.has_residual and skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """Dense prediction head over four aggregator layers.

    Args:
        dim_in: aggregator output width (``2 * embed_dim``).
        patch_size: 14.
        output_dim: channels before activation; the last is confidence (depth: 2, points: 4).
        activation: ``'exp'`` (depth) or ``'inv_log'`` (points, ``sign(y) * expm1(|y|)``).
        features, out_channels: widths (VGGT-1B: 256, ``[256, 512, 1024, 1024]``).
        intermediate_layer_idx: the four aggregator layers it reads (VGGT-1B: ``[4, 11, 17, 23]``).
    """

    def __init__(self, dim_in: int = 2048, patch_size: int = 14, output_dim: int = 2, activation: str = 'exp',
                 features: int = 256, out_channels: tuple[int, ...] = (256, 512, 1024, 1024),
                 intermediate_layer_idx: tuple[int, ...] = (4, 11, 17, 23), pos_embed: bool = True) -> None:
        super().__init__()
        if activation not in ('exp', 'inv_log'):
            raise ValueError(f"DPTHead activation must be 'exp' or 'inv_log', got {activation!r}.")
        if len(out_channels) != 4 or len(intermediate_layer_idx) != 4:
            raise ValueError('DPTHead needs exactly four out_channels and four intermediate_layer_idx, got '
                             f'{list(out_channels)} and {list(intermediate_layer_idx)}.')
        self.patch_size = patch_size
        self.activation = activation
        self.use_pos_embed = pos_embed
        self.intermediate_layer_idx = tuple(intermediate_layer_idx)
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, oc, 1) for oc in out_channels])
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1)])
        self.scratch = nn.Module()
        for index, channels in enumerate(out_channels, start=1):
            setattr(self.scratch, f'layer{index}_rn', nn.Conv2d(channels, features, 3, padding=1, bias=False))
        for index in range(1, 5):
            setattr(self.scratch, f'refinenet{index}', FeatureFusionBlock(features, has_residual=index != 4))
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(32, output_dim, 1))

    def _pos_embed(self, x: torch.Tensor, image_hw: tuple[int, int], ratio: float = 0.1) -> torch.Tensor:
        grid = uv_grid(x.shape[-2], x.shape[-1], image_hw[1] / image_hw[0], x.dtype, x.device)
        return x + ratio * sincos_embed_2d(grid, x.shape[1]).to(x.dtype).permute(2, 0, 1)[None]

    def _forward_frames(self, layers: dict[int, torch.Tensor], image_hw: tuple[int, int],
                        patch_start_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        grid_h, grid_w = image_hw[0] // self.patch_size, image_hw[1] // self.patch_size
        maps = []
        for slot, layer in enumerate(self.intermediate_layer_idx):
            tokens = layers[layer][:, :, patch_start_idx:]
            batch, frames = tokens.shape[:2]
            x = self.norm(tokens.reshape(batch * frames, -1, tokens.shape[-1]))
            x = x.transpose(1, 2).reshape(batch * frames, -1, grid_h, grid_w)
            x = self.projects[slot](x)
            if self.use_pos_embed:
                x = self._pos_embed(x, image_hw)
            maps.append(self.resize_layers[slot](x))
        rn = [getattr(self.scratch, f'layer{i}_rn')(m) for i, m in enumerate(maps, start=1)]
        out = self.scratch.refinenet4(rn[3], size=rn[2].shape[2:])
        out = self.scratch.refinenet3(out, rn[2], size=rn[1].shape[2:])
        out = self.scratch.refinenet2(out, rn[1], size=rn[0].shape[2:])
        out = self.scratch.output_conv1(self.scratch.refinenet1(out, rn[0]))
        out = F.interpolate(out, size=(grid_h * self.patch_size, grid_w * self.patch_size), mode='bilinear',
                            align_corners=True)
        if self.use_pos_embed:
            out = self._pos_embed(out, image_hw)
        out = self.scratch.output_conv2(out).permute(0, 2, 3, 1)
        values, conf = out[..., :-1], 1 + out[..., -1].exp()
        if self.activation == 'exp':
            values = values.exp()
        else:
            values = torch.sign(values) * torch.expm1(values.abs())
        return values.reshape(batch, frames, *values.shape[1:]), conf.reshape(batch, frames, *conf.shape[1:])

    def forward(self, layers: dict[int, torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int,
                frames_chunk_size: int | None = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict a dense map.

        Args:
            layers: aggregator outputs ``{layer: (B, S, P, dim_in)}`` containing ``intermediate_layer_idx``.
            image_hw: ``(H, W)`` of the input images.
            frames_chunk_size: frames decoded at once (bounds memory); ``None`` for all.
        Returns:
            ``values (B, S, H, W, output_dim - 1)`` and ``conf (B, S, H, W)`` (``1 + exp``, so > 1).
        """
        frames = next(iter(layers.values())).shape[1]
        chunk = frames if not frames_chunk_size or frames_chunk_size >= frames else frames_chunk_size
        values, confs = [], []
        for start in range(0, frames, chunk):
            part = {k: layers[k][:, start:start + chunk] for k in self.intermediate_layer_idx}
            value, conf = self._forward_frames(part, image_hw, patch_start_idx)
            values.append(value)
            confs.append(conf)
        return torch.cat(values, dim=1), torch.cat(confs, dim=1)
