# GRPO after SFT at paper scale: Spatial-MLLM (Qwen2.5-VL-3B + VGGT-1B, MLP-add fusion) with SpaceR's published GRPO
# recipe (OuyangKun10/SpaceR, SpaceR-SG-RLVR/src/scripts/run_SpaceR_SG_RLVR.sh and its open-r1 trainer): G = 8
# completions per prompt, temperature 1.0, top-p 0.95, at most 1024 new tokens, KL beta 0.04 (k3) to the frozen SFT
# model, sequence-level loss (TRL's 'grpo'), lr 1e-6 cosine, weight decay 0.01, gradient clip 5, one prompt per GPU
# on 8 GPUs, no accumulation, bf16; rewards = answer accuracy + <think>/<answer> format. Spatial-MLLM's authors never
# released their GRPO settings; SpaceR is the closest released recipe (Qwen2.5-VL, video spatial QA, R1-style).
# Differences: SpaceR trains Qwen2.5-VL-7B on SpaceR-151k for 1 epoch; here the SFT model's VSI-590K prompts are
# used and max_iters is a budget, not an epoch. Every path is local (the SFT checkpoint: `sft_checkpoint`).
#   torchrun --nproc-per-node 8 tools/train.py projects/spatial_mllm/grpo_spacer_qwen2_5vl-3b_vggt-1b.py \
#       --launcher pytorch --cfg-options sft_checkpoint=work_dirs/<sft run>/iter_20000.safetensors
_base_ = ['./spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py']
custom_imports = dict(imports=['geokit.models', 'geokit.datasets', 'geokit.evaluation', 'geokit.rl'],
                      allow_failed_imports=False)

sft_checkpoint = 'work_dirs/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k/iter_20000.safetensors'
load_from = sft_checkpoint

# SpaceR's R1-style answer format, asked for by a system turn (the dataset's question text is unchanged)
reasoning_prompt = ('Think about the question step by step inside <think> </think> tags, then give only the final '
                    'answer (an option letter or a number) inside <answer> </answer> tags.')
model = dict(
    type='GRPOGeometricMLLM',
    data_preprocessor=dict(system_prompt=reasoning_prompt),
    grpo=dict(
        group_size=8, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=1024,
        rewards=[dict(type='VSIAccuracyReward', weight=1.0),
                 dict(type='FormatReward', mode='think_answer', weight=1.0)],
        loss=dict(type='GRPOPolicyLoss', clip_low=0.2, clip_high=0.2, beta=0.04, loss_type='grpo'),
        scale_rewards='group', filter_zero_variance=False, reference_checkpoint=sft_checkpoint, sampling_seed=0),
)

max_iters = 2000
lr = 1e-6
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', accumulative_counts=1,
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(_delete_=True, bypass_duplicate=True),   # one lr for all (SpaceR has no connector)
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min_ratio=0.0)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(interval=200), logger=dict(interval=1))
