# Scale-out strategies for mmengine's FlexibleRunner. A config picks one with
#     runner_type = 'FlexibleRunner'
#     strategy = _base_.fsdp_zero2          (or fsdp_zero3, deepspeed_zero2, deepspeed_zero3)
# and is launched with
#     torchrun --nproc-per-node 8 tools/train.py CONFIG --launcher pytorch
# See docs/scale_out.md for what each one shards and how checkpoints are written.

# FSDP, ZeRO-2 style (SHARD_GRAD_OP): gradients and optimizer states sharded, parameters gathered for the forward
# and kept for the backward. Checkpoints: one full safetensors file gathered to rank 0 (GeoKitFSDPStrategy).
fsdp_zero2 = dict(
    type='GeoKitFSDPStrategy',
    state_dict_cfg='full',
    model_wrapper=dict(
        sharding_strategy='SHARD_GRAD_OP',
        use_orig_params=True,  # frozen teacher and trainable MLLM parameters live in the same wrapped blocks
        auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy', min_num_params=int(1e7)),
    ),
)

# FSDP, ZeRO-3 style (FULL_SHARD): parameters sharded too, gathered per wrapped block in forward and backward.
fsdp_zero3 = dict(fsdp_zero2, model_wrapper=dict(fsdp_zero2['model_wrapper'], sharding_strategy='FULL_SHARD'))

# DeepSpeed ZeRO-2 / ZeRO-3 (pip install -e ".[deepspeed]"). DeepSpeed owns the optimizer step, bf16 and gradient
# clipping: pair it with optim_wrapper type 'DeepSpeedOptimWrapper'. Its checkpoints are DeepSpeed's own
# directories (per-rank optimizer partitions); set default_hooks.checkpoint.filename_tmpl='iter_{}'.
deepspeed_zero2 = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=1.0,
    zero_optimization=dict(stage=2, overlap_comm=True, contiguous_gradients=True, reduce_bucket_size=int(5e8),
                           allgather_bucket_size=int(5e8)),
    exclude_frozen_parameters=True,  # the frozen 3D teacher is not written into every checkpoint
)
deepspeed_zero3 = dict(deepspeed_zero2, zero_optimization=dict(stage=3, overlap_comm=True, contiguous_gradients=True,
                                                               stage3_gather_16bit_weights_on_model_save=True))
