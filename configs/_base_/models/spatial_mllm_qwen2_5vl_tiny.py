# Spatial-MLLM on the embedded tiny Qwen2.5-VL (random init, tokenizer trained on SynthVSI text): the ViT tokens are
# fused (added) with the tokens of a frozen tiny VGGT aggregator through Spatial-MLLM's MLP-add connector.
# No teacher and no geometric objectives: the model trains with the LM loss only (SFT).
_base_ = ['../../teachers/vggt_tiny.py']

model = dict(
    type='GeometricMLLM',
    backbone=dict(type='Qwen25VLBackbone', path='geokit://mllms/tiny-qwen2_5vl', load_weights=False, init_seed=0),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=False,
                           geometry_tokens_in_predict=False),
    fusion=dict(
        type='SpatialEncoderFusion',
        # the tiny VGGT's aggregator, last layer, frame + global halves (2 x 64 channels), 112 px (8 x 8 patches);
        # the connector resizes its 8 x 8 grid to the ViT's 14 x 14 patch grid
        spatial_encoder=dict(type='VGGTSpatialEncoder', load_from={{_base_.teacher.load_from}}, layer=-1, feature_part='both',
                             image_size=112, net={{_base_.vggt_tiny_net}}),
        # llm_dim, spatial_merge_size, temporal_patch_size: the backbone's (GeometricMLLM passes them)
        connector=dict(type='MLPAddConnector'),
        match_vit_grid=False),
    lm_loss_weight=1.0,
    max_new_tokens=16,  # VSI-Bench evaluation: greedy, at most 16 new tokens
)
