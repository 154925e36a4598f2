"""``GeometryMetric``: depth, camera-pose and metric-scale accuracy of the geometry heads' predictions.

The formulas live in :mod:`geokit.geometry.metrics` (AbsRel, delta < 1.25, relative pose errors, AUC@30); this
module pairs predictions with a reference (dataset ground truth or teacher targets), aligns depth scale and
aggregates over the test set.
"""
from __future__ import annotations

import math
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from geokit.engine.checkpoint import atomic_save_safetensors
from geokit.evaluation.batch import batch_samples
from geokit.evaluation.records import resolve_out_dir
from geokit.geometry.metrics import depth_abs_rel, depth_delta1, pose_auc, relative_pose_errors
from geokit.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics
from geokit.geometry.scale import align_depth_scale
from geokit.registry import METRICS

DEPTH_ALIGNMENTS = ('median', 'lstsq', 'metric', 'none')
REFERENCES = ('ground_truth', 'teacher')


def _get(container: Any, name: str) -> Any:
    """``container[name]`` for mappings, ``container.name`` otherwise (e.g. ``TeacherTargets``); ``None`` if absent."""
    if container is None:
        return None
    if isinstance(container, Mapping):
        return container.get(name)
    return getattr(container, name, None)


def median_scale(source: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample ``median(target) / median(source)`` over ``valid & source > 0`` pixels; ``(B, ...)`` -> ``(B,)``.

    Samples without a valid pixel get scale 1.
    """
    valid = valid & (source > 0) & torch.isfinite(source)
    scales = [target_b[valid_b].median() / source_b[valid_b].median() if valid_b.any() else source.new_ones(())
              for source_b, target_b, valid_b in zip(source, target, valid)]
    return torch.stack(scales)


def _extrinsics(geometry: Any, image_hw: tuple[int, int], who: str) -> torch.Tensor | None:
    """Camera-from-world ``(T, 3, 4)`` from ``extrinsics`` or a ``pose_enc (T, 9)``; ``None`` when neither exists."""
    extrinsics = _get(geometry, 'extrinsics')
    if extrinsics is not None:
        return torch.as_tensor(extrinsics).float()
    pose_enc = _get(geometry, 'pose_enc')
    if pose_enc is None:
        return None
    pose_enc = torch.as_tensor(pose_enc).float()
    if pose_enc.dim() != 2 or pose_enc.shape[-1] != 9:
        raise ValueError(f'{who} pose_enc must be (T, 9) for one sample, got {tuple(pose_enc.shape)}.')
    return pose_encoding_to_extrinsics_intrinsics(pose_enc, image_hw)[0]


def _scalar(value: Any) -> float | None:
    return None if value is None else float(torch.as_tensor(value).float().reshape(-1)[0])


@METRICS.register_module()
class GeometryMetric(BaseMetric):
    """Depth AbsRel / delta1, relative pose errors and AUC@30, and metric-scale error of predicted geometry.

    Expected inputs per sample (one entry of the ``predict`` outputs):
      * ``output[pred_key]``: mapping (or object with attributes) holding any of ``depth (T, h, w)`` (teacher
        units, or metres when ``depth_alignment='metric'`` is combined with ``metric_scale``), ``pose_enc (T, 9)``
        (``[t, quat XYZW, fov_h, fov_w]``) or ``extrinsics (T, 3, 4)`` camera-from-world, ``metric_scale ()``
        (metres per predicted depth unit; in GeoVR the depth head regresses teacher depth, so this is also metres
        per teacher unit and is compared directly with the teacher's ``metric_scale``);
      * reference ``'ground_truth'``: the data batch's ``geometry`` of the sample (``depth (T, H, W)`` metres,
        ``extrinsics (T, 3, 4)``; SynthVSI has it), or ``output['geometry']`` if the model passes it through;
      * reference ``'teacher'``: ``output[teacher_key]`` with ``depth``, ``pose_enc`` and ``metric_scale``
        (a per-sample slice of :class:`~geokit.structures.TeacherTargets` or a mapping).

    Depth: the prediction is resized (bilinear) to the reference resolution and scaled per sample by
    ``depth_alignment``: ``'median'`` (median ratio), ``'lstsq'`` (robust least squares,
    :func:`geokit.geometry.align_depth_scale`), ``'metric'`` (the predicted ``metric_scale``; compares metric depth)
    or ``'none'``; then ``depth_abs_rel`` / ``depth_delta1`` over reference pixels with finite depth > 0. With
    ``'metric'`` and the teacher reference, the teacher depth is first converted to metres by its ``metric_scale``.
    Non-finite predicted depth counts as a wrong prediction (depth 0). A sample without any valid reference pixel
    has no depth error; if no sample has one, the depth metrics are NaN.
    Pose: :func:`relative_pose_errors` over all frame pairs (frame- and scale-invariant), AUC@30 over all pairs of all
    samples. Scale: ``|s_pred - s_ref| / s_ref`` where ``s_ref`` is the teacher's ``metric_scale`` (teacher
    reference) or the median ratio between reference metres and predicted depth (ground-truth reference).

    Args:
        reference: ``'ground_truth'`` or ``'teacher'``.
        depth_alignment: one of :data:`DEPTH_ALIGNMENTS`.
        pred_key / teacher_key: keys of the predicted / teacher geometry in the ``predict`` outputs.
        auc_threshold: AUC threshold in degrees (VGGT reports 30).
        save_predictions: also write each sample's predicted geometry to ``<out_dir>/<id>.safetensors`` for
            ``tools/visualize.py --pred``: ``depth`` (as predicted), ``extrinsics`` / ``pose_enc`` / ``intrinsics``,
            ``metric_scale``, ``alignment_scale`` (the depth factor used here) and ``frame_indices``.
        out_dir: where ``save_predictions`` writes; ``None`` = ``<work_dir>/geometry``.
    Returns (from ``evaluate``), prefixed ``geometry/``: ``depth_abs_rel``, ``depth_delta1``, ``pose_auc30``,
    ``rot_err_deg``, ``trans_err_deg`` (means over pairs), ``scale_rel_err`` — whichever the inputs allow.
    """

    default_prefix = 'geometry'

    def __init__(self, reference: str = 'ground_truth', depth_alignment: str = 'median',
                 pred_key: str = 'geometry_pred', teacher_key: str = 'teacher_targets', auc_threshold: int = 30,
                 save_predictions: bool = False, out_dir: str | None = None, collect_device: str = 'cpu',
                 prefix: str | None = None, collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if reference not in REFERENCES:
            raise ValueError(f'GeometryMetric: reference={reference!r}; choose one of {REFERENCES}.')
        if depth_alignment not in DEPTH_ALIGNMENTS:
            raise ValueError(f'GeometryMetric: depth_alignment={depth_alignment!r}; choose one of {DEPTH_ALIGNMENTS}.')
        self.reference, self.depth_alignment = reference, depth_alignment
        self.pred_key, self.teacher_key, self.auc_threshold = pred_key, teacher_key, auc_threshold
        self.save_predictions = save_predictions
        self.out_dir = resolve_out_dir(out_dir, 'geometry', 'test_evaluator.out_dir') if save_predictions else None

    def _reference(self, output: Mapping, batch_geometry: Any) -> Any:
        if self.reference == 'teacher':
            targets = output.get(self.teacher_key)
            if targets is None:
                raise KeyError(f"GeometryMetric(reference='teacher') needs output['{self.teacher_key}'] (the "
                               f"teacher targets of the sample); got keys {sorted(output)}. Set "
                               f"test_evaluator.teacher_key, or use reference='ground_truth'.")
            return targets
        geometry = output.get('geometry') if output.get('geometry') is not None else batch_geometry
        if geometry is None:
            raise KeyError("GeometryMetric(reference='ground_truth') needs the sample's 'geometry' (depth, extrinsics) "
                           "in the data batch; this dataset has none. Use a dataset with ground truth (SynthVSI) or "
                           "reference='teacher'.")
        return geometry

    def process(self, data_batch: Any, data_samples: Sequence[Mapping]) -> None:
        """Compute per-sample errors (small lists of floats) for one batch."""
        samples = batch_samples(data_batch, len(data_samples))
        for output, sample in zip(data_samples, samples):
            pred = output.get(self.pred_key)
            if pred is None:
                raise KeyError(f"GeometryMetric needs the predicted geometry in output['{self.pred_key}']; got keys "
                               f'{sorted(output)}. Set test_evaluator.pred_key to where the model puts it.')
            geometry = sample.get('geometry')
            result, saved = self._evaluate_sample(pred, self._reference(output, geometry))
            self.results.append(result)
            if self.save_predictions:
                frame_indices = sample.get('frame_indices')
                if frame_indices is not None:
                    saved['frame_indices'] = torch.as_tensor(frame_indices).long()
                self._save(saved, output.get('meta') or sample.get('meta'))

    def _depth_scale(self, source: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                     pred_scale: float | None) -> torch.Tensor:
        """``(1,)`` factor applied to the predicted depth before the depth metrics."""
        if self.depth_alignment == 'median':
            return median_scale(source, target, valid)
        if self.depth_alignment == 'lstsq':
            return align_depth_scale(source, target, valid)
        if self.depth_alignment == 'metric':
            if pred_scale is None:
                raise KeyError("GeometryMetric(depth_alignment='metric') needs the predicted 'metric_scale'; the "
                               "model gave none. Use depth_alignment='median'.")
            return source.new_tensor([pred_scale])
        return source.new_ones(1)

    @staticmethod
    def _teacher_metric_scale(ref: Any) -> float:
        scale = _scalar(_get(ref, 'metric_scale'))
        if scale is None:
            raise KeyError("GeometryMetric(reference='teacher', depth_alignment='metric') compares metric depth and "
                           "needs the teacher's 'metric_scale' (metres per teacher unit); the teacher targets have "
                           "none. Use depth_alignment='median', or a teacher with a scale (model.scale_teacher).")
        return scale

    def _evaluate_sample(self, pred: Any, ref: Any) -> tuple[dict, dict]:
        """Errors of one sample, and the tensors ``save_predictions`` writes for it."""
        result: dict[str, Any] = {}
        saved: dict[str, torch.Tensor] = {}
        pred_depth, ref_depth = _get(pred, 'depth'), _get(ref, 'depth')
        pred_scale = _scalar(_get(pred, 'metric_scale'))
        ref_hw = tuple(torch.as_tensor(ref_depth).shape[-2:]) if ref_depth is not None else None
        pred_hw = tuple(torch.as_tensor(pred_depth).shape[-2:]) if pred_depth is not None else ref_hw
        if pred_depth is not None and ref_depth is not None:
            source = torch.as_tensor(pred_depth).float()[None]
            target = torch.as_tensor(ref_depth).float()[None]
            if source.shape[1] != target.shape[1]:
                raise ValueError(f'GeometryMetric: predicted depth has {source.shape[1]} frames, the reference '
                                 f'{target.shape[1]} ({tuple(source.shape[1:])} vs {tuple(target.shape[1:])}).')
            if source.shape[-2:] != target.shape[-2:]:
                source = F.interpolate(source, size=target.shape[-2:], mode='bilinear', align_corners=False)
            if self.reference == 'teacher' and self.depth_alignment == 'metric':
                target = target * self._teacher_metric_scale(ref)
            valid = torch.isfinite(target) & (target > 0)
            # a non-finite predicted depth is a wrong prediction (AbsRel 1, outside delta1), not a skipped pixel
            source = torch.nan_to_num(source, nan=0.0, posinf=0.0, neginf=0.0)
            scale = self._depth_scale(source, target, valid, pred_scale)
            aligned = source * scale[:, None, None, None]
            result['depth_abs_rel'] = float(depth_abs_rel(aligned, target, valid)[0])
            result['depth_delta1'] = float(depth_delta1(aligned, target, valid)[0])
            saved['alignment_scale'] = scale[0].reshape(())
            if pred_scale is not None:
                ref_scale = (_scalar(_get(ref, 'metric_scale')) if self.reference == 'teacher'
                             else float(median_scale(source, target, valid)[0]))
                if ref_scale is not None and ref_scale > 0:
                    result['scale_rel_err'] = abs(pred_scale - ref_scale) / ref_scale
        pred_extrinsics = _extrinsics(pred, pred_hw or (1, 1), 'predicted')
        ref_extrinsics = _extrinsics(ref, ref_hw or pred_hw or (1, 1), 'reference')
        if pred_extrinsics is not None and ref_extrinsics is not None:
            if pred_extrinsics.shape != ref_extrinsics.shape:
                raise ValueError(f'GeometryMetric: predicted cameras {tuple(pred_extrinsics.shape)} and reference '
                                 f'cameras {tuple(ref_extrinsics.shape)} differ; both must be (T, 3, 4) per sample.')
            rot_err, trans_err = relative_pose_errors(pred_extrinsics[None], ref_extrinsics[None])
            result['rot_err'] = rot_err[0].tolist()
            result['trans_err'] = trans_err[0].tolist()
        if self.save_predictions:
            if pred_depth is not None:
                saved['depth'] = torch.as_tensor(pred_depth).float()
            if pred_extrinsics is not None:
                saved['extrinsics'] = pred_extrinsics
            if _get(pred, 'pose_enc') is not None:
                saved['pose_enc'] = torch.as_tensor(_get(pred, 'pose_enc')).float()
            if _get(pred, 'intrinsics') is not None:
                saved['intrinsics'] = torch.as_tensor(_get(pred, 'intrinsics')).float()
            if pred_scale is not None:
                saved['metric_scale'] = torch.tensor(pred_scale)
        return result, saved

    def _save(self, tensors: dict[str, torch.Tensor], meta: Mapping | None) -> None:
        if meta is None or 'id' not in meta:
            raise KeyError("GeometryMetric(save_predictions=True) needs output['meta']['id'] to name the file.")
        path = osp.join(self.out_dir, f'{meta["id"]}.safetensors')
        atomic_save_safetensors({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, path)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Means over samples (depth, scale) and over all frame pairs (pose)."""
        metrics: dict[str, float] = {}
        for key in ('depth_abs_rel', 'depth_delta1', 'scale_rel_err'):
            values = torch.tensor([r[key] for r in results if key in r], dtype=torch.float64)
            if values.numel():  # NaN (no valid reference pixel in any sample) rather than a missing key
                finite = values[~values.isnan()]
                metrics[key] = float(finite.mean()) if finite.numel() else math.nan
        rot = torch.tensor([e for r in results for e in r.get('rot_err', [])], dtype=torch.float64)
        trans = torch.tensor([e for r in results for e in r.get('trans_err', [])], dtype=torch.float64)
        if rot.numel():
            metrics[f'pose_auc{self.auc_threshold}'] = pose_auc(rot, trans, max_threshold=self.auc_threshold)
            metrics['rot_err_deg'] = float(rot.mean())
            metrics['trans_err_deg'] = float(trans.mean())
        return metrics
