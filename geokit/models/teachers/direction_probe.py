"""Can a VGGT learn which way a view moved? A controlled learnability probe for teachers trained from scratch.

Relative pose needs cross-frame correspondence. This probe isolates its simplest case: frame 1 is frame 0 shifted
horizontally by ``+shift`` or ``-shift`` pixels (circularly, so no content is lost), and the network must predict the
direction. The readout is either a linear layer on the last camera token of frame 1 (``'camera-token'``: can the
aggregator represent the direction?) or the camera head's ``qy`` pose field (``'camera-head'``: does the real pose
path learn it?). Both are trained with the same L1 objective towards ``+-target``.

See docs/teachers.md ("Why the tiny teacher does not learn pose") for what it showed on SynthVSI.
"""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from .vggt.model import VGGTNet

#: readouts of :func:`direction_probe`
READOUTS = ('camera-token', 'camera-head')
#: index of ``qy`` (rotation about the camera's vertical axis, which a horizontal shift mimics) in the pose encoding
QY_INDEX = 4


def shifted_pairs(images: torch.Tensor, direction: torch.Tensor, shift: int) -> torch.Tensor:
    """``(B, 2, 3, H, W)`` pairs ``[image, image rolled right by direction * shift px]``.

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``.
        direction: ``(B,)`` of ``+1`` / ``-1``.
        shift: pixels, ``0 < shift < W``.
    """
    if images.dim() != 4:
        raise ValueError(f'shifted_pairs expects (B, 3, H, W) images, got {tuple(images.shape)}.')
    if not 0 < shift < images.shape[-1]:
        raise ValueError(f'shift must be in (0, {images.shape[-1]}) pixels, got {shift}.')
    rolled = torch.stack([torch.roll(image, int(d) * shift, dims=-1) for image, d in zip(images, direction)])
    return torch.stack([images, rolled], dim=1)


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
        target: the L1 target magnitude (``qy`` of a ~23 deg yaw for 0.2).
        seed: draws of images and directions.
    Returns:
        ``steps`` accuracies in ``[0, 1]`` (fraction of the batch whose predicted sign matches the direction).
    """
    if readout not in READOUTS:
        raise ValueError(f'readout must be one of {READOUTS}, got {readout!r}.')
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'direction_probe expects (N, 3, H, W) images, got {tuple(images.shape)}.')
    generator = torch.Generator().manual_seed(seed)
    width = 2 * net.embed_dim
    head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 1)) if readout == 'camera-token' else None
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=lr)
    last = net.depth - 1
    accuracies = []
    net.train()
    for _ in tqdm(range(steps), desc=f'direction probe ({readout}, {shift} px)', disable=not progress):
        index = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
        direction = torch.randint(0, 2, (batch_size,), generator=generator) * 2 - 1
        pairs = shifted_pairs(images[index], direction, shift)
        goal = target * direction.to(pairs.dtype)
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
        accuracies.append(float((torch.sign(prediction.detach()) == direction).float().mean()))
    return accuracies


def windowed_accuracy(accuracies: list[float], window: int = 50) -> list[float]:
    """Mean accuracy over consecutive windows of ``window`` steps (the last one may be shorter)."""
    if window < 1:
        raise ValueError(f'window must be >= 1, got {window}.')
    return [sum(accuracies[i:i + window]) / len(accuracies[i:i + window]) for i in range(0, len(accuracies), window)]
