"""Fixture: parameter name -> shape of the official ``facebook/VGGT-1B`` ``model.safetensors``.

Written from the public architecture (facebookresearch/vggt: ``VGGT(img_size=518, patch_size=14, embed_dim=1024)``
with an ``Aggregator`` over a DINOv2 ViT-L/14-reg patch embedding, ``CameraHead(dim_in=2048)``, two ``DPTHead``s
(points: output_dim 4, depth: output_dim 2) and a ``TrackHead``), independently of geokit's module code: the
repeated blocks come from small generators, everything else is listed explicitly. No download.
"""
from __future__ import annotations

C = 1024          # aggregator / DINOv2 width
C2 = 2 * C        # head input width (frame ++ global)
HEAD_DIM = 64     # 1024 / 16 heads
GRID = 518 // 14  # 37 x 37 patches at 518 px


def _block(prefix: str, dim: int, qk_norm: bool, layer_scale: bool = True, mlp_ratio: int = 4) -> dict:
    params = {
        f'{prefix}.norm1.weight': (dim,), f'{prefix}.norm1.bias': (dim,),
        f'{prefix}.attn.qkv.weight': (3 * dim, dim), f'{prefix}.attn.qkv.bias': (3 * dim,),
        f'{prefix}.attn.proj.weight': (dim, dim), f'{prefix}.attn.proj.bias': (dim,),
        f'{prefix}.norm2.weight': (dim,), f'{prefix}.norm2.bias': (dim,),
        f'{prefix}.mlp.fc1.weight': (mlp_ratio * dim, dim), f'{prefix}.mlp.fc1.bias': (mlp_ratio * dim,),
        f'{prefix}.mlp.fc2.weight': (dim, mlp_ratio * dim), f'{prefix}.mlp.fc2.bias': (dim,),
    }
    if qk_norm:
        for name in ('q_norm', 'k_norm'):
            params[f'{prefix}.attn.{name}.weight'] = (HEAD_DIM,)
            params[f'{prefix}.attn.{name}.bias'] = (HEAD_DIM,)
    if layer_scale:
        params[f'{prefix}.ls1.gamma'] = (dim,)
        params[f'{prefix}.ls2.gamma'] = (dim,)
    return params


def _conv(prefix: str, out_ch: int, in_ch: int, k: int, bias: bool = True) -> dict:
    params = {f'{prefix}.weight': (out_ch, in_ch, k, k)}
    if bias:
        params[f'{prefix}.bias'] = (out_ch,)
    return params


def _dpt(prefix: str, output_dim: int, features: int = 256, out_channels=(256, 512, 1024, 1024)) -> dict:
    params = {f'{prefix}.norm.weight': (C2,), f'{prefix}.norm.bias': (C2,)}
    for i, oc in enumerate(out_channels):
        params.update(_conv(f'{prefix}.projects.{i}', oc, C2, 1))
    # ConvTranspose2d weights are (in, out, k, k)
    params[f'{prefix}.resize_layers.0.weight'] = (out_channels[0], out_channels[0], 4, 4)
    params[f'{prefix}.resize_layers.0.bias'] = (out_channels[0],)
    params[f'{prefix}.resize_layers.1.weight'] = (out_channels[1], out_channels[1], 2, 2)
    params[f'{prefix}.resize_layers.1.bias'] = (out_channels[1],)
    params.update(_conv(f'{prefix}.resize_layers.3', out_channels[3], out_channels[3], 3))
    for i, oc in enumerate(out_channels, start=1):
        params.update(_conv(f'{prefix}.scratch.layer{i}_rn', features, oc, 3, bias=False))
    for i in range(1, 5):
        ref = f'{prefix}.scratch.refinenet{i}'
        params.update(_conv(f'{ref}.out_conv', features, features, 1))
        units = ('resConfUnit2',) if i == 4 else ('resConfUnit1', 'resConfUnit2')
        for unit in units:
            params.update(_conv(f'{ref}.{unit}.conv1', features, features, 3))
            params.update(_conv(f'{ref}.{unit}.conv2', features, features, 3))
    params.update(_conv(f'{prefix}.scratch.output_conv1', features // 2, features, 3))
    params.update(_conv(f'{prefix}.scratch.output_conv2.0', 32, features // 2, 3))
    params.update(_conv(f'{prefix}.scratch.output_conv2.2', output_dim, 32, 1))
    return params


def vggt_1b_params(with_points: bool = True) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every VGGT-1B tensor that geokit builds (all but ``track_head.*``)."""
    params = {
        'aggregator.camera_token': (1, 2, 1, C),
        'aggregator.register_token': (1, 2, 4, C),
        'aggregator.patch_embed.cls_token': (1, 1, C),
        'aggregator.patch_embed.pos_embed': (1, GRID * GRID + 1, C),
        'aggregator.patch_embed.register_tokens': (1, 4, C),
        'aggregator.patch_embed.mask_token': (1, C),
        'aggregator.patch_embed.patch_embed.proj.weight': (C, 3, 14, 14),
        'aggregator.patch_embed.patch_embed.proj.bias': (C,),
        'aggregator.patch_embed.norm.weight': (C,),
        'aggregator.patch_embed.norm.bias': (C,),
        'camera_head.token_norm.weight': (C2,), 'camera_head.token_norm.bias': (C2,),
        'camera_head.trunk_norm.weight': (C2,), 'camera_head.trunk_norm.bias': (C2,),
        'camera_head.empty_pose_tokens': (1, 1, 9),
        'camera_head.embed_pose.weight': (C2, 9), 'camera_head.embed_pose.bias': (C2,),
        'camera_head.poseLN_modulation.1.weight': (3 * C2, C2), 'camera_head.poseLN_modulation.1.bias': (3 * C2,),
        'camera_head.pose_branch.fc1.weight': (C2 // 2, C2), 'camera_head.pose_branch.fc1.bias': (C2 // 2,),
        'camera_head.pose_branch.fc2.weight': (9, C2 // 2), 'camera_head.pose_branch.fc2.bias': (9,),
    }
    for i in range(24):
        params.update(_block(f'aggregator.patch_embed.blocks.{i}', C, qk_norm=False))
        params.update(_block(f'aggregator.frame_blocks.{i}', C, qk_norm=True))
        params.update(_block(f'aggregator.global_blocks.{i}', C, qk_norm=True))
    for i in range(4):
        params.update(_block(f'camera_head.trunk.{i}', C2, qk_norm=False))
    params.update(_dpt('depth_head', output_dim=2))
    if with_points:
        params.update(_dpt('point_head', output_dim=4))
    return params
