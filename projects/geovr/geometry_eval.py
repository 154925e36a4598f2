# Evaluate what a GeoVR checkpoint's heads predict, against SynthVSI ground truth, next to the VSI-Bench answers:
#   python tools/test.py projects/geovr/geometry_eval.py work_dirs/geovr/config/iter_300.safetensors
# The heads read the camera/scale tokens, so the prompt carries them here (the exported model's prompt does not).
_base_ = ['./config.py']

model = dict(predict_geometry=True, data_preprocessor=dict(geometry_tokens_in_predict=True))
test_evaluator = [
    dict(type='VSIBenchMetric', prior_ann_file='train.jsonl'),
    dict(type='GeometryMetric', reference='ground_truth', depth_alignment='median'),
]
