"""Geometric objectives, registered in ``LOSSES``.

Every loss is a plain function (tensors in, tensor out) plus a thin registered ``nn.Module`` with ``loss_weight``.

Return convention of the modules: ``forward`` returns a ``dict``; ``out['loss']`` is the weighted, differentiable
loss to optimise; every other entry is a detached scalar for logging (names never contain ``'loss'``, so mmengine's
``BaseModel.parse_losses`` would not sum them). A model typically stores ``out['loss']`` as ``loss_<objective>``
and the other entries as metrics (docs/architecture.md, "Taps, heads and losses").
"""
from .alignment_loss import (
    ALIGNMENT_VARIANTS,
    FeatureAlignmentLoss,
    feature_alignment_loss,
    prepare_alignment_pair,
    similarity_alignment_loss,
    smooth_l1_alignment_loss,
)
from .depth_loss import (
    ConfidenceDepthLoss,
    ScaleInvariantDepthLoss,
    TrimmedL1DepthLoss,
    depth_gradient_loss,
    depth_supervision_mask,
    quantile_filtered_mean,
    trimmed_l1_depth_loss,
)
from .pose_loss import CameraPoseLoss, camera_pose_loss
from .scale_loss import MetricScaleLoss, metric_scale_loss

__all__ = [
    'ALIGNMENT_VARIANTS', 'CameraPoseLoss', 'ConfidenceDepthLoss', 'FeatureAlignmentLoss', 'MetricScaleLoss',
    'ScaleInvariantDepthLoss', 'TrimmedL1DepthLoss', 'camera_pose_loss', 'depth_gradient_loss',
    'depth_supervision_mask', 'feature_alignment_loss', 'metric_scale_loss', 'quantile_filtered_mean',
    'trimmed_l1_depth_loss', 'prepare_alignment_pair', 'similarity_alignment_loss', 'smooth_l1_alignment_loss',
]
