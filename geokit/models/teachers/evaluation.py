"""Geometry quality of a teacher against ground truth: depth AbsRel / delta1 (median-scaled) and pose AUC@30."""
from __future__ import annotations

import math

import torch
from tqdm import tqdm

from geokit.geometry import (
    depth_abs_rel,
    depth_delta1,
    pose_auc,
    pose_encoding_to_extrinsics_intrinsics,
    relative_pose_errors,
)

from .base import BaseTeacher
from .oracle import OracleTeacher


def median_scale(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-video ``median(gt) / median(pred)`` over valid pixels; ``pred``, ``gt``, ``valid``: ``(B, ...)``."""
    scales = [g[v].median() / p[v].median().clamp(min=1e-12) if v.any() else g.new_ones(())
              for p, g, v in zip(pred, gt, valid)]
    return torch.stack(scales)


def _video_key(meta: dict) -> str:
    return meta.get('video') or meta.get('scene_name') or meta.get('id')


@torch.no_grad()
def evaluate_teacher(teacher: BaseTeacher, dataset, max_videos: int | None = None, progress: bool = True) -> dict:
    """Evaluate ``teacher`` on every distinct video of ``dataset`` (samples with ``geometry``).

    Depth: AbsRel and delta1 of the teacher's depth after per-video median scaling, against the ground truth
    warped to the teacher's pixels (valid pixels only). Pose: relative rotation/translation-direction errors over
    all frame pairs, summarised by VGGT's AUC@30.

    Returns:
        ``{'abs_rel', 'delta1', 'auc30', 'videos', 'pairs'}``.
    """
    view = getattr(teacher, 'view', None)
    if view is None:
        raise TypeError(f'evaluate_teacher needs a teacher with a `view`, got {type(teacher).__name__}.')
    oracle = OracleTeacher(image_size=view.image_size, patch_size=view.patch_size, mode=view.mode)
    seen, abs_rel, delta1, rot_errors, trans_errors = set(), [], [], [], []
    indices = range(len(dataset))
    for index in tqdm(indices, desc='evaluating teacher', disable=not progress):
        if hasattr(dataset, 'get_data_info') and _video_key(dataset.get_data_info(index)['meta']) in seen:
            continue  # several questions share a video: decode each video once
        sample = dataset[index]
        meta = dict(sample['meta'])
        key = _video_key(meta)
        if key in seen or sample.get('geometry') is None:
            continue
        seen.add(key)
        frames, geometry = sample['frames'][None], [sample['geometry']]
        gt = oracle(frames, [meta], geometry)
        pred = teacher(frames, [meta], geometry).to('cpu')
        valid = gt.depth > 0
        depth = pred.depth * median_scale(pred.depth, gt.depth, valid).view(-1, 1, 1, 1)
        abs_rel.append(depth_abs_rel(depth, gt.depth, valid))
        delta1.append(depth_delta1(depth, gt.depth, valid))
        pred_extrinsics, _ = pose_encoding_to_extrinsics_intrinsics(pred.pose_enc, gt.image_hw)
        gt_extrinsics, _ = pose_encoding_to_extrinsics_intrinsics(gt.pose_enc, gt.image_hw)
        rot, trans = relative_pose_errors(pred_extrinsics, gt_extrinsics)
        rot_errors.append(rot.flatten())
        trans_errors.append(trans.flatten())
        if max_videos is not None and len(seen) >= max_videos:
            break
    if not seen:
        raise ValueError('evaluate_teacher found no sample with ground-truth geometry; use a SynthVSI split with '
                         'load_geometry=True.')
    rot, trans = torch.cat(rot_errors), torch.cat(trans_errors)
    return dict(abs_rel=float(torch.cat(abs_rel).nanmean()), delta1=float(torch.cat(delta1).nanmean()),
                auc30=pose_auc(rot, trans, max_threshold=30) if rot.numel() else math.nan, videos=len(seen),
                pairs=int(rot.numel()))
