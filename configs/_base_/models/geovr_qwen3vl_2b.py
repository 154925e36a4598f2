# GeoVR on Qwen3-VL-2B-Instruct distilling VGGT-1B (paper settings). Paths are local; nothing is downloaded.
# `qwen3vl_2b_arch` is the public Qwen3-VL-2B-Instruct architecture; it is only used when the model is built
# without weights (load_weights=False, e.g. the meta-device config check in tests/models).
_base_ = ['../../teachers/vggt_1b.py']

qwen3vl_2b_path = 'checkpoints/Qwen3-VL-2B-Instruct'   # set model.backbone.path to your local copy
qwen3vl_2b_arch = dict(
    text_config=dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                     rms_norm_eps=1e-6, tie_word_embeddings=True,
                     rope_parameters=dict(rope_type='default', rope_theta=5000000.0, mrope_section=[24, 20, 20],
                                          mrope_interleaved=True)),
    vision_config=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2048,
                       num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17]),
    image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
    tie_word_embeddings=True,
)
teacher_layers = [4, 11, 17, 23]
teacher_num_layers = 24
teacher_dim = 2048                 # VGGT-1B frame + global halves
video_tap = dict(tokens='video', teacher_layers=teacher_layers, teacher_num_layers=teacher_num_layers)

model = dict(
    type='GeometricMLLM',
    backbone=dict(type='Qwen3VLBackbone', path=qwen3vl_2b_path, load_weights=True, config=None, dtype='float32',
                  attn_implementation='sdpa', gradient_checkpointing=True),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=True),
    teacher={{_base_.teacher}},
    objectives=[
        dict(name='pose', tap=dict(tokens='camera'), head=dict(type='CameraHead'),
             loss=dict(type='CameraPoseLoss', weight_t=1.0, weight_q=1.0, weight_fov=0.5, loss_weight=2.5)),
        dict(name='depth', tap=video_tap, head=dict(type='DPTDepthHead', features=256,
                                                    out_channels=[256, 512, 1024, 1024]),
             loss=dict(type='ConfidenceDepthLoss', alpha=0.2, grad_weight=1.0, loss_weight=1.0)),
        dict(name='scale', tap=dict(tokens='scale'), head=dict(type='ScaleHead'),
             loss=dict(type='MetricScaleLoss', log1p=True, loss_weight=1.0)),
        dict(name='align', tap=video_tap,
             head=dict(type='FeatureAlignmentHead', out_channels=teacher_dim, num_layers=len(teacher_layers)),
             loss=dict(type='FeatureAlignmentLoss', variant='cosine', loss_weight=1.0)),
    ],
    max_new_tokens=16,
)
