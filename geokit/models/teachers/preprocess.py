"""The teacher's view of a video: VGGT's image preprocessing, and the same warp for depth and intrinsics.

VGGT's ``load_and_preprocess_images``: ``'crop'`` resizes the width to ``image_size`` (518) and the height to the
aspect-preserving multiple of the patch size (14), then centre-crops the height to ``image_size`` if it is larger;
``'pad'`` resizes the longer side to ``image_size`` (the other to a multiple of 14) and pads to a square with white.
``'longest'`` (GeoVR's ``preprocess_geo_frames`` in ``utils/preprocess.py``, applied to the frames the MLLM saw)
resizes the longer side to ``image_size`` (GeoVR: 504) and the other to the nearest multiple of twice the patch size
(28), the whole frame with no crop or pad, so the teacher sees what a full-frame MLLM grid sees and its patch grid
pools 2x2 exactly. Resizing is bicubic (anti-aliased), values in ``[0, 1]``. Ground truth is warped identically
(depth: nearest neighbour, padding = 0 = invalid; intrinsics: per-axis scale then offset), so oracle targets live
on the exact pixel grid a VGGT teacher predicts on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: ImageNet normalisation used by VGGT's aggregator and by DINOv2-based depth networks.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: ``TeacherView.mode`` choices (see the module docstring).
TEACHER_VIEW_MODES = ('crop', 'pad', 'longest')


def frames_from_processor(pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor, video_processor,
                          num_frames: list[int], repeat: int = 1) -> list[torch.Tensor]:
    """The frames a Qwen-VL video processor produced, recovered from its patches (GeoVR's teacher input).

    Inverts the processor's patchify (patches ordered ``(t, h / m, w / m, m, m)``, each ``(C, t_p, p, p)``) and its
    rescale + normalisation, so a teacher can see exactly the pixels the MLLM saw (its resize included).

    Args:
        pixel_values_videos: ``(N, C * t_p * p * p)`` from the processor. video_grid_thw: ``(V, 3)``.
        video_processor: the processor (``patch_size``, ``temporal_patch_size``, ``merge_size``, ``image_mean``,
            ``image_std``, ``rescale_factor``).
        num_frames: frames of each video before the processor (its temporal padding is cut off).
        repeat: every frame was given ``repeat`` times in a row; one copy is kept.

    Returns:
        One uint8 ``(T, H, W, 3)`` tensor per video.
    """
    patch, temporal = int(video_processor.patch_size), int(video_processor.temporal_patch_size)
    merge, channels = int(video_processor.merge_size), 3
    mean = torch.tensor(video_processor.image_mean, dtype=torch.float32).view(1, channels, 1, 1)
    std = torch.tensor(video_processor.image_std, dtype=torch.float32).view(1, channels, 1, 1)
    scale = float(getattr(video_processor, 'rescale_factor', 1 / 255))
    videos, start = [], 0
    for (t, h, w), count in zip(video_grid_thw.tolist(), num_frames):
        size = t * h * w
        x = pixel_values_videos[start:start + size].float().view(t, h // merge, w // merge, merge, merge, channels,
                                                                temporal, patch, patch)
        x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(t * temporal, channels, h * patch, w * patch)
        x = ((x * std + mean) / scale).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        videos.append(x[::repeat][:count].contiguous())
        start += size
    if start != pixel_values_videos.shape[0]:
        raise ValueError(f'video_grid_thw {video_grid_thw.tolist()} covers {start} patches but pixel_values_videos has '
                         f'{pixel_values_videos.shape[0]}; pass the two tensors the processor returned together.')
    return videos


@dataclass(frozen=True)
class TeacherView:
    """How a teacher sees frames.

    Args:
        image_size: 518 for VGGT-1B; a multiple of ``patch_size``.
        patch_size: 14.
        mode: ``'crop'`` (VGGT's default; on portrait video the top and bottom are cut, so the teacher's grid covers
            less than the MLLM's full-frame grid), ``'pad'`` or ``'longest'`` (GeoVR; see module docstring).
    """

    image_size: int = 518
    patch_size: int = 14
    mode: str = 'crop'

    def __post_init__(self) -> None:
        if self.mode not in TEACHER_VIEW_MODES:
            raise ValueError(f'teacher preprocessing mode must be one of {TEACHER_VIEW_MODES}, got {self.mode!r}.')
        if self.image_size % self.patch_size:
            raise ValueError(f'image_size {self.image_size} must be a multiple of patch_size {self.patch_size}.')

    def _round(self, value: float, multiple: int | None = None) -> int:
        multiple = multiple or self.patch_size
        return max(multiple, round(value / multiple) * multiple)

    def resized_hw(self, height: int, width: int) -> tuple[int, int]:
        """Size after the resize step (before crop or pad)."""
        if self.mode == 'longest':
            multiple = 2 * self.patch_size
            if height > width:
                return self.image_size, self._round(width * self.image_size / height, multiple)
            return self._round(height * self.image_size / width, multiple), self.image_size
        if self.mode == 'pad' and height > width:
            return self.image_size, self._round(width * self.image_size / height)
        return self._round(height * self.image_size / width), self.image_size

    def offsets(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, out_h, out_w)``: where the resized image sits in the output (negative = cropped)."""
        new_h, new_w = self.resized_hw(height, width)
        if self.mode == 'longest':
            return 0, 0, new_h, new_w
        if self.mode == 'crop':
            top = -((new_h - self.image_size) // 2) if new_h > self.image_size else 0
            return top, 0, min(new_h, self.image_size), new_w
        return (self.image_size - new_h) // 2, (self.image_size - new_w) // 2, self.image_size, self.image_size

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """``(H, W)`` of the teacher's images for ``height x width`` input frames."""
        return self.offsets(height, width)[2:]

    def valid_mask(self, height: int, width: int) -> torch.Tensor:
        """``(H', W')`` bool: output pixels that show the frame (False on ``'pad'`` padding)."""
        return self.depth(torch.ones(height, width)) > 0

    def _place(self, x: torch.Tensor, height: int, width: int, fill: float) -> torch.Tensor:
        top, left, out_h, out_w = self.offsets(height, width)
        if top <= 0 and left <= 0:
            return x[..., -top:-top + out_h, -left:-left + out_w]
        pad = (left, out_w - x.shape[-1] - left, top, out_h - x.shape[-2] - top)
        return F.pad(x, pad, value=fill)

    def images(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames``: uint8 ``(B, T, H, W, 3)`` RGB -> float ``(B, T, 3, H', W')`` in ``[0, 1]``."""
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f'teacher frames must be uint8 (B, T, H, W, 3), got shape {tuple(frames.shape)}.')
        batch, time, height, width = frames.shape[:4]
        x = frames.reshape(batch * time, height, width, 3).permute(0, 3, 1, 2).float() / 255.0
        new_hw = self.resized_hw(height, width)
        if new_hw != (height, width):
            x = F.interpolate(x, size=new_hw, mode='bicubic', align_corners=False, antialias=True).clamp_(0, 1)
        x = self._place(x, height, width, fill=1.0)
        return x.reshape(batch, time, 3, *x.shape[-2:])

    def depth(self, depth: torch.Tensor) -> torch.Tensor:
        """``depth`` ``(..., H, W)`` (0 = invalid) -> ``(..., H', W')`` by nearest neighbour; padding is 0."""
        lead, (height, width) = depth.shape[:-2], depth.shape[-2:]
        x = depth.reshape(-1, 1, height, width).float()
        new_hw = self.resized_hw(height, width)
        if new_hw != (height, width):
            x = F.interpolate(x, size=new_hw, mode='nearest-exact')
        x = self._place(x, height, width, fill=0.0)
        return x.reshape(*lead, *x.shape[-2:])

    def intrinsics(self, intrinsics: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """Pixel intrinsics ``(..., 3, 3)`` of ``image_hw`` frames -> intrinsics of the teacher's images."""
        height, width = image_hw
        new_h, new_w = self.resized_hw(height, width)
        top, left = self.offsets(height, width)[:2]
        sx, sy = new_w / width, new_h / height
        k = intrinsics.clone().float()
        k[..., 0, 0] *= sx
        k[..., 0, 1] *= sx
        k[..., 1, 1] *= sy
        # pixel centres at integer coordinates: u' = (u + 0.5) * s - 0.5 (matches the resize's sampling)
        k[..., 0, 2] = (k[..., 0, 2] + 0.5) * sx - 0.5 + left
        k[..., 1, 2] = (k[..., 1, 2] + 0.5) * sy - 0.5 + top
        return k
