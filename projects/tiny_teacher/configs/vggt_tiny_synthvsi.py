# Train a tiny VGGT teacher on SynthVSI ground truth (camera + confidence depth losses, VGGT's normalisation), from
# VGGT's initialisation. The shipped teacher adds a pan curriculum and from-scratch init: vggt_tiny_synthvsi_pan.py.
#   python projects/tiny_teacher/tools/train_teacher.py projects/tiny_teacher/configs/vggt_tiny_synthvsi.py \
#       --export /tmp/vggt_tiny_plain.safetensors
_base_ = ['../../../configs/_base_/default_runtime.py', '../../../configs/_base_/schedules/adamw_iters.py',
          '../../../configs/teachers/vggt_tiny.py']
custom_imports = dict(imports=['projects.tiny_teacher.tiny_teacher', 'geokit.models', 'geokit.datasets'],
                      allow_failed_imports=False)

model = dict(
    type='VGGTGeometryModel',
    net={{_base_.vggt_tiny_net}},
    image_size=112,
    mode='crop',
    train_frames=(2, 6),
    camera_loss=dict(type='CameraPoseLoss', weight_t=1.0, weight_q=1.0, weight_fov=0.5),
    depth_loss=dict(type='ConfidenceDepthLoss', alpha=0.2, grad_weight=1.0, num_scales=4),
    camera_gamma=0.6,
)

# a larger SynthVSI than the embedded default's (240 training / 40 validation scenes): pose generalises from
# many rooms, not from 24
data_root = 'data/synthvsi_teacher'
synthvsi = dict(num_scenes=320, frames=16, resolution=(112, 112), seed=1)
frame_sampler = dict(type='UniformSampler', num_frames=16)
# batch size 1, as the shipped teacher was trained; geometry_collate hands the model one list entry per sample
train_dataloader = dict(
    batch_size=1, num_workers=0, collate_fn=dict(type='geokit.geometry_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))
# evaluation set of train_teacher.py (not a runner val loop) (depth AbsRel after median scaling, pose AUC@30)
teacher_eval_dataloader = dict(
    batch_size=1, num_workers=0, collate_fn=dict(type='geokit.geometry_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='val.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))

max_iters = 3000
warmup_iters = 100
lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=0.01), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min_ratio=0.01),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(interval=250, max_keep_ckpts=2), logger=dict(interval=10))
randomness = dict(seed=0)
