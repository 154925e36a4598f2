"""The VGGT network (aggregator + camera head + DPT depth head + optional DPT point head)."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .aggregator import Aggregator
from .heads import CameraHead, DPTHead

#: The official ``facebook/VGGT-1B`` configuration (the network's defaults).
VGGT_1B = dict(img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16, num_register_tokens=4,
               patch_embed='dinov2', patch_embed_cfg=dict(depth=24, num_heads=16),
               camera_head=dict(trunk_depth=4, num_heads=16),
               dpt_head=dict(features=256, out_channels=(256, 512, 1024, 1024),
                             intermediate_layer_idx=(4, 11, 17, 23)),
               with_points=True)


class VGGTNet(nn.Module):
    """VGGT as a plain ``nn.Module`` whose ``state_dict`` keys equal the official checkpoint's.

    The official checkpoint also holds a tracking head (``track_head.*``); geokit does not build it (teachers do
    not track points), and :func:`~geokit.models.teachers.vggt.checkpoint.load_vggt_weights` drops those keys
    explicitly.

    Args:
        img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, num_register_tokens, patch_embed,
            patch_embed_cfg, init_values, token_init_std: see :class:`Aggregator` (the last two only change the
            initialisation, not the parameters).
        camera_head: kwargs of :class:`CameraHead` (``trunk_depth``, ``num_heads``, ...).
        dpt_head: kwargs shared by the depth and point :class:`DPTHead` (``features``, ``out_channels``,
            ``intermediate_layer_idx``).
        with_points: build the world-point head (``point_head``).
    """

    def __init__(self, img_size: int = 518, patch_size: int = 14, embed_dim: int = 1024, depth: int = 24,
                 num_heads: int = 16, mlp_ratio: float = 4.0, num_register_tokens: int = 4,
                 patch_embed: str = 'dinov2', patch_embed_cfg: dict | None = None, camera_head: dict | None = None,
                 dpt_head: dict | None = None, with_points: bool = True, init_values: float = 0.01,
                 token_init_std: float = 1e-6) -> None:
        super().__init__()
        self.aggregator = Aggregator(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                                     num_heads=num_heads, mlp_ratio=mlp_ratio,
                                     num_register_tokens=num_register_tokens, patch_embed=patch_embed,
                                     patch_embed_cfg=patch_embed_cfg, init_values=init_values,
                                     token_init_std=token_init_std)
        self.camera_head = CameraHead(dim_in=2 * embed_dim, **(camera_head or {}))
        dpt = dict(dpt_head or {})
        layer_idx = tuple(dpt.get('intermediate_layer_idx', (4, 11, 17, 23)))
        for index in layer_idx:
            if not -depth <= index < depth:
                raise ValueError(f'dpt_head.intermediate_layer_idx {index} is out of range for an aggregator of '
                                 f'depth {depth}; set dpt_head.intermediate_layer_idx to four layers < {depth}.')
        dpt['intermediate_layer_idx'] = tuple(index % depth for index in layer_idx)
        self.point_head = DPTHead(2 * embed_dim, patch_size, output_dim=4, activation='inv_log', **dpt) \
            if with_points else None
        self.depth_head = DPTHead(2 * embed_dim, patch_size, output_dim=2, activation='exp', **dpt)
        self.patch_size = patch_size
        self.embed_dim = embed_dim

    @property
    def depth(self) -> int:
        return self.aggregator.depth

    def forward(self, images: torch.Tensor, feature_layers: Iterable[int] = (), frames_chunk_size: int | None = 8,
                camera_iterations: int = 4) -> dict:
        """Run VGGT.

        Args:
            images: ``(B, S, 3, H, W)`` in ``[0, 1]``, ``H, W`` multiples of ``patch_size``.
            feature_layers: extra aggregator layers to return (``'layers'`` in the output).
            frames_chunk_size: frames decoded at once by the dense heads.
        Returns:
            dict with ``pose_enc (B, S, 9)``, ``pose_enc_list`` (one per refinement step), ``depth (B, S, H, W)``,
            ``depth_conf (B, S, H, W)``, ``world_points (B, S, H, W, 3)`` and ``world_points_conf`` (with the point
            head), ``layers {layer: (B, S, P, 2C)}`` for ``feature_layers`` and ``patch_start_idx``.
        """
        image_hw = tuple(images.shape[-2:])
        dpt_layers = set(self.depth_head.intermediate_layer_idx)
        wanted = {i % self.depth for i in feature_layers}
        layers = self.aggregator(images, keep_layers=dpt_layers | wanted | {self.depth - 1})
        start = self.aggregator.patch_start_idx
        pose_enc_list = self.camera_head(layers[self.depth - 1], num_iterations=camera_iterations)
        depth, depth_conf = self.depth_head(layers, image_hw, start, frames_chunk_size)
        out = dict(pose_enc=pose_enc_list[-1], pose_enc_list=pose_enc_list, depth=depth[..., 0],
                   depth_conf=depth_conf, layers={i: layers[i] for i in sorted(wanted)}, patch_start_idx=start)
        if self.point_head is not None:
            out['world_points'], out['world_points_conf'] = self.point_head(layers, image_hw, start,
                                                                            frames_chunk_size)
        return out
