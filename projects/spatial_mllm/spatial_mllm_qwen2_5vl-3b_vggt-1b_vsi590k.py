# Spatial-MLLM paper settings: Qwen2.5-VL-3B-Instruct + VGGT-1B spatial encoder + MLP-add connector, 16 frames of
# 293216 .. 324576 pixels, SFT with lr 7e-6 (connector and ViT merger 2e-5), weight decay 0.1 (none on biases and
# LayerNorms), cosine with 3 % warm-up, bf16, batch 1 x 8 accumulation (Spatial-MLLM's
# scripts/training/spatial_mllm_train_demo.sh, src/qwenvl/train/{train_qwen,trainer}.py); trained on VSI-590K here
# (Spatial-MLLM-120k is not public in this format), evaluated on VSI-Bench with space-aware frames. Remaining
# differences (temporal spacing, GPU count, gradient checkpointing): docs/fidelity.md. Every path below is local
# and must exist; a missing one fails with the config key to set.
#   1. python tools/sa_sample.py projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py \
#          --out data/vsibench/sa_16.jsonl --teacher-key sa_teacher --num-frames 16 --candidates 128
#   2. torchrun --nproc-per-node 8 tools/train.py projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py \
#          --launcher pytorch
#   3. python tools/test.py projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py CKPT
_base_ = [
    '../../configs/_base_/default_runtime.py',
    '../../configs/_base_/schedules/adamw_iters.py',
    '../../configs/_base_/models/spatial_mllm_qwen2_5vl_3b.py',
    '../../configs/_base_/strategies.py',
]
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation'], allow_failed_imports=False)

vsi590k_root = 'data/vsi590k'                        # train_dataloader.dataset.data_root
vsibench_root = 'data/vsibench'                      # test_dataloader.dataset.data_root
sa_selection = 'data/vsibench/sa_16.jsonl'           # test_dataloader.dataset.frame_sampler.selection_file

# VGGT-1B with its point head, for tools/sa_sample.py (space-aware frame selection of the test videos)
sa_teacher = dict(type='VGGTTeacher', load_from='checkpoints/VGGT-1B', image_size=518, mode='crop',
                  feature_layers=[], with_points=True, frames_chunk_size=8)

num_frames = 16
# data_qwen.py process_video: video_{min,max}_frame_pixels = 293216 / 324576 per frame
model = dict(backbone=dict(processor_kwargs=dict(size=dict(shortest_edge=293216, longest_edge=324576))))
train_dataloader = dict(
    batch_size=1, num_workers=4, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=vsi590k_root,
                 frame_sampler=dict(type='UniformSampler', num_frames=num_frames), load_geometry=False,
                 skip_bad_videos=True))
test_dataloader = dict(
    batch_size=1, num_workers=4, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', data_root=vsibench_root,
                 frame_sampler=dict(type='SpaceAwareSampler', num_frames=num_frames, selection_file=sa_selection),
                 load_geometry=False))
test_evaluator = dict(type='VSIBenchMetric')
test_cfg = dict(type='TestLoop')
val_dataloader = None
val_evaluator = None
val_cfg = None

max_iters = 20000
warmup_iters = 600
lr = 7e-6
connector_lr = 2e-5
optim_wrapper = dict(
    type='AutocastOptimWrapper', dtype='bfloat16', accumulative_counts=8,  # fp32 master weights, bf16 compute
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.1),
    # trainer.py create_optimizer: mm_projector_lr for the connector and visual.merger; HF's decay rule
    paramwise_cfg=dict(custom_keys={'fusion.connector': dict(lr_mult=connector_lr / lr),
                                    'visual.merger': dict(lr_mult=connector_lr / lr)},
                       bias_decay_mult=0.0, norm_decay_mult=0.0),
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
