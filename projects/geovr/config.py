# GeoVR, embedded default: SynthVSI + tiny Qwen3-VL + tiny VGGT teacher, all four geometric objectives.
#   python tools/train.py projects/geovr/config.py              # trains on a 2-core CPU, then evaluates
#   python tools/test.py projects/geovr/config.py work_dirs/geovr/config/iter_<N>.safetensors
#   python tools/export_hf.py projects/geovr/config.py work_dirs/geovr/config/iter_<N>.safetensors --out exported/
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/datasets/synthvsi.py',
    '../../configs/_base_/models/geovr_qwen3vl_tiny.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

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
