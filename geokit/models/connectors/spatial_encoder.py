"""Spatial-MLLM's dual encoder: a frozen VGGT aggregator as the spatial encoder, fused into the ViT tokens.

:class:`VGGTSpatialEncoder` (a ``TEACHERS`` entry that only produces features) runs the aggregator of a VGGT on
the sampled frames and returns the patch tokens of one layer. :class:`SpatialEncoderFusion` (a ``CONNECTORS``
entry) is what ``GeometricMLLM(fusion=...)`` calls: spatial encoder -> connector -> fused vision tokens.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from geokit.registry import CONNECTORS, TEACHERS
from geokit.structures import TeacherTargets

from ..frozen import FrozenModules, HoldsFrozenModules
from ..teachers.base import BaseTeacher, stack_frames
from ..teachers.preprocess import TeacherView
from ..teachers.vggt.checkpoint import load_vggt_weights
from ..teachers.vggt.model import VGGTNet
from ..teachers.vggt_teacher import select_feature_part

__all__ = ['VGGTSpatialEncoder', 'SpatialEncoderFusion']


@TEACHERS.register_module()
class VGGTSpatialEncoder(BaseTeacher):
    """The aggregator of a frozen VGGT; returns the patch tokens of one layer as ``TeacherTargets.features``.

    Frames are resized (bicubic, anti-aliased, no crop, no padding) so that the longer side is ``image_size`` and
    both sides are multiples of the patch size, or to an explicit ``image_hw``; the whole frame is covered, as the
    Qwen-VL ViT covers it, so the two token grids describe the same image. Only the aggregator is kept (the heads
    are dropped after loading the checkpoint).

    Args:
        load_from: local VGGT ``model.safetensors`` (or its directory); ``None``: random init (seeded by
            ``init_seed``), for the embedded tiny default and tests.
        checkpoint_prefix: key prefix inside the file (see :func:`load_vggt_weights`).
        layer: aggregator layer whose output is returned (negative counts from the end; Spatial-MLLM: the last).
        feature_part: ``'both'`` (frame + global halves, ``2 * embed_dim`` channels, Spatial-MLLM), ``'frame'`` or
            ``'global'``.
        image_size: longer image side given to VGGT (518 for VGGT-1B).
        init_seed: seed of the random init when ``load_from`` is None.
        net, **net_cfg: network size (:class:`~geokit.models.teachers.vggt.model.VGGTNet` arguments, as one dict
            and/or keywords), VGGT-1B by default.
    """

    def __init__(self, load_from: str | Path | None = None, checkpoint_prefix: str = '', layer: int = -1,
                 feature_part: str = 'both', image_size: int = 518, init_seed: int | None = 0,
                 net: dict | None = None, **net_cfg) -> None:
        super().__init__()
        net_cfg = {**(net or {}), **net_cfg}
        net_cfg.pop('with_points', None)
        with torch.random.fork_rng(devices=[]):
            if init_seed is not None:
                torch.manual_seed(init_seed)
            net = VGGTNet(with_points=False, **net_cfg)
        if load_from is not None:
            load_vggt_weights(net, load_from, prefix=checkpoint_prefix)
        self.aggregator = net.aggregator
        depth = self.aggregator.depth
        if not -depth <= layer < depth:
            raise ValueError(f'layer={layer} is out of range for a VGGT aggregator of depth {depth}; set the spatial '
                             f'encoder\'s `layer` in [-{depth}, {depth - 1}].')
        self.layer = layer % depth
        self.feature_part = feature_part
        self.patch_size = net.patch_size
        self.out_channels = net.embed_dim * (2 if feature_part == 'both' else 1)
        self.view = TeacherView(image_size=image_size, patch_size=self.patch_size, mode='pad')
        self.freeze()

    @torch.no_grad()
    def forward(self, frames: torch.Tensor | Sequence[torch.Tensor], meta: Sequence[dict] | None = None,
                geometry: Sequence[dict | None] | None = None,
                image_hw: tuple[int, int] | None = None) -> TeacherTargets:
        """``frames`` uint8 ``(B, T, H, W, 3)`` -> ``features={layer: (B, T, h, w, out_channels)}``.

        ``image_hw`` (multiples of the patch size) overrides the automatic size, e.g. to match the ViT's grid.
        """
        frames = stack_frames(frames)
        batch, time, height, width = frames.shape[:4]
        size = tuple(image_hw) if image_hw is not None else self.view.resized_hw(height, width)
        if size[0] % self.patch_size or size[1] % self.patch_size:
            raise ValueError(f'VGGTSpatialEncoder image size {size} must be a multiple of the patch size '
                             f'{self.patch_size}.')
        param = next(self.aggregator.parameters())
        x = frames.to(param.device).reshape(batch * time, height, width, 3).permute(0, 3, 1, 2).float() / 255.0
        if size != (height, width):
            x = F.interpolate(x, size=size, mode='bicubic', align_corners=False, antialias=True).clamp_(0, 1)
        images = x.reshape(batch, time, 3, *size).to(param.dtype)
        tokens = self.aggregator(images, keep_layers=[self.layer])[self.layer]
        grid_hw = (size[0] // self.patch_size, size[1] // self.patch_size)
        features = select_feature_part(tokens, self.feature_part, self.aggregator.patch_start_idx, grid_hw)
        return TeacherTargets(features={self.layer: features}, image_hw=size)


@CONNECTORS.register_module()
class SpatialEncoderFusion(HoldsFrozenModules):
    """The fusion module of ``GeometricMLLM(fusion=...)``: frozen spatial encoder + a connector.

    Call (the ``GeometricMLLM`` fusion contract)::

        fused = fusion(vision_embeds=(N_tokens, D), frames=uint8 (B, T, H, W, 3) or list of (T, H, W, 3),
                       video_grid_thw=(B, 3), meta=list[dict])  # -> (N_tokens, D)

    The encoder sees the same frames as the ViT; its ``features[layer]`` ``(B, T, h, w, C)`` go to the connector,
    which aligns them with the merged ViT tokens (see :mod:`geokit.models.connectors.token_layout`).

    The encoder is frozen and kept outside the module tree (:class:`~geokit.models.frozen.FrozenModules`: rebuilt
    from its own ``load_from``, so checkpoints hold only the trainable connector; ``.to()``/``.cuda()`` move it).

    Args:
        spatial_encoder: a ``TEACHERS`` config producing ``features`` (``VGGTSpatialEncoder``; a ``VGGTTeacher``
            or ``CachedTeacher`` with that layer also works).
        connector: a ``CONNECTORS`` config (``MLPAddConnector``, ``MLPConcatConnector``,
            ``CrossAttentionConnector``). Its sizes default to what is known here: ``spatial_dim`` to the encoder's
            ``out_channels`` (when it has one), ``llm_dim`` / ``spatial_merge_size`` / ``temporal_patch_size`` to
            the arguments below; a value the config gives wins.
        layer: which ``features`` entry to use; None: the only one the encoder returns.
        match_vit_grid: run the encoder at ``(grid_h, grid_w) * encoder.patch_size`` pixels so its token grid
            equals the ViT's (Spatial-MLLM feeds both encoders the same resolution); otherwise the encoder's own
            size is used and the connector resizes the feature map bilinearly.
        llm_dim, spatial_merge_size, temporal_patch_size: the backbone's sizes (LLM hidden size, the ViT merger's
            spatial factor, the input frames per temporal token); ``GeometricMLLM`` passes them from its backbone
            (:meth:`~geokit.models.GeometricMLLM.backbone_sizes`). ``None``: not
            known here, so the connector config must give them (or use the connector's own defaults).
    """

    def __init__(self, spatial_encoder: dict, connector: dict, layer: int | None = None,
                 match_vit_grid: bool = False, llm_dim: int | None = None, spatial_merge_size: int | None = None,
                 temporal_patch_size: int | None = None) -> None:
        super().__init__()
        encoder = TEACHERS.build(spatial_encoder)
        sizes = dict(spatial_dim=getattr(encoder, 'out_channels', None), llm_dim=llm_dim,
                     spatial_merge_size=spatial_merge_size, temporal_patch_size=temporal_patch_size)
        self.frozen = FrozenModules(spatial_encoder=encoder)
        self.connector = CONNECTORS.build(connector, default_args={k: v for k, v in sizes.items() if v is not None})
        self.layer = layer
        self.match_vit_grid = match_vit_grid

    @property
    def spatial_encoder(self) -> nn.Module:
        return self.frozen['spatial_encoder']

    def encode(self, frames: torch.Tensor | Sequence[torch.Tensor], video_grid_thw: torch.Tensor,
               meta: Sequence[dict] | None = None) -> torch.Tensor:
        """``(B, T, h, w, C)`` spatial features of the frames (no gradient)."""
        kwargs = {}
        if self.match_vit_grid:
            grids = {tuple(row) for row in video_grid_thw[:, 1:].tolist()}
            patch = getattr(self.spatial_encoder, 'patch_size', None)
            if len(grids) != 1 or patch is None:
                raise ValueError(f'match_vit_grid needs one ViT grid per batch (got {sorted(grids)}) and an encoder '
                                 f'with a patch_size (got {type(self.spatial_encoder).__name__}); set '
                                 f'match_vit_grid=False.')
            grid_h, grid_w = grids.pop()
            kwargs['image_hw'] = (grid_h * patch, grid_w * patch)
        geometry = [None] * (len(meta) if meta is not None else len(frames))
        targets = self.spatial_encoder(frames, meta, geometry, **kwargs)
        targets.require('features', consumer=type(self).__name__)
        layer = self.layer if self.layer is not None else next(iter(targets.features))
        if layer not in targets.features:
            raise KeyError(f'the spatial encoder returned feature layers {sorted(targets.features)}, not {layer}; '
                           f'set model.fusion.layer to one of them.')
        return targets.features[layer]

    def forward(self, vision_embeds: torch.Tensor, frames: torch.Tensor | Sequence[torch.Tensor],
                video_grid_thw: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        """``(N_tokens, D)`` fused vision tokens (see the class docstring)."""
        param = next(self.spatial_encoder.parameters(), None)
        if param is not None and param.device != vision_embeds.device:  # wrappers (FSDP) move registered modules only
            self.spatial_encoder.to(vision_embeds.device)
        features = self.encode(frames, video_grid_thw, meta)
        return self.connector(vision_embeds, features.to(vision_embeds.device), video_grid_thw)
