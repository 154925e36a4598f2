"""VGGT weight compatibility: official parameter table, strict loading errors."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from geokit.models.teachers.vggt import VGGT_1B, CheckpointMismatchError, VGGTNet, load_vggt_weights
from geokit.models.teachers.vggt.checkpoint import check_strict_match, save_vggt_weights

from .vggt_1b_params import vggt_1b_params


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def test_vggt_1b_matches_official_parameter_table():
    with torch.device('meta'):
        net = VGGTNet(**VGGT_1B)
    table = vggt_1b_params()
    assert _shapes(net) == table  # names and shapes, exactly
    assert len(table) == 1403
    assert sum(torch.Size(s).numel() for s in table.values()) == 1_190_596_120
    # the official file also carries the tracking head, which geokit skips explicitly; any other key is an error
    check_strict_match(_shapes(net), table, 'fixture')
    with pytest.raises(CheckpointMismatchError, match='aggregator.frame_blocks.23.attn.q_norm.weight'):
        check_strict_match(_shapes(net), {k: v for k, v in table.items() if 'frame_blocks.23.attn.q_norm.w' not in k},
                           'fixture')


def test_vggt_1b_without_point_head_matches_table():
    with torch.device('meta'):
        net = VGGTNet(**{**VGGT_1B, 'with_points': False})
    assert _shapes(net) == vggt_1b_params(with_points=False)


def _tiny_net(tiny_vggt_cfg: dict, with_points: bool = True) -> VGGTNet:
    cfg = {k: v for k, v in tiny_vggt_cfg.items() if k not in ('image_size', 'feature_layers')}
    return VGGTNet(with_points=with_points, **cfg)


def test_strict_loading(tmp_path, tiny_vggt_cfg):
    torch.manual_seed(0)
    source = _tiny_net(tiny_vggt_cfg)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    state['track_head.feature_extractor.norm.weight'] = torch.ones(4)  # official extra head: skipped
    save_file(state, str(tmp_path / 'model.safetensors'))

    target = _tiny_net(tiny_vggt_cfg, with_points=False)
    skipped = load_vggt_weights(target, tmp_path)  # a directory holding model.safetensors
    assert 'track_head.feature_extractor.norm.weight' in skipped
    assert any(k.startswith('point_head.') for k in skipped)
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key

    bad = dict(state)
    bad['aggregator.unknown_weight'] = torch.zeros(2)
    del bad['camera_head.embed_pose.bias']
    bad['depth_head.norm.weight'] = torch.ones(3)
    save_file(bad, str(tmp_path / 'bad.safetensors'))
    with pytest.raises(CheckpointMismatchError) as error:
        load_vggt_weights(_tiny_net(tiny_vggt_cfg), tmp_path / 'bad.safetensors')
    message = str(error.value)
    assert 'aggregator.unknown_weight' in message and 'camera_head.embed_pose.bias' in message
    assert 'depth_head.norm.weight: checkpoint [3] vs model [64]' in message

    with pytest.raises(FileNotFoundError, match='load_from'):
        load_vggt_weights(target, tmp_path / 'missing')


def test_save_and_load_with_prefix(tmp_path, tiny_vggt_cfg):
    torch.manual_seed(1)
    net = _tiny_net(tiny_vggt_cfg)
    save_vggt_weights(net, tmp_path / 'exported.safetensors')
    prefixed = {f'vggt.{k}': v.contiguous() for k, v in net.state_dict().items()}
    prefixed['data_preprocessor.dummy'] = torch.zeros(1)
    save_file(prefixed, str(tmp_path / 'train_ckpt.safetensors'))
    for path, prefix in ((tmp_path / 'exported.safetensors', ''), (tmp_path / 'train_ckpt.safetensors', 'vggt.')):
        other = _tiny_net(tiny_vggt_cfg)
        load_vggt_weights(other, path, prefix=prefix)
        assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), net.state_dict().values()))
