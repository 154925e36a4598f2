# The tiny VGGT of the embedded default (112 px SynthVSI frames, 8 x 8 patches), loading the checkpoint shipped in
# geokit/assets/teachers (trained by projects/tiny_teacher/configs/vggt_tiny_synthvsi_pan.py, see docs/teachers.md).
vggt_tiny_net = dict(
    img_size=112, patch_size=14, embed_dim=64, depth=4, num_heads=4, num_register_tokens=4,
    patch_embed='dinov2', patch_embed_cfg=dict(depth=2, num_heads=4),
    camera_head=dict(trunk_depth=1, num_heads=4),
    dpt_head=dict(features=16, out_channels=(16, 32, 48, 48), intermediate_layer_idx=(0, 1, 2, 3)),
)
teacher = dict(
    type='VGGTTeacher',
    load_from='geokit/assets/teachers/vggt_tiny_synthvsi.safetensors',
    image_size=112,
    mode='crop',
    feature_layers=[0, 1, 2, 3],
    feature_part='both',
    **vggt_tiny_net,
)
