"""MetricScaleTeacher: robust alignment of a (tiny, random, local) transformers depth model to teacher depth."""
from __future__ import annotations

import pytest
import torch
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

from geokit.geometry import align_depth_scale
from geokit.registry import TEACHERS

from .conftest import plane_scene


@pytest.fixture(scope='module')
def depth_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            patch_size=14, image_size=56, out_indices=[1, 2], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16], reassemble_factors=[2, 1],
                                 fusion_hidden_size=8, head_hidden_size=8, depth_estimation_type='metric',
                                 max_depth=10, reassemble_hidden_size=16)
    path = tmp_path_factory.mktemp('metric_depth')
    DepthAnythingForDepthEstimation(config).save_pretrained(path)
    return path


def test_metric_scale_from_depth_model(depth_model_dir, tiny_vggt_cfg):
    torch.manual_seed(0)
    teacher = TEACHERS.build(dict(type='MetricScaleTeacher', geometry=dict(type='VGGTTeacher', **tiny_vggt_cfg),
                                  metric_depth=dict(path=str(depth_model_dir), input_size=28)))
    assert not any(p.requires_grad for p in teacher.parameters())
    frames = torch.randint(0, 256, (2, 2, 42, 56, 3), dtype=torch.uint8)
    targets = teacher(frames, [{}, {}], [None, None])
    assert targets.metric_scale.shape == (2,) and bool((targets.metric_scale > 0).all())
    # the scale is the robust alignment of the teacher's depth onto the metric network's depth on the same pixels
    images = teacher.geometry.view.images(frames).flatten(0, 1)
    metric = teacher.metric_depth(images).reshape(targets.depth.shape)
    expected = align_depth_scale(targets.depth.flatten(1), metric.flatten(1), robust=True)
    assert torch.allclose(targets.metric_scale, expected, rtol=1e-5)
    # ... and what the geometry teacher predicts is unchanged
    plain = teacher.geometry(frames, [{}, {}], [None, None])
    assert torch.equal(plain.depth, targets.depth) and torch.equal(plain.pose_enc, targets.pose_enc)


def test_oracle_scale_is_kept_exactly(depth_model_dir):
    sample = plane_scene(num_frames=2)
    teacher = TEACHERS.build(dict(type='MetricScaleTeacher', geometry=dict(type='OracleTeacher', image_size=56),
                                  metric_depth=dict(path=str(depth_model_dir), input_size=28)))
    targets = teacher(sample['frames'][None], [sample['meta']], [sample['geometry']])
    oracle = TEACHERS.build(dict(type='OracleTeacher', image_size=56))(sample['frames'][None], [sample['meta']],
                                                                     [sample['geometry']])
    assert torch.equal(targets.metric_scale, oracle.metric_scale)


def test_missing_depth_model_names_the_key(tmp_path, tiny_vggt_cfg):
    with pytest.raises(FileNotFoundError, match='metric_depth.path'):
        TEACHERS.build(dict(type='MetricScaleTeacher', geometry=dict(type='VGGTTeacher', **tiny_vggt_cfg),
                            metric_depth=dict(path=str(tmp_path / 'nope'))))
