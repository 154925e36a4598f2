# Spatial-MLLM at paper scale: Qwen2.5-VL-3B-Instruct + the frozen VGGT-1B aggregator (last layer, frame + global
# halves = 2 x 1024 channels) fused by the MLP-add connector (Spatial-MLLM's spatial_embeds_layer_idx=-1, mlp_add).
# The ViT and the spatial encoder are frozen; the connector and the LLM train. Paths are local; nothing downloads.
qwen25vl_3b_path = 'checkpoints/Qwen2.5-VL-3B-Instruct'   # model.backbone.path
vggt_1b_path = 'checkpoints/VGGT-1B'                      # model.fusion.spatial_encoder.load_from
llm_dim = 2048                                            # Qwen2.5-VL-3B text hidden size

model = dict(
    type='GeometricMLLM',
    backbone=dict(type='Qwen25VLBackbone', path=qwen25vl_3b_path, load_weights=True, dtype='bfloat16',
                  gradient_checkpointing=True),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=False,
                           geometry_tokens_in_predict=False),
    fusion=dict(
        type='SpatialEncoderFusion',
        spatial_encoder=dict(type='VGGTSpatialEncoder', load_from=vggt_1b_path, layer=-1, feature_part='both',
                             image_size=518),                  # network defaults = VGGT-1B
        connector=dict(type='MLPAddConnector', llm_dim=llm_dim),  # hidden = merged width (2 * 2048 * 4)
        match_vit_grid=True),                                  # VGGT sees the ViT's resolution (14 px patches)
    lm_loss_weight=1.0,
    max_new_tokens=16,
)
