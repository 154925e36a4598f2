# Hybrid, embedded default: GeoVR's four geometric objectives (projects/geovr/config.py: tiny Qwen3-VL, tiny VGGT
# teacher, SynthVSI) plus Spatial-MLLM's dual-encoder fusion (frozen tiny VGGT aggregator + MLP-add connector).
# Config only: the fusion is one more model key.
#   python tools/train.py projects/spatial_mllm/hybrid_geovr.py
_base_ = ['../geovr/config.py']

model = dict(
    fusion=dict(
        type='SpatialEncoderFusion',
        spatial_encoder=dict(type='VGGTSpatialEncoder', load_from=None, layer=-1, feature_part='both',
                             image_size=112, net={{_base_.vggt_tiny_net}}),
        connector=dict(type='MLPAddConnector'),                # sizes from the backbone
        match_vit_grid=False))
