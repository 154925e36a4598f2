# GRPO after SFT for Spatial-MLLM on the embedded default (SynthVSI + tiny Qwen2.5-VL + tiny VGGT fusion).
#   python tools/train.py projects/spatial_mllm/config.py     # SFT first: writes work_dirs/spatial_mllm/config/iter_150.safetensors
#   python tools/train.py projects/spatial_mllm/grpo.py       # GRPO from it, then evaluates on SynthVSI test
#   python tools/train.py projects/spatial_mllm/grpo.py --cfg-options sft_checkpoint=PATH.safetensors
# See docs/grpo.md (what is logged, the measured run, the paper-scale recipe).
_base_ = ['./config.py']
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation', 'geokit.rl'],
                      allow_failed_imports=False)

sft_checkpoint = 'work_dirs/spatial_mllm/config/iter_150.safetensors'   # what the SFT command above writes
load_from = sft_checkpoint

group_size = 8
model = dict(
    type='GRPOGeometricMLLM',
    grpo=dict(
        group_size=group_size, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=8,
        rewards=[dict(type='VSIAccuracyReward', weight=1.0),
                 dict(type='FormatReward', mode='bare', weight=0.5)],   # VSI-Bench asks for a bare answer
        loss=dict(type='GRPOPolicyLoss', clip_low=0.2, clip_high=0.28, beta=0.0, loss_type='grpo'),
        scale_rewards='group', filter_zero_variance=True, reference_checkpoint=None, sampling_seed=0),
)

# the rewards read question_type / ground_truth from the samples' meta; no geometry is needed
train_dataloader = dict(batch_size=2, dataset=dict(load_geometry=False))

max_iters = 40
lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=0.0), clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
