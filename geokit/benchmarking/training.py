"""Training-step measurement of the benchmark: wall time, samples/s and peak memory of ``model.train_step``.

One step is a full ``model.train_step`` (data preprocessor incl. geometry-token insertion, teacher or cache read,
forward, backward, optimizer step) on samples loaded up front (the dataset's video decoding is excluded).
"""
from __future__ import annotations

import copy
import gc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import cycle

import torch
from mmengine.logging import print_log
from mmengine.optim import build_optim_wrapper
from tqdm import tqdm

from geokit.registry import MODELS

from .configs import CASE_DESCRIPTIONS
from .measure import count_parameters, interleaved_times, malloc_trim, peak_memory_per_call, summarize_ms

MS_PER_S = 1e3


@dataclass
class TrainingMeasurement:
    """One training case's numbers; ``asdict`` of it is the case's entry of ``results['training']``.

    Attributes:
        description: the case in words (:data:`~geokit.benchmarking.configs.CASE_DESCRIPTIONS`).
        batch_size: samples per step.
        step_ms: ``{'median', 'min', 'max', 'iqr'}`` of the timed steps (ms, :func:`summarize_ms`).
        step_ms_all: every timed step (ms), in round order (interleaved runs pair them by index).
        samples_per_s: ``batch_size`` / median step time.
        peak_mem_mib: peak memory of one step (MiB); mem_kind: what that peak is (CUDA allocated or CPU RSS growth).
        params, trainable_params: parameter counts of the model.
    """

    description: str
    batch_size: int
    step_ms: dict[str, float]
    step_ms_all: list[float]
    samples_per_s: float
    peak_mem_mib: float
    mem_kind: str
    params: int
    trainable_params: int


def build_model(model_cfg: dict, device: torch.device) -> torch.nn.Module:
    """``MODELS.build`` directly on ``device`` (no CPU initialisation of large random models)."""
    with torch.device(device):
        model = MODELS.build(copy.deepcopy(model_cfg))
    return model.to(device)


def free_memory(device: torch.device) -> None:
    """Collect garbage and hand freed memory back (CUDA cache, glibc heap) before the next measurement."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    malloc_trim()


class TrainCase:
    """One training configuration: model, optimizer wrapper and the batches it cycles through."""

    def __init__(self, name: str, model_cfg: dict, optim_cfg: dict, batches: list[list[dict]],
                 device: torch.device) -> None:
        self.name, self.device = name, device
        self.model = build_model(model_cfg, device).train()
        self.optim_wrapper = build_optim_wrapper(self.model, copy.deepcopy(optim_cfg))
        self.batch_size = len(batches[0])
        self._batches = cycle(batches)
        self.params = count_parameters(self.model)
        self.trainable = count_parameters(self.model, trainable=True)

    def step(self) -> None:
        self.model.train_step(next(self._batches), self.optim_wrapper)

    def close(self) -> None:
        del self.model, self.optim_wrapper


def _measure_group(cases: dict[str, TrainCase], warmup: int, steps: int, device: torch.device,
                   bar: tqdm) -> dict[str, TrainingMeasurement]:
    """Warm-up rounds, one peak-memory step per case, then ``steps`` interleaved timed rounds."""
    calls = {name: case.step for name, case in cases.items()}
    for _ in range(warmup):
        for step in calls.values():
            step()
            bar.update()
    memory = peak_memory_per_call(calls, device, after_call=bar.update)
    times = interleaved_times(calls, steps, device, after_call=bar.update)
    results = {}
    for name, case in cases.items():
        ms = summarize_ms(times[name])
        results[name] = TrainingMeasurement(
            description=CASE_DESCRIPTIONS[name], batch_size=case.batch_size, step_ms=ms, step_ms_all=times[name],
            samples_per_s=case.batch_size / ms['median'] * MS_PER_S, peak_mem_mib=memory[name].mib,
            mem_kind=memory[name].kind, params=case.params, trainable_params=case.trainable)
        print_log(f"benchmark: {name}: {ms['median']:.1f} ms/step, {results[name].samples_per_s:.2f} "
                  f'samples/s, peak {memory[name].mib:.0f} MiB ({memory[name].kind})', logger='current')
    return results


def measure_training(builders: dict[str, Callable[[], TrainCase]], warmup: int, steps: int, device: torch.device,
                     interleave: bool) -> dict[str, dict]:
    """Warm-up, one peak-memory step and ``steps`` timed steps per case.

    ``interleave``: all cases are built at once and their steps alternate (:func:`interleaved_times`); otherwise
    one case at a time is built, measured and freed (large models that do not fit together).

    Returns:
        ``{case: asdict(TrainingMeasurement)}`` in the order of ``builders``.
    """
    groups = [list(builders)] if interleave else [[name] for name in builders]
    results: dict[str, dict] = {}
    bar = tqdm(total=len(builders) * (warmup + 1 + steps), desc='training steps', unit='step')
    for group in groups:
        cases = {}
        for name in group:
            print_log(f'benchmark: building {name}', logger='current')
            cases[name] = builders[name]()
        for name, measurement in _measure_group(cases, warmup, steps, device, bar).items():
            results[name] = asdict(measurement)
        for case in cases.values():
            case.close()
        cases.clear()
        free_memory(device)
    bar.close()
    return results
