"""``VGGTGeometryModel``: trains a (tiny) VGGT on ground-truth geometry, so a teacher can be learned from SynthVSI.

Supervision is VGGT's: the oracle's first-frame-relative, scale-normalised targets; a camera loss on every
camera-head refinement step (weighted ``gamma ** (n - 1 - i)``, averaged) and the confidence-aware depth loss.
The trained network is exported with :func:`geokit.models.teachers.vggt.save_vggt_weights` and loaded by
``VGGTTeacher(load_from=...)`` (see ``projects/tiny_teacher/tools/train_teacher.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModel

from geokit.models.teachers import OracleTeacher, stack_frames
from geokit.models.teachers.vggt.model import VGGTNet
from geokit.registry import LOSSES, MODELS

#: frame-subset strategies of :class:`VGGTGeometryModel` (``train_window``)
TRAIN_WINDOWS = ('random', 'contiguous')


@MODELS.register_module()
class VGGTGeometryModel(BaseModel):
    """A trainable VGGT supervised by a dataset's ground-truth geometry (e.g. SynthVSI).

    ``forward(frames, meta, geometry, mode)`` takes the batches of ``geokit.geometry_collate`` (one list entry per
    sample), so it plugs into ``tools/train.py`` with the datasets as they are.

    Args:
        net: :class:`~geokit.models.teachers.vggt.model.VGGTNet` kwargs (the size of the teacher to train).
        image_size, mode: the teacher view; must match the ``VGGTTeacher`` that will load the weights.
        camera_loss, depth_loss: ``LOSSES`` configs (``CameraPoseLoss``, ``ConfidenceDepthLoss``).
        camera_gamma: weight decay of earlier camera refinement steps (VGGT: 0.6).
        train_frames: ``(min, max)`` frames per video drawn at random at every training step, as VGGT trains on
            random frame subsets; ``None`` uses all frames.
        train_window: how those frames are drawn: ``'random'`` (an ordered random subset) or ``'contiguous'`` (a run
            of consecutive frames at a random start, forwards or backwards at random: small motions between the
            frames, and a video's turning direction cannot be told from its appearance).
    """

    def __init__(self, net: dict, image_size: int = 518, mode: str = 'crop',
                 camera_loss: dict | None = None, depth_loss: dict | None = None, camera_gamma: float = 0.6,
                 train_frames: Sequence[int] | None = None, train_window: str = 'random',
                 data_preprocessor: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.vggt = VGGTNet(**net)
        self.oracle = OracleTeacher(image_size=image_size, patch_size=self.vggt.patch_size, mode=mode)
        self.camera_loss = LOSSES.build(camera_loss or dict(type='CameraPoseLoss'))
        self.depth_loss = LOSSES.build(depth_loss or dict(type='ConfidenceDepthLoss'))
        self.camera_gamma = camera_gamma
        self.train_frames = tuple(train_frames) if train_frames is not None else None
        if train_window not in TRAIN_WINDOWS:
            raise ValueError(f'train_window must be one of {TRAIN_WINDOWS}, got {train_window!r}.')
        self.train_window = train_window

    def _subset(self, frames: torch.Tensor, geometry: list[dict]) -> tuple[torch.Tensor, list[dict]]:
        low, high = self.train_frames
        total = frames.shape[1]
        count = int(torch.randint(min(low, total), min(high, total) + 1, ()).item())
        if self.train_window == 'contiguous':
            start = int(torch.randint(0, total - count + 1, ()).item())
            keep = torch.arange(start, start + count)
            if torch.rand(()) < 0.5:
                keep = keep.flip(0)
        else:
            keep = torch.randperm(total)[:count].sort().values
        return frames[:, keep], [{k: torch.as_tensor(v)[keep] for k, v in g.items()} for g in geometry]

    def forward(self, frames: torch.Tensor | list[torch.Tensor], meta: list[dict] | None = None,
                geometry: list[dict | None] | None = None, mode: str = 'loss', **unused) -> dict | list:
        """``mode='loss'``: ``{'loss_camera', 'loss_depth', ...}``; ``'predict'``/``'tensor'``: VGGT's outputs."""
        for name, value in (('meta', meta), ('geometry', geometry)):
            if value is not None and not isinstance(value, (list, tuple)):
                raise TypeError(f'VGGTGeometryModel takes `{name}` as one entry per sample, got a '
                                f'{type(value).__name__}. Fix: collate_fn=dict(type=\'geokit.geometry_collate\') '
                                f'in the dataloader config (mmengine\'s pseudo_collate merges the samples\' dicts).')
        frames = stack_frames(frames)
        param = next(self.vggt.parameters())
        if mode != 'loss':
            images = self.oracle.view.images(frames.to(param.device)).to(param.dtype)
            return self.vggt(images)
        if geometry is None or any(g is None for g in geometry):
            raise ValueError('VGGTGeometryModel trains on ground truth: the dataset must return `geometry` (set '
                             'load_geometry=True on a SynthVSI dataset).')
        if self.train_frames is not None:
            frames, geometry = self._subset(frames, list(geometry))
        targets = self.oracle(frames, meta, geometry).to(param.device)
        images = self.oracle.view.images(frames.to(param.device)).to(param.dtype)
        out = self.vggt(images)
        steps = out['pose_enc_list']
        camera = {}
        for index, pose_enc in enumerate(steps):
            weight = self.camera_gamma ** (len(steps) - 1 - index) / len(steps)
            for key, value in self.camera_loss(pose_enc, targets.pose_enc).items():
                camera[key] = camera.get(key, 0) + weight * value
        depth = self.depth_loss(out['depth'], out['depth_conf'], targets.depth, mask=targets.depth > 0)
        losses = dict(loss_camera=camera.pop('loss'), loss_depth=depth.pop('loss'))
        losses.update({f'camera_{k}': v for k, v in camera.items()})
        losses.update(depth)
        return losses
