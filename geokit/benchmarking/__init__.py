"""Benchmarks of geokit.

* :mod:`~geokit.benchmarking.measure`: timing and peak-memory helpers shared by the benchmark tools (torch only, so
  ``tools/benchmark_kernels.py`` runs on a machine with just torch + triton; this package imports nothing else);
* :mod:`~geokit.benchmarking.suite`: training-step / inference-latency benchmark (``tools/benchmark.py``), composed
  of :mod:`~geokit.benchmarking.configs` (its model configs), :mod:`~geokit.benchmarking.inputs` (samples, teacher
  cache), :mod:`~geokit.benchmarking.training` and :mod:`~geokit.benchmarking.latency` (the measurements),
  :mod:`~geokit.benchmarking.goals` (ratios and goals) and :mod:`~geokit.benchmarking.report` (JSON/markdown/plot);
* :mod:`~geokit.benchmarking.insertion`: geometry-token insertion against a per-token Python-loop reference;
* :mod:`~geokit.benchmarking.published`: the released checkpoints' public settings and processors built from them;
* :mod:`~geokit.benchmarking.rehearsal`: a paper config at real widths, truncated depth (``tools/rehearse.py``).
"""
from .measure import PeakMemory, RssSampler, device_description, malloc_trim, summarize_ms, time_call

__all__ = ['PeakMemory', 'RssSampler', 'device_description', 'malloc_trim', 'summarize_ms', 'time_call']
