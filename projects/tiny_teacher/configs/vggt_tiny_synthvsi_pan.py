# The shipped tiny VGGT teacher (geokit/assets/teachers/vggt_tiny_synthvsi.safetensors): the recipe of
# vggt_tiny_synthvsi.py with a pan-direction curriculum first (PanPretrainHook, 1500 steps of 16 seamless 28 px pans
# through the camera head) and from-scratch initialisation. Its depth is better than the plain recipe's; it does not
# learn 16-frame pose either (projects/tiny_teacher/README.md). 11 min on the 2-core development machine.
#   python projects/tiny_teacher/tools/train_teacher.py projects/tiny_teacher/configs/vggt_tiny_synthvsi_pan.py \
#       --export geokit/assets/teachers/vggt_tiny_synthvsi.safetensors
_base_ = ['./vggt_tiny_synthvsi.py']

model = dict(net=dict(init_values=1.0, token_init_std=1.0))
custom_hooks = [dict(type='RNGStateHook'), dict(type='PanPretrainHook', shift=28, steps=1500, videos=64)]
