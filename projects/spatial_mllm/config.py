# Spatial-MLLM, embedded default: SynthVSI + tiny Qwen2.5-VL + frozen tiny VGGT spatial encoder + MLP-add connector.
#   python tools/train.py projects/spatial_mllm/config.py        # trains on a 2-core CPU, then evaluates
#   python tools/test.py projects/spatial_mllm/config.py work_dirs/spatial_mllm/config/iter_<N>.safetensors
# Space-aware frames at test time (docs/spatial_mllm.md):
#   python tools/sa_sample.py projects/spatial_mllm/config.py --out work_dirs/spatial_mllm/sa_test.jsonl \
#       --teacher-key sa_teacher --num-frames 8 --candidates 16
#   python tools/test.py projects/spatial_mllm/config.py CKPT --cfg-options \
#       test_dataloader.dataset.frame_sampler.type=SpaceAwareSampler \
#       test_dataloader.dataset.frame_sampler.selection_file=work_dirs/spatial_mllm/sa_test.jsonl
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/datasets/synthvsi.py',
    '../../configs/_base_/models/spatial_mllm_qwen2_5vl_tiny.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

# Teacher for tools/sa_sample.py only (point maps); SynthVSI has exact geometry, so the oracle stands in for VGGT.
sa_teacher = dict(type='OracleTeacher', image_size=112, patch_size=14, mode='crop')

# the LM loss alone needs no ground-truth geometry while training
train_dataloader = dict(dataset=dict(load_geometry=False))

# ---------------------------------------------------------------- schedule: train, then evaluate on SynthVSI test
max_iters = 150                    # ~0.2 s per iteration on an idle 2-core CPU (51 s in all, measured)
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
