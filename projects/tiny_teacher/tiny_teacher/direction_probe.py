"""Can a VGGT learn which way a view moved? A controlled learnability probe for teachers trained from scratch.

Relative pose needs cross-frame correspondence. This probe isolates its simplest case: frame 1 is frame 0's view
moved horizontally by ``+shift`` or ``-shift`` pixels (two crops of one image, :func:`shifted_pairs`), and the
network must predict the direction. The readout is either a linear layer on the last camera token of frame 1
(``'camera-token'``: can the aggregator represent the direction?) or the camera head's ``qy`` pose field
(``'camera-head'``: does the real pose path learn it?). Both are trained with the same L1 objective towards
``+-target``.

See projects/tiny_teacher/README.md ("Why the tiny teacher does not learn pose") for what it showed on SynthVSI.
"""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from geokit.datasets import distinct_videos
from geokit.models.teachers.preprocess import TeacherView
from geokit.models.teachers.vggt.model import VGGTNet

#: readouts of :func:`direction_probe`
READOUTS = ('camera-token', 'camera-head')
#: index of ``qy`` (rotation about the camera's vertical axis, which a horizontal shift mimics) in the pose encoding
QY_INDEX = 4


def shifted_pairs(images: torch.Tensor, direction: torch.Tensor, shift: int, multiple: int = 1) -> torch.Tensor:
    """``(B, 2, 3, H, W')`` pairs of crops ``[centre crop, the crop moved by direction * shift px]``.

    A camera panning over a wider view: frame 1 shows the content of frame 0 moved left (``direction = +1``, the
    window moved right) or right (``-1``), with new content entering at one edge and no wrap-around. (An earlier
    version rolled the image circularly; the wrap seam then gave the direction away in frame 1 alone, so the probe
    could be solved without any cross-frame correspondence.)

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``.
        direction: ``(B,)`` of ``+1`` / ``-1``.
        shift: pixels, ``0 < shift``; the crops are ``W' = W - 2 * shift`` wide, rounded down to ``multiple``.
        multiple: crop width granularity (the patch size, so that the crops tile into patches).
    """
    if images.dim() != 4:
        raise ValueError(f'shifted_pairs expects (B, 3, H, W) images, got {tuple(images.shape)}.')
    width = images.shape[-1]
    crop = (width - 2 * shift) // multiple * multiple
    if shift < 1 or crop < multiple:
        raise ValueError(f'shift must be in [1, {(width - multiple) // 2}] pixels for {width} px wide images and '
                         f'crops of a multiple of {multiple} px, got {shift}.')
    left = (width - crop) // 2
    moved = torch.stack([image[..., left + int(d) * shift:left + int(d) * shift + crop]
                         for image, d in zip(images, direction)])
    return torch.stack([images[..., left:left + crop], moved], dim=1)


def direction_probe(net: VGGTNet, images: torch.Tensor, shift: int, steps: int, batch_size: int = 16,
                    readout: str = 'camera-token', lr: float = 3e-4, target: float = 0.2, seed: int = 0,
                    progress: bool = True) -> list[float]:
    """Train ``net`` (in place) to predict the shift direction; returns the per-step batch accuracy.

    Args:
        net: the VGGT to probe (e.g. built from a teacher training config).
        images: ``(N, 3, H, W)`` frames in ``[0, 1]`` to draw pairs from (e.g. SynthVSI frames).
        shift: horizontal shift in pixels (the patch size is 14 at VGGT's scale).
        steps, batch_size, lr: AdamW training of the network and the readout.
        readout: one of :data:`READOUTS`.
        target: the L1 target magnitude (``qy`` of a ~23 deg yaw for 0.2). The camera-head readout uses the sign
            of the equivalent camera turn: a view moved right is a camera turned right, ``qy < 0`` in VGGT's
            camera-from-world pose encoding, so that what it learns carries over to real poses.
        seed: draws of images and directions.
    Returns:
        ``steps`` accuracies in ``[0, 1]`` (fraction of the batch whose predicted sign matches the direction).
    """
    if readout not in READOUTS:
        raise ValueError(f'readout must be one of {READOUTS}, got {readout!r}.')
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'direction_probe expects (N, 3, H, W) images, got {tuple(images.shape)}.')
    generator = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    images = images.to(device)
    width = 2 * net.embed_dim
    head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 1)).to(device) if readout == 'camera-token' else None
    sign = 1.0 if readout == 'camera-token' else -1.0
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=lr)
    last = net.depth - 1
    accuracies = []
    net.train()
    for _ in tqdm(range(steps), desc=f'direction probe ({readout}, {shift} px)', disable=not progress):
        index = torch.randint(0, images.shape[0], (batch_size,), generator=generator).to(device)
        direction = (torch.randint(0, 2, (batch_size,), generator=generator) * 2 - 1).to(device)
        pairs = shifted_pairs(images[index], direction, shift, multiple=net.patch_size)
        goal = sign * target * direction.to(pairs.dtype)
        if head is not None:
            token = net.aggregator(pairs, keep_layers=[last])[last][:, 1, 0]
            prediction = head(token)[:, 0]
            loss = (prediction - goal).abs().mean()
        else:
            steps_out = net(pairs)['pose_enc_list']
            prediction = steps_out[-1][:, 1, QY_INDEX]
            loss = sum((pose[:, 1, QY_INDEX] - goal).abs().mean() for pose in steps_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracies.append(float((torch.sign(prediction.detach()) == sign * direction).float().mean()))
    return accuracies


def collect_frames(dataset, view: TeacherView, videos: int) -> torch.Tensor:
    """``(N, 3, H, W)`` teacher-view frames in ``[0, 1]`` of the first ``videos`` distinct videos of ``dataset``
    (:func:`geokit.datasets.distinct_videos`; items are geokit samples, ``frames`` uint8 ``(T, H, W, 3)``)."""
    indices = distinct_videos(dataset, videos)
    if not indices:
        raise ValueError('collect_frames: the dataset holds no video.')
    return torch.cat([view.images(dataset[index]['frames'][None])[0] for index in indices])


def windowed_accuracy(accuracies: list[float], window: int = 50) -> list[float]:
    """Mean accuracy over consecutive windows of ``window`` steps (the last one may be shorter)."""
    if window < 1:
        raise ValueError(f'window must be >= 1, got {window}.')
    return [sum(accuracies[i:i + window]) / len(accuracies[i:i + window]) for i in range(0, len(accuracies), window)]
