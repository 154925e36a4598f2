# Experiment: the tiny VGGT teacher recipe of vggt_tiny_synthvsi.py with a pan-direction curriculum first
# (PanPretrainHook, 1500 steps of 16 seamless 28 px pans through the camera head) and from-scratch initialisation.
# Measured (docs/benchmarks.md "Why pose does not emerge"): the pretraining transfers to real consecutive-pair yaw
# in a pair setting, but this full recipe still does not learn pose; depth is as good as the shipped teacher's.
#   python tools/train_teacher.py configs/teachers/vggt_tiny_synthvsi_pan.py
_base_ = ['./vggt_tiny_synthvsi.py']

model = dict(net=dict(init_values=1.0, token_init_std=1.0))
custom_hooks = [dict(type='RNGStateHook'), dict(type='PanPretrainHook', shift=28, steps=1500, videos=64)]
