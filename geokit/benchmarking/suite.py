"""Training-step and inference-latency benchmark of SFT, GeoVR (online / cached teacher) and Spatial-MLLM.

:func:`run_benchmark` measures, in one process and one run (so ratios compare like with like):

* per training case (:mod:`geokit.benchmarking.configs`): the median wall time of a full ``model.train_step``
  (data preprocessor incl. geometry-token insertion, teacher or cache read, forward, backward, optimizer step;
  the dataset's video decoding is excluded: samples are loaded once up front), samples/s, and the peak memory of
  one step (:class:`~geokit.benchmarking.measure.PeakMemory`);
* greedy generation latency (prefill + ``new_tokens`` new tokens, ``min_new_tokens`` forces the full length) of
  the base MLLM and the GeoVR export (both stock transformers models on the same preprocessed inputs; the export
  is written by :func:`geokit.models.mllms.export.export_hf` and loaded back with ``from_pretrained``) and of
  Spatial-MLLM (``GeometricMLLM.predict``: ViT + spatial encoder + connector + generation); tokenisation excluded;
* the geometry-token insertion speed-up (:mod:`geokit.benchmarking.insertion`).

With ``interleave=True`` (tiny scale) all cases stay in memory and their timed steps alternate (in a rotating
order, see :func:`rotated`), so slow drifts of a shared machine's load hit every case alike, and the goals use the
median of the per-round ratios (``*_paired``); otherwise (paper scale) one case at a time is built, measured and
freed, and the goals use the ratio of the medians.
"""
from __future__ import annotations

import copy
import gc
import json
import os
import os.path as osp
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import cycle

import torch
import transformers
from mmengine.logging import print_log
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from tqdm import tqdm

from geokit.models.mllms.export import export_hf
from geokit.models.teachers.cached import CACHE_FORMAT, cache_sample, write_cache_info
from geokit.registry import DATASETS, MODELS, TEACHERS

from .configs import CASE_DESCRIPTIONS, PAPER_FRAMES, PAPER_HW, case_model_configs, load_project_configs
from .insertion import benchmark_insertion
from .measure import (
    PeakMemory,
    device_description,
    load_average,
    malloc_trim,
    summarize_ms,
    synchronize,
    time_call,
)

TRAIN_CASES = ('sft', 'geovr_online', 'geovr_cached', 'spatial_mllm')
LATENCY_MODELS = ('base', 'geovr_export', 'spatial_mllm')


@dataclass
class BenchmarkSettings:
    """What :func:`run_benchmark` measures and how long.

    Attributes:
        scale: ``'tiny'`` (embedded configs, SynthVSI, CPU or GPU) or ``'paper'`` (paper architectures with random
            weights, synthetic videos; needs CUDA).
        steps: timed training steps per case (the median is reported).
        warmup: untimed training steps per case before the memory step and the timed ones.
        latency_reps: timed generations per inference model (after one untimed).
        new_tokens: generated tokens per generation.
        num_batches: distinct training batches cycled through (and cached for ``geovr_cached``).
        batch_size: training batch size (None: the GeoVR config's ``train_dataloader.batch_size``).
        device: ``'cpu'``/``'cuda'`` (None: CUDA when available; paper scale requires it).
        interleave: alternate the cases' timed steps (None: True at tiny scale, False at paper scale).
        cfg_options: merged into both project configs (e.g. the SynthVSI ``data_root``).
        insertion: ``benchmark_insertion`` keyword arguments.
        work_dir: where the temporary teacher cache and export are written (None: a temporary directory).
        threads: torch intra-op threads for the training and inference measurements (None: torch's default).
            On a CPU shared with other jobs, 1 thread avoids threads waiting for each other at every op.
    """

    scale: str = 'tiny'
    steps: int = 20
    warmup: int = 2
    latency_reps: int = 20
    new_tokens: int = 16
    num_batches: int = 2
    batch_size: int | None = None
    device: str | None = None
    interleave: bool | None = None
    cfg_options: dict = field(default_factory=dict)
    insertion: dict = field(default_factory=dict)
    work_dir: str | None = None
    threads: int | None = None


def resolve_device(settings: BenchmarkSettings) -> torch.device:
    """The benchmark device; paper scale without CUDA raises with the command to use instead."""
    if settings.scale == 'paper' and not torch.cuda.is_available():
        raise RuntimeError('--scale paper builds Qwen3-VL-2B, Qwen2.5-VL-3B and VGGT-1B (random weights, bf16) and '
                           'needs a CUDA GPU with ~40 GB of memory; none is available here. Run it on a GPU '
                           'machine, or use --scale tiny (the embedded configs, runs on a CPU).')
    device = torch.device(settings.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('device cuda was requested but CUDA is not available; pass --device cpu.')
    return device


# ---------------------------------------------------------------------------------------------------- inputs
def dataset_samples(cfg, count: int) -> list[dict]:
    """The first ``count`` samples of the config's ``train_dataloader.dataset`` (SynthVSI at tiny scale)."""
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    if len(dataset) < count:
        raise ValueError(f'the training set has {len(dataset)} samples, the benchmark needs {count}; lower '
                         f'--num-batches/--batch-size or generate more SynthVSI scenes.')
    return [dataset[i] for i in range(count)]


def synthetic_samples(count: int, num_frames: int, height: int, width: int, seed: int = 0) -> list[dict]:
    """Random videos with plausible ground-truth geometry (for the oracle scale teacher), VSI-Bench-style QA.

    ``frames (T, H, W, 3)`` uint8; ``geometry``: ``depth (T, H, W)`` metres, ``extrinsics (T, 3, 4)``
    cam-from-world (a camera sliding along x), ``intrinsics (T, 3, 3)`` pixels.
    """
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(count):
        t = torch.arange(num_frames, dtype=torch.float32)
        extrinsics = torch.zeros(num_frames, 3, 4)
        extrinsics[:, :3, :3] = torch.eye(3)
        extrinsics[:, 0, 3] = -0.05 * t
        intrinsics = torch.tensor([[0.8 * width, 0, width / 2], [0, 0.8 * width, height / 2], [0, 0, 1.0]])
        samples.append({
            'frames': torch.randint(0, 256, (num_frames, height, width, 3), dtype=torch.uint8, generator=g),
            'frame_indices': torch.arange(num_frames) * 4,
            'conversations': [{'from': 'human', 'value': '<video>\nThese are frames of a video.\nHow many chair(s) '
                               'are in this room?\nPlease answer the question using a single word or phrase.'},
                              {'from': 'gpt', 'value': str(i + 2)}],
            'meta': {'id': f'synthetic_{i}', 'dataset': 'synthetic', 'scene_name': f'synthetic_{i}',
                     'question_type': 'object_counting', 'options': None, 'ground_truth': str(i + 2),
                     'fps': 2.0},
            'geometry': {'depth': 1.5 + torch.rand(num_frames, height, width, generator=g),
                         'extrinsics': extrinsics, 'intrinsics': intrinsics.expand(num_frames, 3, 3).clone()},
        })
    return samples


def build_teacher_cache(teacher_cfg: dict, samples: Sequence[dict], out_dir: str, device: torch.device) -> dict:
    """Run the teacher once per sample and write a :class:`CachedTeacher` cache, as ``tools/cache_teacher.py`` does.

    The same code (:func:`~geokit.models.teachers.cached.cache_sample`; all feature layers, float16 features,
    float32 dense targets). Returns ``{'samples', 'total_bytes', 'ms_per_sample'}`` (teacher run + shard write).
    """
    os.makedirs(out_dir, exist_ok=True)
    teacher = TEACHERS.build(copy.deepcopy(teacher_cfg)).to(device).eval()
    total, times = 0, []
    for sample in samples:
        synchronize(device)
        start = time.perf_counter()
        _, size, _ = cache_sample(teacher, sample, out_dir, device, overwrite=True)
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
        total += size
    write_cache_info(out_dir, dict(format=CACHE_FORMAT, teacher=json.loads(json.dumps(teacher_cfg, default=str)),
                                   feature_layers=None, feature_pool=1, feature_dtype='float16',
                                   dense_dtype='float32', source='geokit.benchmarking'))
    return dict(samples=len(samples), total_bytes=total, ms_per_sample=summarize_ms(times)['median'])


# ---------------------------------------------------------------------------------------------------- training
def build_model(model_cfg: dict, device: torch.device) -> torch.nn.Module:
    """``MODELS.build`` directly on ``device`` (no CPU initialisation of large random models)."""
    with torch.device(device):
        model = MODELS.build(copy.deepcopy(model_cfg))
    return model.to(device)


class TrainCase:
    """One training configuration: model, optimizer wrapper and the batches it cycles through."""

    def __init__(self, name: str, model_cfg: dict, optim_cfg: dict, batches: list[list[dict]],
                 device: torch.device) -> None:
        self.name, self.device = name, device
        self.model = build_model(model_cfg, device).train()
        self.optim_wrapper = build_optim_wrapper(self.model, copy.deepcopy(optim_cfg))
        self.batch_size = len(batches[0])
        self._batches = cycle(batches)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def step(self) -> None:
        self.model.train_step(next(self._batches), self.optim_wrapper)

    def close(self) -> None:
        del self.model, self.optim_wrapper


def rotated(names: list[str], index: int) -> list[str]:
    """``names`` starting at ``index % len(names)``: over the rounds every case runs in every position of a round
    (measured on the shared CPU: the first model of a round ran ~15 % slower than the second)."""
    shift = index % len(names)
    return names[shift:] + names[:shift]


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    malloc_trim()


def measure_training(builders: dict[str, Callable[[], TrainCase]], settings: BenchmarkSettings,
                     device: torch.device, interleave: bool) -> dict[str, dict]:
    """Warm-up, one peak-memory step and ``settings.steps`` timed steps per case (see the module docstring)."""
    groups = [list(builders)] if interleave else [[name] for name in builders]
    results: dict[str, dict] = {}
    bar = tqdm(total=len(builders) * (settings.warmup + 1 + settings.steps), desc='training steps', unit='step')
    for group in groups:
        cases = {}
        for name in group:
            print_log(f'benchmark: building {name}', logger='current')
            cases[name] = builders[name]()
        for _ in range(settings.warmup):
            for case in cases.values():
                case.step()
                bar.update()
        memory = {}
        for name, case in cases.items():
            with PeakMemory(device) as peak:
                case.step()
            memory[name] = peak
            bar.update()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for index in range(settings.steps):
            for name in rotated(list(cases), index):
                times[name].append(time_call(cases[name].step, device))
                bar.update()
        for name, case in cases.items():
            ms = summarize_ms(times[name])
            results[name] = dict(description=CASE_DESCRIPTIONS[name], batch_size=case.batch_size, step_ms=ms,
                                 step_ms_all=times[name], samples_per_s=case.batch_size / ms['median'] * 1e3,
                                 peak_mem_mib=memory[name].mib, mem_kind=memory[name].kind, params=case.params,
                                 trainable_params=case.trainable)
            print_log(f"benchmark: {name}: {ms['median']:.1f} ms/step, {results[name]['samples_per_s']:.2f} "
                      f'samples/s, peak {memory[name].mib:.0f} MiB ({memory[name].kind})', logger='current')
            case.close()
        cases.clear()
        free_memory(device)
    bar.close()
    return results


# ---------------------------------------------------------------------------------------------------- inference
def stock_generate(hf_model: torch.nn.Module, inputs: dict, new_tokens: int, pad_token_id: int) -> torch.Tensor:
    """Greedy ``generate`` of a stock transformers Qwen-VL model on preprocessed inputs, exactly ``new_tokens``."""
    keys = ('input_ids', 'attention_mask', 'mm_token_type_ids', 'pixel_values_videos', 'video_grid_thw',
            'second_per_grid_ts')
    kwargs = {k: inputs[k] for k in keys if inputs.get(k) is not None}
    hf_model.model.rope_deltas = None
    out = hf_model.generate(**kwargs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            num_beams=1, pad_token_id=pad_token_id)
    generated = out.shape[1] - inputs['input_ids'].shape[1]
    if generated != new_tokens:
        raise RuntimeError(f'generate produced {generated} new tokens, expected {new_tokens}.')
    return out


def measure_latency(model_cfgs: dict[str, dict], batch: list[dict], spatial_batch: list[dict],
                    settings: BenchmarkSettings, device: torch.device, work_dir: str) -> dict[str, dict]:
    """Generation latency of the base MLLM and the GeoVR export on ``batch`` and of Spatial-MLLM on
    ``spatial_batch`` (interleaved repetitions)."""
    from transformers import AutoModelForImageTextToText

    n = settings.new_tokens
    base = build_model(model_cfgs['sft'], device).eval()
    geovr = build_model(dict(model_cfgs['geovr_online'], teacher=None, scale_teacher=None), device).eval()
    export_dir = osp.join(work_dir, 'geovr_export')
    export_hf(geovr, export_dir, objectives_cfg=model_cfgs['geovr_online'].get('objectives'))
    dtype = next(geovr.backbone.hf_model.parameters()).dtype
    del geovr
    free_memory(device)
    exported = AutoModelForImageTextToText.from_pretrained(export_dir, dtype=dtype).to(device).eval()
    spatial = build_model(model_cfgs['spatial_mllm'], device).eval()
    spatial.max_new_tokens = n
    spatial.backbone.hf_model.generation_config.min_new_tokens = n

    with torch.no_grad():
        stock_inputs = base.data_preprocessor(batch, False)['inputs']
        spatial_data = spatial.data_preprocessor(spatial_batch, False)
    pad = base.backbone.pad_token_id
    runs = {
        'base': lambda: stock_generate(base.backbone.hf_model, stock_inputs, n, pad),
        'geovr_export': lambda: stock_generate(exported, stock_inputs, n, pad),
        'spatial_mllm': lambda: spatial.predict(**spatial_data),
    }
    params = {'base': sum(p.numel() for p in base.backbone.hf_model.parameters()),
              'geovr_export': sum(p.numel() for p in exported.parameters()),
              'spatial_mllm': sum(p.numel() for p in spatial.parameters())}
    prompt_tokens = {'base': int(stock_inputs['input_ids'].shape[1]),
                     'geovr_export': int(stock_inputs['input_ids'].shape[1]),
                     'spatial_mllm': int(spatial_data['inputs']['input_ids'].shape[1])}
    memory, times = {}, {name: [] for name in runs}
    with torch.no_grad():
        for name, run in tqdm(runs.items(), desc='inference warm-up', unit='model'):
            with PeakMemory(device) as peak:
                run()
            memory[name] = peak
        for index in tqdm(range(settings.latency_reps), desc='inference latency', unit='round'):
            for name in rotated(list(runs), index):
                times[name].append(time_call(runs[name], device))
    results = {}
    for name in runs:
        ms = summarize_ms(times[name])
        results[name] = dict(description=CASE_DESCRIPTIONS[name], new_tokens=n, batch_size=len(batch),
                             prompt_tokens=prompt_tokens[name], latency_ms=ms,
                             latency_ms_all=times[name], peak_mem_mib=memory[name].mib, mem_kind=memory[name].kind,
                             params=params[name], stock_class=type(exported).__name__ if name != 'spatial_mllm'
                             else type(spatial).__name__)
        print_log(f"benchmark: {name}: {ms['median']:.1f} ms for prefill + {n} tokens", logger='current')
    return results


# ---------------------------------------------------------------------------------------------------- goals
#: ``(key, label, ratio name, goal text, check)``
GOALS = (
    ('cached_step', 'GeoVR cached step / SFT step', 'geovr_cached_vs_sft_step', '<= 1.15', lambda r: r <= 1.15),
    ('export_latency', 'GeoVR export latency / base latency', 'geovr_export_vs_base_latency',
     '1.00 (within +-5 %)', lambda r: abs(r - 1.0) <= 0.05),
    ('insertion', 'geometry-token insertion: loop / vectorised', 'insertion_speedup', '>= 100x',
     lambda r: r >= 100.0),
)


def ratios_and_goals(training: dict, inference: dict, insertion: dict) -> tuple[dict, list[dict]]:
    """Ratios measured in the same run (of the medians; ``*_paired``: median of per-round ratios of interleaved
    runs) and PASS/FAIL of the issue's goals (on the paired ratio where there is one)."""
    step = {k: v['step_ms']['median'] for k, v in training.items()}
    latency = {k: v['latency_ms']['median'] for k, v in inference.items()}
    ratios = {
        'geovr_cached_vs_sft_step': step['geovr_cached'] / step['sft'],
        'geovr_online_vs_sft_step': step['geovr_online'] / step['sft'],
        'geovr_cached_vs_online_step': step['geovr_cached'] / step['geovr_online'],
        'spatial_mllm_vs_sft_step': step['spatial_mllm'] / step['sft'],
        'geovr_export_vs_base_latency': latency['geovr_export'] / latency['base'],
        'spatial_mllm_vs_base_latency': latency['spatial_mllm'] / latency['base'],
        'insertion_speedup': insertion['speedup'],
    }
    # interleaved runs: the median of the per-round ratios is robust to slow drifts of the machine's load
    if all(len(v['step_ms_all']) == len(training['sft']['step_ms_all']) for v in training.values()):
        ratios['geovr_cached_vs_sft_step_paired'] = statistics.median(
            c / s for c, s in zip(training['geovr_cached']['step_ms_all'], training['sft']['step_ms_all']))
    ratios['geovr_export_vs_base_latency_paired'] = statistics.median(
        e / b for e, b in zip(inference['geovr_export']['latency_ms_all'], inference['base']['latency_ms_all']))
    goals = []
    for key, label, name, goal, check in GOALS:
        used = f'{name}_paired' if f'{name}_paired' in ratios else name
        goals.append(dict(key=key, label=label, ratio_name=used, ratio=ratios[used], ratio_of_medians=ratios[name],
                          goal=goal, passed=bool(check(ratios[used]))))
    return ratios, goals


# ---------------------------------------------------------------------------------------------------- driver
def run_benchmark(settings: BenchmarkSettings) -> dict:
    """Run everything (see the module docstring) and return the JSON-serialisable results."""
    previous = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _run(settings)
    finally:
        torch.set_num_threads(previous)


def _run(settings: BenchmarkSettings) -> dict:
    device = resolve_device(settings)
    init_default_scope('geokit')
    interleave = settings.interleave if settings.interleave is not None else settings.scale == 'tiny'
    load_before = load_average()
    configs = load_project_configs(settings.scale, settings.cfg_options)
    batch_size = settings.batch_size or (1 if settings.scale == 'paper' else
                                         int(configs['geovr'].train_dataloader.batch_size))
    count = batch_size * settings.num_batches
    if settings.scale == 'paper':
        geovr_samples = synthetic_samples(count, PAPER_FRAMES['geovr'], *PAPER_HW)
        spatial_samples = [dict(s, frames=s['frames'][:PAPER_FRAMES['spatial_mllm']],
                                frame_indices=s['frame_indices'][:PAPER_FRAMES['spatial_mllm']],
                                geometry=None) for s in geovr_samples]
    else:
        geovr_samples = dataset_samples(configs['geovr'], count)
        spatial_samples = geovr_samples
    batches = {'geovr': [geovr_samples[i:i + batch_size] for i in range(0, count, batch_size)],
               'spatial_mllm': [spatial_samples[i:i + batch_size] for i in range(0, count, batch_size)]}
    with tempfile.TemporaryDirectory(prefix='geokit-bench-', dir=settings.work_dir) as work_dir:
        cache_dir = osp.join(work_dir, 'teacher_cache')
        model_cfgs = case_model_configs(configs, settings.scale, cache_dir)
        print_log(f'benchmark: caching teacher targets of {count} samples -> {cache_dir}', logger='current')
        cache = build_teacher_cache(model_cfgs['geovr_online']['teacher'], geovr_samples, cache_dir, device)
        free_memory(device)
        optim = {'geovr': configs['geovr'].optim_wrapper.to_dict(),
                 'spatial_mllm': configs['spatial_mllm'].optim_wrapper.to_dict()}
        builders = {name: (lambda name=name: TrainCase(
            name, model_cfgs[name], optim['spatial_mllm' if name == 'spatial_mllm' else 'geovr'],
            batches['spatial_mllm' if name == 'spatial_mllm' else 'geovr'], device)) for name in TRAIN_CASES}
        training = measure_training(builders, settings, device, interleave)
        inference = measure_latency(model_cfgs, geovr_samples[:1], spatial_samples[:1], settings, device,
                                    work_dir)
        free_memory(device)
    insertion = benchmark_insertion(**settings.insertion)
    ratios, goals = ratios_and_goals(training, inference, insertion)
    frames = next(iter(batches['geovr']))[0]['frames']
    return dict(
        scale=settings.scale, device=device_description(device), torch=torch.__version__,
        transformers=transformers.__version__, python=platform.python_version(),
        torch_threads=torch.get_num_threads(), load_average_before=load_before, load_average_after=load_average(),
        interleaved=interleave, settings=asdict(settings),
        inputs=dict(batch_size=batch_size, frames=list(torch.as_tensor(frames).shape),
                    spatial_frames=list(torch.as_tensor(batches['spatial_mllm'][0][0]['frames']).shape),
                    source='synthetic' if settings.scale == 'paper' else 'SynthVSI train split'),
        teacher_cache=cache, training=training, inference=inference, insertion=insertion, ratios=ratios,
        goals=goals)
