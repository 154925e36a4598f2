# Spatial-MLLM, embedded default: SynthVSI + tiny Qwen2.5-VL + frozen tiny VGGT spatial encoder + MLP-add connector.
#   python tools/train.py projects/spatial_mllm/config.py        # trains on a 2-core CPU, then evaluates
#   python tools/test.py projects/spatial_mllm/config.py work_dirs/config/iter_<N>.safetensors
# Space-aware frames at test time (docs/spatial_mllm.md):
#   python tools/sa_sample.py projects/spatial_mllm/config.py --out work_dirs/spatial_mllm/sa_test.jsonl \
#       --teacher-key sa_teacher --num-frames 8 --candidates 16
#   python tools/test.py projects/spatial_mllm/config.py CKPT --cfg-options \
#       test_dataloader.dataset.frame_sampler.type=SpaceAwareSampler \
#       test_dataloader.dataset.frame_sampler.selection_file=work_dirs/spatial_mllm/sa_test.jsonl
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/models/spatial_mllm_qwen2_5vl_tiny.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

# Teacher for tools/sa_sample.py only (point maps); SynthVSI has exact geometry, so the oracle stands in for VGGT.
sa_teacher = dict(type='OracleTeacher', image_size=112, patch_size=14, mode='crop')

# ---------------------------------------------------------------- data (the SynthVSI of projects/geovr/config.py)
data_root = 'data/synthvsi'
synthvsi = dict(num_scenes=32, frames=16, resolution=(112, 112), seed=0)
num_frames = 8
frame_sampler = dict(type='UniformSampler', num_frames=num_frames)
train_dataloader = dict(
    batch_size=2, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=False))
test_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))  # geometry: only for sa_teacher (oracle)
test_evaluator = dict(type='VSIBenchMetric')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ---------------------------------------------------------------- schedule: train, then evaluate on SynthVSI test
max_iters = 150                    # ~6 s per iteration on a busy 2-core CPU (measured), so ~15 min
warmup_iters = 10
lr = 1e-3
optim_wrapper = dict(
    optimizer=dict(lr=lr, weight_decay=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min_ratio=0.05),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
