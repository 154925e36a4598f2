# GeoVR on the embedded tiny Qwen3-VL (random init, tokenizer trained on SynthVSI text) distilling the tiny VGGT
# teacher; metric scale from SynthVSI ground truth (OracleTeacher) aligned to the teacher's depth.
# Objectives are config only: delete an entry to drop it (no code change).
_base_ = ['../../teachers/vggt_tiny.py']

teacher_layers = [0, 1, 2, 3]      # tiny VGGT aggregator layers distilled (VGGT-1B: [4, 11, 17, 23] of 24)
teacher_num_layers = 4
teacher_dim = 128                  # tiny VGGT embed_dim 64, frame + global halves
video_tap = dict(tokens='video', teacher_layers=teacher_layers, teacher_num_layers=teacher_num_layers)

model = dict(
    type='GeometricMLLM',
    backbone=dict(type='Qwen3VLBackbone', path='geokit://mllms/tiny-qwen3vl', load_weights=False, init_seed=0),
    data_preprocessor=dict(type='QwenVLDataPreprocessor', insert_geometry_tokens=True,
                           geometry_tokens_in_predict=False),
    teacher={{_base_.teacher}},
    scale_teacher=dict(type='OracleTeacher', image_size=112, patch_size=14, mode='crop'),
    objectives=[
        dict(name='pose', tap=dict(tokens='camera'), head=dict(type='CameraHead'),
             loss=dict(type='CameraPoseLoss', weight_t=1.0, weight_q=1.0, weight_fov=0.5, loss_weight=2.5)),
        dict(name='depth', tap=video_tap, head=dict(type='DPTDepthHead', features=32, out_channels=[16, 32, 64, 64]),
             loss=dict(type='ConfidenceDepthLoss', alpha=0.2, grad_weight=1.0, loss_weight=1.0)),
        dict(name='scale', tap=dict(tokens='scale'), head=dict(type='ScaleHead'),
             loss=dict(type='MetricScaleLoss', log1p=True, loss_weight=1.0)),
        dict(name='align', tap=video_tap,
             head=dict(type='FeatureAlignmentHead', out_channels=teacher_dim, num_layers=len(teacher_layers)),
             loss=dict(type='FeatureAlignmentLoss', variant='cosine', loss_weight=1.0)),
    ],
    lm_loss_weight=1.0,
    max_new_tokens=16,  # VSI-Bench evaluation: greedy, at most 16 new tokens
)
