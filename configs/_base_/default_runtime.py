# Runtime shared by every geokit config: mmengine Runner with safetensors checkpoints, iteration-based logging.
default_scope = 'geokit'
runner_type = 'GeoKitRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2,
                    filename_tmpl='iter_{}.safetensors'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [dict(type='RNGStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo on machines without CUDA
)
# Logging backends on top of the local one (<work_dir>/<timestamp>/vis_data/scalars.json): 'auto' = on when the
# package is installed; True = on (fails naming the package when it is missing); False = off; a dict = on with these
# backend arguments, e.g. wandb=dict(init_kwargs=dict(project='geovr', mode='offline')).
visualizer = dict(type='GeoKitVisualizer', tensorboard='auto', wandb=False)
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
load_strict = True  # tools/test.py, load_from and resume refuse a checkpoint whose keys differ (docs/reliability.md)
