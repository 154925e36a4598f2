# Spatial-MLLM at paper scale: Qwen2.5-VL-3B-Instruct + the frozen VGGT-1B aggregator (last layer, frame + global
# halves = 2 x 1024 channels) fused by the MLP-add connector (Spatial-MLLM's spatial_embeds_layer_idx=-1, mlp_add).
# The ViT and the spatial encoder are frozen; the connector and the LLM train. Paths are local; nothing downloads.
qwen25vl_3b_path = 'checkpoints/Qwen2.5-VL-3B-Instruct'   # model.backbone.path
vggt_1b_path = 'checkpoints/VGGT-1B'                      # model.fusion.spatial_encoder.load_from
llm_dim = 2048                                            # Qwen2.5-VL-3B text hidden size
# The public Qwen2.5-VL-3B-Instruct architecture (its config.json in transformers 5 field names); used only when
# the model is built without weights (load_weights=False: meta-device checks, tools/benchmark.py --scale paper).
qwen25vl_3b_arch = dict(
    text_config=dict(vocab_size=151936, hidden_size=llm_dim, intermediate_size=11008, num_hidden_layers=36,
                     num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
                     rms_norm_eps=1e-6, hidden_act='silu', tie_word_embeddings=True, use_sliding_window=False,
                     sliding_window=32768, max_window_layers=70,
                     rope_parameters=dict(rope_type='default', rope_theta=1000000.0, mrope_section=[16, 24, 24])),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=llm_dim, window_size=112,
                       fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act='silu'),
    image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
    tie_word_embeddings=True,
)

model = dict(
    type='GeometricMLLM',
    backbone=dict(type='Qwen25VLBackbone', path=qwen25vl_3b_path, load_weights=True, dtype='float32',
                  gradient_checkpointing=True),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=False,
                           geometry_tokens_in_predict=False),
    fusion=dict(
        type='SpatialEncoderFusion',
        spatial_encoder=dict(type='VGGTSpatialEncoder', load_from=vggt_1b_path, layer=-1, feature_part='both',
                             image_size=518),                  # network defaults = VGGT-1B
        connector=dict(type='MLPAddConnector'),     # sizes from the backbone; hidden = merged width (2 * 2048 * 4)
        match_vit_grid=True),                                  # VGGT sees the ViT's resolution (14 px patches)
    lm_loss_weight=1.0,
    max_new_tokens=16,
)
