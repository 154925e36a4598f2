# GeoVR as published (github WHB139426/GeoVR-MLLM: models/qwen3vl_geo.py, models/*_head.py, utils/preprocess.py,
# scripts/train.sh): Qwen3-VL-2B-Instruct distilling VGGT-1B, every setting the authors' code trains with. Each
# differs from geokit's default (configs/_base_/models/geovr_qwen3vl_2b.py) by a named option; docs/fidelity.md
# lists them with the reason for each default.
_base_ = ['./geovr_qwen3vl_2b.py']

teacher_layers = [4, 11, 17, 23]
teacher_num_layers = 24
teacher_dim = 1024                 # VGGT-1B frame-attention half only (get_geo_features_vggt: [..., :1024])
video_tap = dict(tokens='video', teacher_layers=teacher_layers, teacher_num_layers=teacher_num_layers)

# VGGT-1B on the frames Qwen saw, longest edge 504, other side a multiple of 28, no crop (preprocess_geo_frames)
teacher = dict(
    type='VGGTTeacher',
    load_from='checkpoints/VGGT-1B',
    image_size=504,
    mode='longest',
    feature_layers=teacher_layers,
    feature_part='frame',
    with_points=False,
    frames_chunk_size=8,
)

# scripts/train.sh: 32 frames, video pixels 4*16*32*32 .. 32*300*32*32; get_repeat_video_inputs feeds every frame
# twice with the frame and total-pixel limits doubled
video_max_frames = 32
video_processor = dict(size=dict(longest_edge=2 * video_max_frames * 300 * 32 * 32, shortest_edge=4 * 16 * 32 * 32),
                       min_frames=4, max_frames=2 * video_max_frames)

model = dict(
    backbone=dict(processor_kwargs=video_processor,
                  geometry_positions='frame_last_patch',      # Qwen3VLModel.get_rope_index: frame's last patch
                  # camera_token = nn.Embedding(2, D): row 0 for the first frame, row 1 for the others
                  geometry_tokens=dict(camera='<|geo_camera|>', scale='<|geo_scale|>',
                                       camera_first='<|geo_camera_first|>'),
                  # training/train.py set_model (tune_mm_vision False, tune_mm_mlp True): the whole ViT is frozen
                  # but visual.merger, so DeepStack's mergers stay frozen too (geokit's default trains them)
                  freeze=[r'^model\.visual\.(patch_embed|pos_embed|blocks|deepstack_merger_list)\.']),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=True, repeat_frames=2,
                           teacher_frames='processor'),
    teacher=teacher,
    objectives=[
        # CameraDec: LayerNorm, 2 x (Linear 1536, GELU), ReLU on the FoV; _compute_camera_loss: |dt| clamped at 100
        dict(name='pose', tap=dict(tokens='camera'),
             head=dict(type='CameraHead', hidden_channels=1536, hidden_layers=2, fov_activation='relu'),
             loss=dict(type='CameraPoseLoss', weight_t=1.0, weight_q=1.0, weight_fov=0.5, translation_clamp=100.0,
                       loss_weight=2.5)),
        # DenseHead returns no confidence: _compute_depth_loss = trimmed L1 (top 2 % dropped) + gradient term
        dict(name='depth', tap=video_tap,
             head=dict(type='DPTDepthHead', features=256, out_channels=[256, 512, 1024, 1024], confidence=False),
             loss=dict(type='TrimmedL1DepthLoss', keep_quantile=0.98, min_elements=1000, hard_max=100.0,
                       grad_weight=1.0, num_scales=4, loss_weight=1.0)),
        # ScaleHead: LayerNorm, Linear 512, GELU, Linear 1, exp; F.l1_loss(log1p(gt), log1p(pred))
        dict(name='scale', tap=dict(tokens='scale'), head=dict(type='ScaleHead', hidden_channels=512),
             loss=dict(type='MetricScaleLoss', log1p=True, loss_weight=1.0)),
        # DistillHead (1024 wide) after resizing to the teacher grid avg-pooled 2x2 (geo_avg_2d); 1 - cos
        dict(name='align', tap=video_tap,
             head=dict(type='FeatureAlignmentHead', out_channels=teacher_dim, hidden_channels=teacher_dim,
                       num_layers=len(teacher_layers), teacher_pool='floor', resize='before_mlp'),
             loss=dict(type='FeatureAlignmentLoss', variant='cosine', loss_weight=1.0)),
    ],
)
