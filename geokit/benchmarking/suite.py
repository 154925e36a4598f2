"""Training-step and inference-latency benchmark of SFT, GeoVR (online / cached teacher) and Spatial-MLLM.

:func:`run_benchmark` measures, in one process and one run (so ratios compare like with like):

* per training case (:mod:`geokit.benchmarking.configs`, measured by :mod:`geokit.benchmarking.training`): the
  median wall time (ms) of a full ``model.train_step`` on samples loaded up front, samples/s, and the peak memory
  (MiB) of one step (:class:`~geokit.benchmarking.measure.PeakMemory` says what the peak means on CPU and CUDA);
* greedy generation latency (ms for prefill + ``new_tokens`` tokens) of the base MLLM, the GeoVR export and
  Spatial-MLLM (:mod:`geokit.benchmarking.latency`);
* the geometry-token insertion speed-up (:mod:`geokit.benchmarking.insertion`);
* the ratios against the SFT / base baselines of the same run and the goals judged on them
  (:mod:`geokit.benchmarking.goals`).

With ``interleave=True`` (tiny scale) all cases stay in memory and their timed steps alternate (in a rotating
order, see :func:`~geokit.benchmarking.measure.rotated`), so slow drifts of a shared machine's load hit every case
alike, and the step goal uses the median of the per-round ratios (``*_paired``); otherwise (paper scale) one case
at a time is built, measured and freed, and the step goal uses the ratio of the medians. The inference calls are
always interleaved.

The result is a JSON-serialisable dict (``benchmark.json``, written by :mod:`geokit.benchmarking.report`):

* ``scale``, ``device``, ``torch``, ``transformers``, ``python``, ``torch_threads``, ``load_average_before`` /
  ``load_average_after`` (1/5/15-min load averages), ``interleaved``, ``settings`` (``asdict`` of
  :class:`BenchmarkSettings`);
* ``inputs``: ``batch_size``, ``frames`` / ``spatial_frames`` (shape ``[T, H, W, 3]`` of one GeoVR /
  Spatial-MLLM sample), ``source``;
* ``teacher_cache``: :func:`~geokit.benchmarking.inputs.build_teacher_cache`'s dict;
* ``training``: ``{case: TrainingMeasurement as a dict}`` for :data:`TRAIN_CASES`;
* ``inference``: ``{model: LatencyMeasurement as a dict}`` for :data:`LATENCY_MODELS`;
* ``insertion``: :func:`~geokit.benchmarking.insertion.benchmark_insertion`'s dict;
* ``ratios``: ``{name: ratio}``; ``goals``: one dict per goal (see :func:`~geokit.benchmarking.goals.judge_goals`).
"""
from __future__ import annotations

import os.path as osp
import platform
import tempfile
from dataclasses import asdict, dataclass, field

import torch
import transformers
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from .configs import PAPER_FRAMES, PAPER_HW, case_model_configs, load_project_configs
from .goals import GOALS, Goal, ratios_and_goals
from .inputs import batched, build_teacher_cache, dataset_samples, first_frames, synthetic_samples
from .insertion import benchmark_insertion
from .latency import LATENCY_MODELS, LatencyMeasurement, measure_latency, stock_generate
from .measure import device_description, load_average, rotated, torch_threads
from .training import TrainCase, TrainingMeasurement, build_model, free_memory, measure_training

__all__ = ['GOALS', 'LATENCY_MODELS', 'TRAIN_CASES', 'BenchmarkInputs', 'BenchmarkSettings', 'Goal',
           'LatencyMeasurement', 'TrainCase', 'TrainingMeasurement', 'build_model', 'build_teacher_cache',
           'dataset_samples', 'free_memory', 'measure_latency', 'measure_training', 'prepare_inputs',
           'ratios_and_goals', 'resolve_device', 'rotated', 'run_benchmark', 'stock_generate', 'synthetic_samples']

#: The training cases, in the order of the tables (configs: :func:`~geokit.benchmarking.configs.case_model_configs`).
TRAIN_CASES = ('sft', 'geovr_online', 'geovr_cached', 'spatial_mllm')
#: The project whose optimizer and batches each training case uses.
CASE_PROJECT = {'sft': 'geovr', 'geovr_online': 'geovr', 'geovr_cached': 'geovr', 'spatial_mllm': 'spatial_mllm'}
#: Paper-scale batch size (tiny scale: the GeoVR config's ``train_dataloader.batch_size``).
PAPER_BATCH_SIZE = 1


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
        batch_size: training batch size (None: the GeoVR config's ``train_dataloader.batch_size`` at tiny scale,
            :data:`PAPER_BATCH_SIZE` at paper scale).
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


@dataclass
class BenchmarkInputs:
    """The samples of one run: ``geovr`` / ``spatial_mllm`` samples and their batches (``batch_size`` each)."""

    batch_size: int
    geovr_samples: list[dict]
    spatial_samples: list[dict]
    batches: dict[str, list[list[dict]]]


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


def prepare_inputs(settings: BenchmarkSettings, configs: dict) -> BenchmarkInputs:
    """``num_batches`` batches of SynthVSI training samples (tiny) or synthetic paper-size videos (paper; the
    Spatial-MLLM samples are their first frames, without geometry)."""
    if settings.batch_size:
        batch_size = settings.batch_size
    elif settings.scale == 'paper':
        batch_size = PAPER_BATCH_SIZE
    else:
        batch_size = int(configs['geovr'].train_dataloader.batch_size)
    count = batch_size * settings.num_batches
    if settings.scale == 'paper':
        geovr_samples = synthetic_samples(count, PAPER_FRAMES['geovr'], *PAPER_HW)
        spatial_samples = first_frames(geovr_samples, PAPER_FRAMES['spatial_mllm'])
    else:
        geovr_samples = dataset_samples(configs['geovr'], count)
        spatial_samples = geovr_samples
    return BenchmarkInputs(batch_size, geovr_samples, spatial_samples,
                           {'geovr': batched(geovr_samples, batch_size),
                            'spatial_mllm': batched(spatial_samples, batch_size)})


def _environment(settings: BenchmarkSettings, device: torch.device) -> dict:
    return dict(scale=settings.scale, device=device_description(device), torch=torch.__version__,
                transformers=transformers.__version__, python=platform.python_version(),
                torch_threads=torch.get_num_threads())


def _inputs_summary(settings: BenchmarkSettings, inputs: BenchmarkInputs) -> dict:
    def frames_shape(project: str) -> list[int]:
        return list(torch.as_tensor(inputs.batches[project][0][0]['frames']).shape)

    return dict(batch_size=inputs.batch_size, frames=frames_shape('geovr'), spatial_frames=frames_shape('spatial_mllm'),
                source='synthetic' if settings.scale == 'paper' else 'SynthVSI train split')


def _measure_models(settings: BenchmarkSettings, configs: dict, inputs: BenchmarkInputs, device: torch.device,
                    interleave: bool, work_dir: str) -> tuple[dict, dict, dict]:
    """The teacher cache, then the training cases, then the inference models; returns their result dicts."""
    cache_dir = osp.join(work_dir, 'teacher_cache')
    model_cfgs = case_model_configs(configs, settings.scale, cache_dir)
    print_log(f'benchmark: caching teacher targets of {len(inputs.geovr_samples)} samples -> {cache_dir}',
              logger='current')
    cache = build_teacher_cache(model_cfgs['geovr_online']['teacher'], inputs.geovr_samples, cache_dir, device)
    free_memory(device)
    optim = {project: cfg.optim_wrapper.to_dict() for project, cfg in configs.items()}
    builders = {name: (lambda name=name: TrainCase(name, model_cfgs[name], optim[CASE_PROJECT[name]],
                                                   inputs.batches[CASE_PROJECT[name]], device))
                for name in TRAIN_CASES}
    training = measure_training(builders, settings.warmup, settings.steps, device, interleave)
    inference = measure_latency(model_cfgs, inputs.geovr_samples[:1], inputs.spatial_samples[:1],
                                settings.new_tokens, settings.latency_reps, device, work_dir)
    free_memory(device)
    return cache, training, inference


def run_benchmark(settings: BenchmarkSettings) -> dict:
    """Run everything (see the module docstring) and return the JSON-serialisable results."""
    with torch_threads(settings.threads):
        return _run(settings)


def _run(settings: BenchmarkSettings) -> dict:
    device = resolve_device(settings)
    init_default_scope('geokit')
    interleave = settings.interleave if settings.interleave is not None else settings.scale == 'tiny'
    load_before = load_average()
    configs = load_project_configs(settings.scale, settings.cfg_options)
    inputs = prepare_inputs(settings, configs)
    with tempfile.TemporaryDirectory(prefix='geokit-bench-', dir=settings.work_dir) as work_dir:
        cache, training, inference = _measure_models(settings, configs, inputs, device, interleave, work_dir)
    insertion = benchmark_insertion(**settings.insertion)
    ratios, goals = ratios_and_goals(training, inference, insertion, paired_steps=interleave)
    return dict(
        **_environment(settings, device), load_average_before=load_before,
        load_average_after=load_average(), interleaved=interleave, settings=asdict(settings),
        inputs=_inputs_summary(settings, inputs), teacher_cache=cache, training=training, inference=inference,
        insertion=insertion, ratios=ratios, goals=goals)
