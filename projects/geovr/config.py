# GeoVR, embedded default: SynthVSI + tiny Qwen3-VL + tiny VGGT teacher, all four geometric objectives.
#   python tools/train.py projects/geovr/config.py              # trains on a 2-core CPU, then evaluates
#   python tools/test.py projects/geovr/config.py work_dirs/config/iter_<N>.safetensors
#   python tools/export_hf.py projects/geovr/config.py work_dirs/config/iter_<N>.safetensors --out exported/
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/models/geovr_qwen3vl_tiny.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

# ---------------------------------------------------------------- data (same SynthVSI as the teacher's config)
data_root = 'data/synthvsi'
synthvsi = dict(num_scenes=32, frames=16, resolution=(112, 112), seed=0)
num_frames = 8
frame_sampler = dict(type='UniformSampler', num_frames=num_frames)
train_dataloader = dict(
    batch_size=2, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))
test_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))
test_evaluator = dict(type='VSIBenchMetric')
test_cfg = dict(type='TestLoop')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
val_cfg = dict(type='ValLoop')

# ---------------------------------------------------------------- schedule: train, then evaluate on SynthVSI test
max_iters = 300
warmup_iters = 20
lr = 1e-3
optim_wrapper = dict(
    optimizer=dict(lr=lr, weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={'heads': dict(lr_mult=1.0)}),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min_ratio=0.05),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
