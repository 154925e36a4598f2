"""GeometricMLLM: config-only objectives, the overfit check, predict, the fusion extension point, meta build."""
from __future__ import annotations

import os.path as osp

import pytest
import torch
from mmengine.config import Config

from geokit.registry import CONNECTORS, MODELS

from .conftest import make_sample, model_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def total(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if k.startswith('loss_'))


def test_objectives_are_config_only():
    """Removing objectives needs no code change: the loss keys follow the config."""
    full = MODELS.build(model_config())
    data = full.data_preprocessor([make_sample(0)], True)
    keys = set(k for k in full(**data, mode='loss') if k.startswith('loss_'))
    assert keys == {'loss_lm', 'loss_pose', 'loss_depth', 'loss_scale', 'loss_align'}
    partial = MODELS.build(model_config(objectives=('depth',)))
    assert set(k for k in partial(**data, mode='loss') if k.startswith('loss_')) == {'loss_lm', 'loss_depth'}
    assert list(partial.heads) == ['depth']
    bare = MODELS.build(model_config(objectives=(), teacher=None))
    assert set(bare(**data, mode='loss')) == {'loss_lm'}


def test_every_loss_decreases_when_overfitting_a_batch():
    torch.manual_seed(0)
    model = MODELS.build(model_config())
    data = model.data_preprocessor([make_sample(0, num_frames=4, size=32), make_sample(1, num_frames=4, size=32)],
                                   True)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    history = []
    for _ in range(12):
        losses = model(**data, mode='loss')
        history.append({k: float(v) for k, v in losses.items() if k.startswith('loss_')})
        optim.zero_grad()
        total(losses).backward()
        optim.step()
    for key in history[0]:
        first, last = history[0][key], min(h[key] for h in history[-3:])
        assert last < first, f'{key} did not decrease: {[round(h[key], 4) for h in history]}'


def test_predict_returns_answers_with_meta():
    model = MODELS.build(model_config(objectives=(), teacher=None)).eval()
    data = model.data_preprocessor([make_sample(0), make_sample(1)], False)
    assert data['inputs']['attention_mask'][:, -1].all()                 # left padded for generation
    out = model(**data, mode='predict')
    assert [o['meta']['id'] for o in out] == ['s0', 's1'] and all(isinstance(o['prediction'], str) for o in out)


def test_predict_geometry_returns_each_heads_geometry_per_sample():
    model = MODELS.build(model_config(predict_geometry=True, teacher=None,
                                      data_preprocessor=dict(type='QwenVLDataPreprocessor',
                                                             geometry_tokens_in_predict=True))).eval()
    samples = [make_sample(0), make_sample(1)]
    out = model(**model.data_preprocessor(samples, False), mode='predict')
    num_frames = samples[0]['frames'].shape[0]
    for output in out:
        geometry = output['geometry_pred']
        assert set(geometry) == {'pose_enc', 'depth', 'depth_conf', 'metric_scale'}   # the alignment head adds none
        assert geometry['pose_enc'].shape == (num_frames, 9)
        assert geometry['depth'].shape[0] == num_frames and geometry['depth'].dim() == 3
        assert geometry['metric_scale'].shape == () and geometry['metric_scale'] > 0
    plain = MODELS.build(model_config(predict_geometry=True, teacher=None)).eval()
    with pytest.raises(ValueError, match='geometry_tokens_in_predict=True'):
        plain(**plain.data_preprocessor(samples, False), mode='predict')


@CONNECTORS.register_module(force=True)
class _ScaleFusion(torch.nn.Module):
    """Test fusion: records its inputs and scales the ViT tokens."""

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__()
        self.factor = factor
        self.seen = {}

    def forward(self, vision_embeds, frames, video_grid_thw, meta):
        self.seen = dict(shape=tuple(vision_embeds.shape), frames=tuple(frames.shape), grid=video_grid_thw.tolist(),
                         ids=[m['id'] for m in meta])
        return vision_embeds * self.factor


def test_fusion_extension_point():
    torch.manual_seed(0)
    plain = MODELS.build(model_config(objectives=(), teacher=None)).eval()
    data = plain.data_preprocessor([make_sample(0)], True)
    fused = MODELS.build(model_config(objectives=(), teacher=None, fusion=dict(type='_ScaleFusion'))).eval()
    fused.load_state_dict(plain.state_dict())
    with torch.no_grad():
        ref, same = plain(**data, mode='tensor').logits, fused(**data, mode='tensor').logits
    torch.testing.assert_close(ref, same)
    assert fused.fusion.seen == dict(shape=(32, 128), frames=(1, 4, 64, 64, 3), grid=[[2, 8, 8]], ids=['s0'])
    fused.fusion.factor = 0.0
    with torch.no_grad():
        assert not torch.allclose(ref, fused(**data, mode='tensor').logits)
    pdata = plain.data_preprocessor([make_sample(0)], False)
    fused.fusion.factor = 1.0
    assert fused(**pdata, mode='predict')[0]['prediction'] == plain(**pdata, mode='predict')[0]['prediction']


def test_paper_config_builds_on_meta_device():
    """The paper-scale config (Qwen3-VL-2B + VGGT-1B) builds without weights or downloads."""
    cfg = Config.fromfile(osp.join(ROOT, 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py'))
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone'].update(load_weights=False, processor_path='geokit://mllms/tiny-qwen3vl',
                                 config=cfg.qwen3vl_2b_arch.to_dict())
    # VGGT-1B without weights; the metric-depth model of MetricScaleTeacher needs a real local checkpoint
    assert model_cfg['teacher']['type'] == 'MetricScaleTeacher'
    model_cfg['teacher'] = dict(model_cfg['teacher']['geometry'], load_from=None)
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    assert model.backbone.num_layers == 28 and model.backbone.hidden_size == 2048
    assert model.taps['depth'].layers == (6, 14, 21, 28)
    assert set(model.heads) == {'pose', 'depth', 'scale', 'align'}
    assert next(model.heads.parameters()).device.type == 'meta'
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['heads']['lr_mult'] == pytest.approx(5.0)
    # GeoVR as published (configs/_base_/models/geovr_published_qwen3vl_2b.py), at the real widths
    def linears(module):
        return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert linears(model.heads['pose']) == [(1536, 2048), (1536, 1536), (9, 1536)]
    assert linears(model.heads['scale']) == [(512, 2048), (1, 512)]
    assert all(linears(mlp) == [(1024, 2048), (1024, 1024)] for mlp in model.heads['align'].mlps)
    assert all(head.frames_per_token == 1 for head in model.heads.values())   # frames fed twice
    assert model.heads['depth'].confidence is False and model.heads['pose'].fov_activation == 'relu'
    assert model.backbone.geometry_positions == 'frame_last_patch'
    assert (model.teacher.view.image_size, model.teacher.view.mode, model.teacher.feature_part) == \
        (504, 'longest', 'frame')
    assert type(model.losses['depth']).__name__ == 'TrimmedL1DepthLoss'
    assert model.losses['pose'].translation_clamp == 100.0
    assert model.backbone.processor.video_processor.max_frames == 64
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert any('visual.merger' in n for n in trainable) and not any('deepstack_merger' in n for n in trainable)


def test_published_geovr_objectives_train_on_the_tiny_backbone():
    """GeoVR's published objectives, frame repeat and teacher frames run a real step (tiny backbone, fake teacher)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/geovr_published_qwen3vl_2b.py'))
    model_cfg = model_config()
    model_cfg['objectives'] = cfg.model.to_dict()['objectives']
    model_cfg['data_preprocessor'] = cfg.model.to_dict()['data_preprocessor']
    model_cfg['teacher'] = dict(type='FakeTeacher', feature_layers=[4, 11, 17, 23])
    align = next(o for o in model_cfg['objectives'] if o['name'] == 'align')
    align['head'].update(out_channels=16, hidden_channels=16)                   # the fake teacher's width
    depth = next(o for o in model_cfg['objectives'] if o['name'] == 'depth')
    depth['head'].update(features=16, out_channels=[8, 16, 32, 32])
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    data = model.data_preprocessor([make_sample(0), make_sample(1)], True)
    losses = model(**data, mode='loss')
    assert {'loss_lm', 'loss_pose', 'loss_depth', 'loss_scale', 'loss_align'} <= set(losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert torch.isfinite(total)
    total.backward()
    assert model.heads['align'].mlps[0][1].weight.grad is not None
