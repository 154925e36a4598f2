"""tools/rehearse.py's building blocks: truncation keeps the released widths, layer maps, the truncated teacher.

The rehearsal itself builds the real widths (a 151936 x 2048 embedding) and is run by hand (docs/benchmarks.md).
"""
from __future__ import annotations

import torch

from geokit.benchmarking.published import published_config
from geokit.benchmarking.rehearsal import (
    TruncatedLayerTeacher,
    paper_backbone_config,
    truncated_layer,
    truncated_vggt,
)


def test_truncated_layers_are_proportional_and_in_range():
    assert [truncated_layer(i, 24, 1) for i in (4, 11, 17, 23)] == [0, 0, 0, 0]
    assert [truncated_layer(i, 24, 4) for i in (4, 11, 17, 23)] == [0, 1, 2, 3]
    assert [truncated_layer(i, 24, 24) for i in (4, 11, 17, 23)] == [4, 11, 17, 23]
    assert truncated_layer(-1, 24, 2) == 1


def test_paper_backbone_keeps_the_release_widths(tmp_path):
    for kind in ('Qwen3VLBackbone', 'Qwen25VLBackbone'):
        cfg, full = paper_backbone_config(dict(type=kind, dtype='float32'), 2, 1, str(tmp_path), str(tmp_path))
        release = published_config(kind)
        text = cfg['config'].get('text_config', cfg['config'])
        assert text['num_hidden_layers'] == 2 and cfg['config']['vision_config']['depth'] == 1
        assert text['hidden_size'] == 2048 and text['vocab_size'] == 151936
        assert full == {'llm': (release.get('text_config') or release)['num_hidden_layers'],
                        'vit': release['vision_config']['depth']}
        assert cfg['load_weights'] is False and cfg['processor_path'] == str(tmp_path)
    assert full == {'llm': 36, 'vit': 32}                        # Qwen2.5-VL-3B


def test_truncated_vggt_serves_the_full_layer_indices():
    cfg, layer_map = truncated_vggt(dict(type='VGGTTeacher', feature_layers=[4, 11, 17, 23]), depth=2)
    assert layer_map == {4: 0, 11: 0, 17: 1, 23: 1} and cfg['feature_layers'] == [0, 1]
    assert cfg['embed_dim'] == 1024 and cfg['depth'] == 2 and cfg['load_from'] is None
    tiny = dict(type='VGGTTeacher', img_size=56, patch_size=14, embed_dim=16, depth=2, num_heads=2,
                num_register_tokens=4, patch_embed='conv', image_size=56, feature_layers=[0, 1],
                camera_head=dict(trunk_depth=1, num_heads=2), with_points=False,
                dpt_head=dict(features=8, out_channels=(8, 8, 8, 8), intermediate_layer_idx=(0, 1, 1, 1)))
    teacher = TruncatedLayerTeacher(tiny, layer_map)
    frames = torch.randint(0, 256, (1, 2, 56, 56, 3), dtype=torch.uint8)
    targets = teacher(frames, [dict(id='a')])
    assert sorted(targets.features) == [4, 11, 17, 23]
    assert torch.equal(targets.features[4], targets.features[11]) and targets.depth is not None
