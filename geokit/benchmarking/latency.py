"""Inference-latency measurement of the benchmark: greedy generation of the base MLLM, the GeoVR export and
Spatial-MLLM.

Each generation is the prefill plus exactly ``new_tokens`` greedy tokens (``min_new_tokens`` forces the full
length) on inputs preprocessed once (tokenisation excluded). The base MLLM and the GeoVR export are stock
transformers models on the same inputs (the export is written by :func:`geokit.models.mllms.export.export_hf` and
loaded back with ``from_pretrained``); Spatial-MLLM runs ``GeometricMLLM.predict`` (ViT + spatial encoder +
connector + generation).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from mmengine.logging import print_log
from tqdm import tqdm

from geokit.models.mllms.export import export_hf

from .configs import CASE_DESCRIPTIONS
from .measure import count_parameters, interleaved_times, peak_memory_per_call, summarize_ms
from .training import build_model, free_memory

#: The inference models, in the order of the tables.
LATENCY_MODELS = ('base', 'geovr_export', 'spatial_mllm')
#: The stock model inputs that ``generate`` takes from the data preprocessor's output.
STOCK_INPUT_KEYS = ('input_ids', 'attention_mask', 'mm_token_type_ids', 'pixel_values_videos', 'video_grid_thw',
                    'second_per_grid_ts')


@dataclass
class LatencyMeasurement:
    """One inference model's numbers; ``asdict`` of it is the model's entry of ``results['inference']``.

    Attributes:
        description: the model in words. new_tokens: generated tokens per call. batch_size: prompts per call.
        prompt_tokens: prompt length (tokens, video tokens included).
        latency_ms: ``{'median', 'min', 'max', 'iqr'}`` of the timed calls (ms). latency_ms_all: every timed call.
        peak_mem_mib, mem_kind: peak memory of the first (untimed) call and what it measures.
        params: parameter count. stock_class: the class that ran (the transformers class of the stock models).
    """

    description: str
    new_tokens: int
    batch_size: int
    prompt_tokens: int
    latency_ms: dict[str, float]
    latency_ms_all: list[float]
    peak_mem_mib: float
    mem_kind: str
    params: int
    stock_class: str


def stock_generate(hf_model: torch.nn.Module, inputs: dict, new_tokens: int, pad_token_id: int) -> torch.Tensor:
    """Greedy ``generate`` of a stock transformers Qwen-VL model on preprocessed inputs, exactly ``new_tokens``."""
    kwargs = {k: inputs[k] for k in STOCK_INPUT_KEYS if inputs.get(k) is not None}
    hf_model.model.rope_deltas = None
    out = hf_model.generate(**kwargs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            num_beams=1, pad_token_id=pad_token_id)
    generated = out.shape[1] - inputs['input_ids'].shape[1]
    if generated != new_tokens:
        raise RuntimeError(f'generate produced {generated} new tokens, expected {new_tokens}.')
    return out


def load_geovr_export(geovr_cfg: dict, device: torch.device, work_dir: str) -> torch.nn.Module:
    """Export the GeoVR model (teachers dropped) to ``work_dir/geovr_export`` and load it back as the stock
    transformers class, in eval mode."""
    from transformers import AutoModelForImageTextToText

    geovr = build_model(dict(geovr_cfg, teacher=None, scale_teacher=None), device).eval()
    export_dir = osp.join(work_dir, 'geovr_export')
    export_hf(geovr, export_dir, objectives_cfg=geovr_cfg.get('objectives'))
    dtype = next(geovr.backbone.hf_model.parameters()).dtype
    del geovr
    free_memory(device)
    return AutoModelForImageTextToText.from_pretrained(export_dir, dtype=dtype).to(device).eval()


def measure_latency(model_cfgs: dict[str, dict], batch: list[dict], spatial_batch: list[dict], new_tokens: int,
                    reps: int, device: torch.device, work_dir: str) -> dict[str, dict]:
    """Generation latency of the base MLLM and the GeoVR export on ``batch`` and of Spatial-MLLM on
    ``spatial_batch``: one untimed call each (its peak memory), then ``reps`` interleaved timed rounds.

    Returns:
        ``{model: asdict(LatencyMeasurement)}`` for :data:`LATENCY_MODELS`.
    """
    base = build_model(model_cfgs['sft'], device).eval()
    exported = load_geovr_export(model_cfgs['geovr_online'], device, work_dir)
    spatial = build_model(model_cfgs['spatial_mllm'], device).eval()
    spatial.max_new_tokens = new_tokens
    spatial.backbone.hf_model.generation_config.min_new_tokens = new_tokens

    with torch.no_grad():
        stock_inputs = base.data_preprocessor(batch, False)['inputs']
        spatial_data = spatial.data_preprocessor(spatial_batch, False)
    pad = base.backbone.pad_token_id
    calls: dict[str, Callable[[], object]] = {
        'base': lambda: stock_generate(base.backbone.hf_model, stock_inputs, new_tokens, pad),
        'geovr_export': lambda: stock_generate(exported, stock_inputs, new_tokens, pad),
        'spatial_mllm': lambda: spatial.predict(**spatial_data),
    }
    models = {'base': base.backbone.hf_model, 'geovr_export': exported, 'spatial_mllm': spatial}
    prompt_tokens = {'base': stock_inputs['input_ids'].shape[1], 'geovr_export': stock_inputs['input_ids'].shape[1],
                     'spatial_mllm': spatial_data['inputs']['input_ids'].shape[1]}
    with torch.no_grad():
        memory = peak_memory_per_call(calls, device)
        bar = tqdm(total=reps * len(calls), desc='inference latency', unit='call')
        times = interleaved_times(calls, reps, device, after_call=bar.update)
        bar.close()
    results = {}
    for name in LATENCY_MODELS:
        ms = summarize_ms(times[name])
        results[name] = asdict(LatencyMeasurement(
            description=CASE_DESCRIPTIONS[name], new_tokens=new_tokens, batch_size=len(batch),
            prompt_tokens=int(prompt_tokens[name]), latency_ms=ms, latency_ms_all=times[name],
            peak_mem_mib=memory[name].mib, mem_kind=memory[name].kind,
            params=count_parameters(models[name]), stock_class=type(models[name]).__name__))
        print_log(f"benchmark: {name}: {ms['median']:.1f} ms for prefill + {new_tokens} tokens", logger='current')
    return results
