"""``VGGTTeacher``: a frozen VGGT producing camera, depth, point and feature targets."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

from .base import BaseTeacher, stack_frames
from .preprocess import TeacherView
from .vggt.checkpoint import load_vggt_weights
from .vggt.model import VGGTNet

FEATURE_PARTS = ('frame', 'global', 'both')


def select_feature_part(tokens: torch.Tensor, part: str, patch_start_idx: int, grid_hw: tuple[int, int]
                        ) -> torch.Tensor:
    """Patch tokens of one aggregator layer ``(B, S, P, 2C)`` -> ``(B, S, h, w, C')``.

    ``part``: ``'frame'`` (the frame-attention half, channels ``[:C]``), ``'global'`` (``[C:]``) or ``'both'``.
    """
    if part not in FEATURE_PARTS:
        raise ValueError(f'feature_part must be one of {FEATURE_PARTS}, got {part!r}.')
    patches = tokens[:, :, patch_start_idx:]
    half = patches.shape[-1] // 2
    if part == 'frame':
        patches = patches[..., :half]
    elif part == 'global':
        patches = patches[..., half:]
    return patches.reshape(*patches.shape[:2], *grid_hw, patches.shape[-1])


@TEACHERS.register_module()
class VGGTTeacher(BaseTeacher):
    """Frozen VGGT (geokit's implementation, loads the official ``facebook/VGGT-1B`` weights by name).

    The network defaults are VGGT-1B's; ``configs/teachers/vggt_tiny.py`` is the small variant used by the embedded
    default and the tests.

    Args:
        load_from: local ``model.safetensors`` or a directory containing it; strict name/shape matching (the
            official file's ``track_head.*`` is skipped because geokit does not build it). ``None``: random init.
        checkpoint_prefix: prefix of the VGGT keys inside the file (``''`` for official / exported weights).
        image_size, mode: teacher preprocessing (518, ``'crop'`` or ``'pad'``; see
            :class:`~geokit.models.teachers.preprocess.TeacherView`).
        feature_layers: aggregator layers whose patch tokens go to ``TeacherTargets.features``.
        feature_part: ``'frame'`` (local half), ``'global'`` half or ``'both'`` (2C channels).
        with_points: also predict world points (builds ``point_head``).
        frames_chunk_size: frames decoded at once by the dense heads (bounds memory).
        camera_iterations: camera-head refinement steps (4).
        **net_cfg: network size, see :class:`~geokit.models.teachers.vggt.model.VGGTNet` (``img_size``,
            ``patch_size``, ``embed_dim``, ``depth``, ``num_heads``, ``patch_embed``, ``patch_embed_cfg``,
            ``camera_head``, ``dpt_head``).
    """

    def __init__(self, load_from: str | Path | None = None, checkpoint_prefix: str = '', image_size: int = 518,
                 mode: str = 'crop', feature_layers: Sequence[int] = (4, 11, 17, 23), feature_part: str = 'both',
                 with_points: bool = False, frames_chunk_size: int | None = 8, camera_iterations: int = 4,
                 **net_cfg) -> None:
        super().__init__()
        if feature_part not in FEATURE_PARTS:
            raise ValueError(f'feature_part must be one of {FEATURE_PARTS}, got {feature_part!r}.')
        self.net = VGGTNet(with_points=with_points, **net_cfg)
        depth = self.net.depth
        bad = [layer for layer in feature_layers if not -depth <= layer < depth]
        if bad:
            raise ValueError(f'feature_layers {bad} are out of range for a VGGT aggregator of depth {depth}; '
                             f'choose layers in [0, {depth - 1}].')
        self.view = TeacherView(image_size=image_size, patch_size=self.net.patch_size, mode=mode)
        self.feature_layers = tuple(layer % depth for layer in feature_layers)
        self.feature_part = feature_part
        self.frames_chunk_size = frames_chunk_size
        self.camera_iterations = camera_iterations
        if load_from is not None:
            load_vggt_weights(self.net, load_from, prefix=checkpoint_prefix)
        self.freeze()

    @torch.no_grad()
    def forward(self, frames: torch.Tensor, meta: Sequence[dict] | None = None,
                geometry: Sequence[dict | None] | None = None) -> TeacherTargets:
        """``frames`` uint8 ``(B, T, H, W, 3)`` -> targets at the teacher resolution (``meta``/``geometry`` unused).

        Returns ``pose_enc (B, T, 9)``, ``depth``/``depth_conf (B, T, H', W')``, ``points (B, T, H', W', 3)`` and
        ``points_conf`` (with ``with_points``), ``features {layer: (B, T, H'/14, W'/14, C')}``; no metric scale.
        """
        frames = stack_frames(frames)
        param = next(self.net.parameters())
        images = self.view.images(frames.to(param.device)).to(param.dtype)
        out = self.net(images, feature_layers=self.feature_layers, frames_chunk_size=self.frames_chunk_size,
                       camera_iterations=self.camera_iterations)
        image_hw = tuple(images.shape[-2:])
        grid_hw = (image_hw[0] // self.net.patch_size, image_hw[1] // self.net.patch_size)
        features = {layer: select_feature_part(tokens, self.feature_part, out['patch_start_idx'], grid_hw)
                    for layer, tokens in out['layers'].items()}
        return TeacherTargets(pose_enc=out['pose_enc'].float(), depth=out['depth'].float(),
                              depth_conf=out['depth_conf'].float(), points=out.get('world_points'),
                              points_conf=out.get('world_points_conf'), features=features, image_hw=image_hw)
