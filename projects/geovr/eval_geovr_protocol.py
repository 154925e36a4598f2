# GeoVR's own VSI-Bench protocol (github WHB139426/GeoVR-MLLM: eval_vsi.py, metric_result.py, scripts/eval.sh), to
# compare a checkpoint with the numbers in GeoVR's table. The official VSI-Bench rules (greedy decoding, the
# official prompt and scorer; projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py) stay the reference protocol.
#   python tools/test.py projects/geovr/eval_geovr_protocol.py work_dirs/<run>/iter_<N>.safetensors
# Differences from the official protocol, each GeoVR's choice:
#   * sampling (temperature 0.7, top-p 0.8, top-k 20, repetition penalty 1.0, up to 32K new tokens), seed 42;
#   * 128 uniformly sampled frames, each given once, video pixels 4*128*32*32 .. 384*128*32*32;
#   * GeoVR's prompt (no pre-prompt, "Answer with ONLY the option's letter directly." /
#     "Please answer the question ONLY using a single Arabic numeral.");
#   * GeoVR's parsing and aggregation (VSIBenchMetric(mode='geovr'), geokit.evaluation.vsibench).
# The plain MLLM answers (eval_vsi.py runs with CAMERA/DEPTH/DISTILL/SCALE=False): no heads, no teacher.
# `model.generation_cfg` holds keyword arguments of Hugging Face `generate` for predict mode (GeometricMLLM).
_base_ = ['./geovr_qwen3vl-2b_vggt-1b_vsi590k.py']

num_frames = 128
frame_sampler = dict(type='UniformSampler', num_frames=num_frames)
model = dict(
    backbone=dict(processor_kwargs=dict(size=dict(longest_edge=384 * num_frames * 32 * 32,
                                                  shortest_edge=4 * num_frames * 32 * 32),
                                        min_frames=4, max_frames=num_frames)),
    data_preprocessor=dict(repeat_frames=1, teacher_frames='input', geometry_tokens_in_predict=False),
    teacher=None,
    objectives=[],
    max_new_tokens=32 * 1024,
    generation_cfg=dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.0),
)
test_dataloader = dict(dataset=dict(frame_sampler=frame_sampler, prompt_style='geovr'))
test_evaluator = dict(type='VSIBenchMetric', mode='geovr')
randomness = dict(seed=42)
