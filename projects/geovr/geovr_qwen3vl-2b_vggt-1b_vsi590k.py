# GeoVR paper settings: Qwen3-VL-2B-Instruct + VGGT-1B teacher on VSI-590K, evaluated on VSI-Bench, with GeoVR's
# published losses, heads, token positions and frame handling (configs/_base_/models/geovr_published_qwen3vl_2b.py;
# geokit's alternatives: docs/fidelity.md).
# 32 frames, lr 2e-5 (heads 1e-4), loss weights camera 2.5 / depth 1 / align 1 / scale 1, bf16, ZeRO-2-style
# sharding (FSDP SHARD_GRAD_OP: gradients + optimizer states sharded, parameters replicated).
#   torchrun --nproc-per-node 8 tools/train.py projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py --launcher pytorch
# Every path below is local and must exist; a missing one fails with the config key to set.
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/models/geovr_published_qwen3vl_2b.py',
    '../../configs/_base_/strategies.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

qwen3vl_2b_path = 'checkpoints/Qwen3-VL-2B-Instruct'          # model.backbone.path
metric_depth_path = 'checkpoints/metric-depth'                 # model.teacher.metric_depth.path (HF depth model)
vsi590k_root = 'data/vsi590k'                                  # train_dataloader.dataset.data_root
vsibench_root = 'data/vsibench'                                # test_dataloader.dataset.data_root

model = dict(
    backbone=dict(path=qwen3vl_2b_path),
    # VGGT-1B (model.teacher.geometry.load_from, 'checkpoints/VGGT-1B' from configs/teachers/vggt_1b.py) for
    # pose/depth/features; metric scale by aligning its depth to a metric depth network
    teacher=dict(_delete_=True, type='MetricScaleTeacher',
                 geometry={{_base_.teacher}}, metric_depth=dict(path=metric_depth_path)),
)

num_frames = 32
frame_sampler = dict(type='UniformSampler', num_frames=num_frames)
train_dataloader = dict(
    batch_size=1, num_workers=4, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=vsi590k_root,
                 frame_sampler=frame_sampler, load_geometry=False, skip_bad_videos=True))
test_dataloader = dict(
    batch_size=1, num_workers=4, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', data_root=vsibench_root,
                 frame_sampler=frame_sampler, load_geometry=False))
test_evaluator = dict(type='VSIBenchMetric')
val_dataloader = None
val_evaluator = None
val_cfg = None

max_iters = 20000
warmup_iters = 600
lr = 2e-5
head_lr = 1e-4
optim_wrapper = dict(
    type='AutocastOptimWrapper', dtype='bfloat16',  # fp32 master weights, bf16 compute (docs/scale_out.md)
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={'heads': dict(lr_mult=head_lr / lr)}),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min_ratio=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
runner_type = 'FlexibleRunner'
strategy = _base_.fsdp_zero2  # or fsdp_zero3 / deepspeed_zero2 / deepspeed_zero3 (docs/scale_out.md)
default_hooks = dict(checkpoint=dict(interval=2000), logger=dict(interval=20))
