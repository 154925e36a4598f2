"""Geometry quality of a teacher against ground truth: depth AbsRel / delta1 (median-scaled) and pose AUC@30, and
the AUC@30 of reference predictors built from the same ground truth (what the metric asks of a teacher)."""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from tqdm import tqdm

from geokit.datasets import distinct_videos
from geokit.evaluation.geometry_metric import median_scale
from geokit.geometry import (
    depth_abs_rel,
    depth_delta1,
    pose_auc,
    pose_encoding_to_extrinsics_intrinsics,
    relative_pose_errors,
    rotation_angle_deg,
)
from geokit.models.teachers import BaseTeacher, OracleTeacher

from .pose_references import REFERENCE_PREDICTORS


def videos_with_geometry(dataset, max_videos: int | None = None, progress: bool = True,
                         desc: str = 'videos') -> Iterator[dict]:
    """The first sample of each distinct video of ``dataset`` that has ground-truth ``geometry`` (several questions
    share a video; :func:`geokit.datasets.distinct_videos`), at most ``max_videos`` of them.

    Yields the dataset samples (``frames``, ``meta``, ``geometry``). Raises ``ValueError`` when there is none.
    """
    found = 0
    for index in tqdm(distinct_videos(dataset), desc=desc, disable=not progress):
        sample = dataset[index]
        if sample.get('geometry') is None:
            continue
        found += 1
        yield sample
        if max_videos is not None and found >= max_videos:
            return
    if not found:
        raise ValueError('found no sample with ground-truth geometry; use a SynthVSI split with load_geometry=True.')


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
    abs_rel, delta1, rot_errors, trans_errors = [], [], [], []
    for sample in videos_with_geometry(dataset, max_videos, progress, desc='evaluating teacher'):
        meta = dict(sample['meta'])
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
    rot, trans = torch.cat(rot_errors), torch.cat(trans_errors)
    return dict(abs_rel=float(torch.cat(abs_rel).nanmean()), delta1=float(torch.cat(delta1).nanmean()),
                auc30=pose_auc(rot, trans, max_threshold=30) if rot.numel() else math.nan, videos=len(abs_rel),
                pairs=int(rot.numel()))


@torch.no_grad()
def evaluate_pose_references(dataset, max_videos: int | None = None, seed: int = 0,
                             progress: bool = True) -> dict:
    """AUC@30 of every :data:`~.pose_references.REFERENCE_PREDICTORS` entry over all frame pairs of
    the distinct videos of ``dataset``, and how far apart those pairs are.

    Returns:
        ``{'auc30': {reference name: AUC}, 'pairs', 'videos', 'median_pair_rotation_deg',
        'share_pairs_within_fov'}``; the last is the share of pairs whose ground-truth relative rotation is smaller
        than the horizontal field of view (pairs that can see common content at all).
    """
    generator = torch.Generator().manual_seed(seed)
    extrinsics, within_fov, pair_rotation = [], [], []
    for sample in videos_with_geometry(dataset, max_videos, progress, desc='reference poses'):
        geometry = sample['geometry']
        extr = torch.as_tensor(geometry['extrinsics'], dtype=torch.float64)[None]
        intrinsics = torch.as_tensor(geometry['intrinsics'], dtype=torch.float64)
        fov = torch.rad2deg(2 * torch.atan(intrinsics[0, 0, 2] / intrinsics[0, 0, 0]))
        pairs = torch.combinations(torch.arange(extr.shape[1]), r=2)
        angle = rotation_angle_deg(extr[0, pairs[:, 0], :, :3], extr[0, pairs[:, 1], :, :3])
        pair_rotation.append(angle)
        within_fov.append(angle < fov)
        extrinsics.append(extr)
    aucs = {}
    for name, predictor in REFERENCE_PREDICTORS.items():
        errors = [relative_pose_errors(predictor(extr, generator), extr) for extr in extrinsics]
        aucs[name] = pose_auc(torch.cat([r.flatten() for r, _ in errors]), torch.cat([t.flatten() for _, t in errors]))
    rotation = torch.cat(pair_rotation)
    return dict(auc30=aucs, videos=len(extrinsics), pairs=int(rotation.numel()),
                median_pair_rotation_deg=float(rotation.median()),
                share_pairs_within_fov=float(torch.cat(within_fov).double().mean()))
