# The GeoVR paper run on DeepSpeed ZeRO-3 instead of FSDP ZeRO-2 (pip install -e ".[deepspeed]"):
#   torchrun --nproc-per-node 8 tools/train.py projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k_deepspeed-zero3.py \
#       --launcher pytorch
_base_ = ['./geovr_qwen3vl-2b_vggt-1b_vsi590k.py']

strategy = dict(_delete_=True, **_base_.deepspeed_zero3)
# DeepSpeed does bf16, loss scaling and clipping itself; the per-module learning rates stay
optim_wrapper = dict(_delete_=True, type='DeepSpeedOptimWrapper', optimizer=_base_.optim_wrapper.optimizer,
                     paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
default_hooks = dict(checkpoint=dict(filename_tmpl='iter_{}'))
