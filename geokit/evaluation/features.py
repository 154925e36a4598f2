"""Frozen hidden states of a ``GeometricMLLM`` paired with geometry targets, for linear probes.

:func:`extract_probe_data` runs the model as it runs at inference (prompt only, no geometry tokens, heads and
teacher unused) over videos with ground-truth geometry (SynthVSI, ``load_geometry=True``), taps the video tokens at
the requested decoder layers and builds two probe datasets:

* per-token depth: one row per video token ``(video, temporal group, i, j)``; features = the token's hidden state;
  target = log of the metric depth pooled onto the token's cell and averaged over the group's frames;
* per-frame relative pose: one row per temporal group; features = the mean of the group's video tokens; target =
  the 9-d pose encoding (``[t, quat XYZW, fov_h, fov_w]``, camera-from-world relative to the video's first frame,
  translation in metres) of the group's first frame.

Video tokens exist in every checkpoint (the camera/scale tokens only where training inserted them), so the same
probes compare a baseline with a geometry-trained model.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from geokit.evaluation.probes import pool_depth_to_grid
from geokit.geometry.pose_encoding import extrinsics_intrinsics_to_pose_encoding, normalize_to_first_frame
from geokit.models.mllms.taps import HiddenStateTaps, TapRequest, Taps

#: Floor of a token's pooled depth (metres) before the log (pooled depths of valid cells are far above it).
MIN_DEPTH_M = 1e-6


@dataclass
class ProbeData:
    """Features and targets of the two probe tasks.

    Attributes:
        depth_features: ``{layer: (N_tok, D)}`` float32. depth_targets: ``(N_tok, 1)`` log metres.
        depth_groups: ``(N_tok,)`` video index of each token row.
        pose_features: ``{layer: (N_frm, D)}``. pose_targets: ``(N_frm, 9)``. pose_groups: ``(N_frm,)``, rows of a
            video contiguous and in temporal order.
        image_hw: ``(H, W)`` of the frames (the pose encoding's field of view refers to it).
        layers: the tapped 1-based decoder layers. videos: the video path of each group id.
    """

    depth_features: dict[int, torch.Tensor]
    depth_targets: torch.Tensor
    depth_groups: torch.Tensor
    pose_features: dict[int, torch.Tensor]
    pose_targets: torch.Tensor
    pose_groups: torch.Tensor
    image_hw: tuple[int, int]
    layers: tuple[int, ...]
    videos: list[str]


def resolve_layers(layers: Sequence[int] | None, num_layers: int) -> tuple[int, ...]:
    """1-based decoder layers (negative counts from the end; ``None`` = all), checked against ``num_layers``."""
    if not layers:
        return tuple(range(1, num_layers + 1))
    return TapRequest.from_config(dict(tokens='video', layers=list(layers)), num_layers, key='--layers').layers


def _pad_frames(frames: torch.Tensor, groups: int) -> torch.Tensor:
    """Repeat the last frame up to a multiple of ``groups`` frames (as Qwen-VL's processor pads a video)."""
    missing = -frames.shape[0] % groups
    return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])]) if missing else frames


def _depth_targets(depth: torch.Tensor, grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, H, W)`` metres -> log depth ``(T', h, w)`` per token and its validity (valid in all group frames).

    ``grid`` is the token grid ``(T', h, w)``: ``T'`` temporal groups of ``ceil(T / T')`` frames (the last frame
    repeated to fill the last group), each frame pooled onto ``h x w`` cells; the target is the mean over the
    group's frames of the log of the cell's depth.
    """
    groups, h, w = grid
    depth = _pad_frames(depth.float(), groups)
    pooled, valid = pool_depth_to_grid(depth, (h, w))
    pooled = pooled.reshape(groups, -1, h, w)
    valid = valid.reshape(groups, -1, h, w).all(1)
    return pooled.clamp(min=MIN_DEPTH_M).log().mean(1), valid


def _pose_targets(geometry: dict, groups: int, image_hw: tuple[int, int]) -> torch.Tensor:
    """Pose encodings ``(T', 9)`` of the first frame of each temporal group, relative to frame 0."""
    frames = geometry['extrinsics'].shape[0]
    frames_per_group = -(-frames // groups)  # ceil: the padded video's group length
    first = (torch.arange(groups) * frames_per_group).clamp(max=frames - 1)
    extrinsics = normalize_to_first_frame(geometry['extrinsics'].float()[None])[0][first]
    return extrinsics_intrinsics_to_pose_encoding(extrinsics, geometry['intrinsics'].float()[first], image_hw)


def _check_geometry(batch: list[dict]) -> None:
    for sample in batch:
        if sample.get('geometry') is None:
            raise ValueError(f"sample {sample['meta'].get('id')} has no ground-truth geometry; probes need "
                             f"depth and cameras: set <split>_dataloader.dataset.load_geometry=True on a dataset "
                             f"that has them (SynthVSI).")


def _video_token_states(model, batch: list[dict], request: TapRequest, tapper: HiddenStateTaps) -> Taps:
    """Run ``batch`` as at inference (prompt only) and gather the video tokens' hidden states at the requested
    layers: ``taps.video[layer]`` is ``(B, T', h, w, D)``."""
    backbone = model.backbone
    data = model.data_preprocessor(batch, training=False)
    inputs, data_samples = data['inputs'], data['data_samples']
    vision = model.encode_vision(inputs, data_samples)  # the model's own vision path (fusion included)
    with tapper.capture(request.layers) as states:
        backbone.language_forward(inputs['input_ids'], inputs['attention_mask'], inputs['mm_token_type_ids'],
                                  inputs['video_grid_thw'], vision,
                                  second_per_grid_ts=inputs.get('second_per_grid_ts'),
                                  geometry_tokens=bool(inputs.get('geometry_tokens', False)))
    return Taps.gather(states, [request], inputs['input_ids'], inputs['video_grid_thw'],
                       backbone.spatial_merge_size, {'video': backbone.video_token_id})


class _ProbeRows:
    """Accumulates the rows of both probe tasks, one video at a time (group id = the video's position)."""

    def __init__(self, layers: Sequence[int]) -> None:
        self.layers = tuple(layers)
        self.depth_features: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
        self.pose_features: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
        self.depth_targets, self.depth_groups, self.pose_targets, self.pose_groups = [], [], [], []
        self.videos: list[str] = []
        self.image_hw: tuple[int, int] | None = None

    def add_video(self, sample: dict, tokens: dict[int, torch.Tensor]) -> None:
        """One video's rows; ``tokens``: ``{layer: (T', h, w, D)}`` its video tokens' hidden states."""
        geometry = sample['geometry']
        self.image_hw = tuple(geometry['depth'].shape[-2:])
        group_id = len(self.videos)
        self.videos.append(str(sample['meta'].get('video')))
        groups, h, w = next(iter(tokens.values())).shape[:3]
        log_depth, valid = _depth_targets(geometry['depth'], (groups, h, w))
        self.depth_targets.append(log_depth[valid][:, None])
        self.depth_groups.append(torch.full((int(valid.sum()),), group_id))
        self.pose_targets.append(_pose_targets(geometry, groups, self.image_hw))
        self.pose_groups.append(torch.full((groups,), group_id))
        for layer in self.layers:
            layer_tokens = tokens[layer].float().cpu()
            self.depth_features[layer].append(layer_tokens[valid])
            self.pose_features[layer].append(layer_tokens.mean((1, 2)))  # a temporal group's mean token

    def to_probe_data(self) -> ProbeData:
        if not self.videos:
            raise ValueError('no samples to extract probe features from; check the dataset split.')
        return ProbeData(
            depth_features={layer: torch.cat(f) for layer, f in self.depth_features.items()},
            depth_targets=torch.cat(self.depth_targets), depth_groups=torch.cat(self.depth_groups),
            pose_features={layer: torch.cat(f) for layer, f in self.pose_features.items()},
            pose_targets=torch.cat(self.pose_targets), pose_groups=torch.cat(self.pose_groups),
            image_hw=self.image_hw, layers=self.layers, videos=self.videos)


def _batches(samples: Iterable[dict], batch_size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def extract_probe_data(model, samples: Iterable[dict], layers: Sequence[int], batch_size: int = 4,
                       total: int | None = None) -> ProbeData:
    """Tap the video-token hidden states of ``model`` at ``layers`` and pair them with depth and pose targets.

    Args:
        model: a ``GeometricMLLM`` (its ``data_preprocessor`` and ``backbone`` are used; eval mode is set here).
        samples: dataset sample dicts (``frames``, ``conversations``, ``meta``, ``geometry`` with ``depth (T, H, W)``
            metres, ``extrinsics (T, 3, 4)``, ``intrinsics (T, 3, 3)``), one per video, all with the same number of
            frames and resolution.
        layers: 1-based decoder layers.
        batch_size: videos per forward pass.
        total: number of samples, for the progress bar.
    Raises:
        ValueError: a sample without geometry (names the config key to set).
    """
    model.eval()
    request = TapRequest('video', tuple(layers))
    tapper = HiddenStateTaps(model.backbone.decoder_layers)
    rows = _ProbeRows(request.layers)
    progress = tqdm(total=total, desc='probe features', unit='video')
    for batch in _batches(samples, batch_size):
        _check_geometry(batch)
        taps = _video_token_states(model, batch, request, tapper)
        for index, sample in enumerate(batch):
            rows.add_video(sample, {layer: taps.video[layer][index] for layer in request.layers})
        progress.update(len(batch))
    progress.close()
    return rows.to_probe_data()
