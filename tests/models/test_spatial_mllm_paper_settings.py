"""Spatial-MLLM's published training settings in the paper-scale config (optimizer groups, frozen parts, pixels)."""
from __future__ import annotations

import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from geokit.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_optimizer_groups_follow_spatial_mllm_trainer():
    paper = Config.fromfile(osp.join(ROOT, 'projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py'))
    tiny = Config.fromfile(osp.join(ROOT, 'projects/spatial_mllm/config.py'))
    model = MODELS.build(tiny.model)
    optim = paper.optim_wrapper.to_dict()
    optim['type'] = 'OptimWrapper'                       # AMP needs a GPU; the parameter groups are the same
    optim.pop('dtype')
    wrapper = build_optim_wrapper(model, optim)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    named = dict(model.named_parameters())

    def group(fragment: str, suffix: str = '') -> dict:
        name = next(n for n in named if fragment in n and n.endswith(suffix) and named[n].requires_grad)
        return groups[id(named[name])]

    # trainer.py: mm_projector_lr (2e-5) for the connector and the ViT merger, lr 7e-6 for the LLM
    assert group('fusion.connector', 'weight')['lr'] == pytest.approx(2e-5)
    assert group('visual.merger', 'weight')['lr'] == pytest.approx(2e-5)
    assert group('language_model.layers.0.self_attn.q_proj', 'weight')['lr'] == pytest.approx(7e-6)
    # weight decay 0.1, none on biases
    assert group('language_model.layers.0.self_attn.q_proj', 'weight')['weight_decay'] == pytest.approx(0.1)
    assert group('language_model.layers.0.self_attn.q_proj', 'bias')['weight_decay'] == 0.0
    # frozen: the ViT blocks and the spatial encoder; trained: merger, connector, LLM
    assert not any(p.requires_grad for n, p in named.items() if '.visual.blocks.' in n)
    assert not any(p.requires_grad for n, p in named.items() if 'spatial_encoder' in n)
    assert paper.optim_wrapper.accumulative_counts == 8 and paper.train_dataloader.batch_size == 1
    assert paper.model.backbone.processor_kwargs['size'] == dict(shortest_edge=293216, longest_edge=324576)
    assert paper.model.fusion.spatial_encoder.layer == -1 and paper.model.fusion.spatial_encoder.feature_part == 'both'
