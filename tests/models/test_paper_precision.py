"""The paper configs' precision: fp32 master weights, bf16 compute (autocast through ``AmpOptimWrapper``).

A pure-bf16 backbone trained by AdamW at lr 2e-5 loses most updates to rounding (the bf16 spacing of a weight of
magnitude 0.02 is ~1.2e-4): this trains a tiny model with each paper config's backbone dtype and optimizer
wrapper and checks that the decoder weights move and that the compute runs in bf16.
"""
from __future__ import annotations

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import geokit.engine  # noqa: F401  (registers AutocastOptimWrapper)
from geokit.registry import MODELS

from .conftest import make_sample, model_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = {'geovr': 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py',
         'spatial_mllm': 'projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py'}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_precision_changes_the_weights_in_bf16_compute(name):
    init_default_scope('geokit')
    cfg = Config.fromfile(osp.join(REPO, PAPER[name]))
    backbone_dtype = cfg.model.backbone.get('dtype', 'float32')
    model_cfg = model_config()
    model_cfg['backbone']['dtype'] = backbone_dtype
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict())
    optim_cfg.pop('accumulative_counts', None)        # one optimizer step per train_step in this check
    optim_cfg['optimizer']['lr'] = 2e-5
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    assert optim_cfg['dtype'] == 'bfloat16'

    layers = model.backbone.decoder_layers
    compute_dtypes = set()
    hook = layers[0].mlp.down_proj.register_forward_hook(lambda m, a, out: compute_dtypes.add(out.dtype))
    before = [p.detach().clone() for p in layers.parameters()]
    batches = [[make_sample(0)], [make_sample(1)]]
    for step in range(10):
        log = model.train_step(batches[step % 2], optim_wrapper)
        assert torch.isfinite(log['loss'])
    hook.remove()
    changed = sum(int((p.detach() != b).sum()) for p, b in zip(layers.parameters(), before))
    total = sum(b.numel() for b in before)
    assert changed / total >= 0.99, f'only {changed / total:.1%} of the decoder weights changed in 10 steps'
    assert compute_dtypes == {torch.bfloat16}, 'the decoder must compute in bf16 (autocast)'
    assert all(p.dtype == torch.float32 for p in layers.parameters()), 'master weights must stay fp32'
