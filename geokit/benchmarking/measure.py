"""Timing and peak-memory helpers shared by the benchmark tools (``tools/benchmark*.py``).

Peak memory has two meanings, stated with every number (:attr:`PeakMemory.kind`):

* CUDA: ``torch.cuda.max_memory_allocated`` during the measured region (absolute: weights, optimizer states,
  activations and temporaries of the step, as the caching allocator sees them);
* CPU: the growth of the process' resident set size during the region over its value at the start (after
  ``malloc_trim``), sampled every millisecond — memory allocated *before* the region (weights, optimizer states)
  is not counted.
"""
from __future__ import annotations

import ctypes
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch


class RssSampler:
    """Peak resident-set growth (bytes, :attr:`peak`) of this process while the context is active."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self._page = os.sysconf('SC_PAGE_SIZE')
        self.interval_s = interval_s
        self.peak = 0

    def _rss(self) -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self._page

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self._base)
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._base, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self._base)


def count_parameters(module: torch.nn.Module, trainable: bool | None = None) -> int:
    """Parameters of ``module`` (each shared parameter once), optionally only the (non-)trainable ones."""
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def malloc_trim() -> None:
    """Return freed heap pages to the OS (glibc) so the RSS growth of the next region reflects its own peak."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of the enclosed region in MiB (:attr:`mib`); :attr:`kind` says what was measured.

    See the module docstring for the CUDA (absolute ``max_memory_allocated``) and CPU (RSS growth) meanings.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.kind = 'cuda max_memory_allocated' if self.device.type == 'cuda' else 'cpu rss growth'
        self.mib = float('nan')

    def __enter__(self) -> PeakMemory:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            malloc_trim()
            self._sampler = RssSampler().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._sampler.__exit__(*exc)
            self.mib = self._sampler.peak / 2**20


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call in milliseconds (the device is synchronised before and after)."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` torch intra-op threads (None or 0: keep the current number), restoring the
    previous number afterwards; yields the number in use."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def rotated(names: Sequence[str], index: int) -> list[str]:
    """``names`` starting at ``index % len(names)``: over the rounds every case runs in every position of a round
    (measured on the shared CPU: the first model of a round ran ~15 % slower than the second)."""
    shift = index % len(names)
    return list(names[shift:]) + list(names[:shift])


def peak_memory_per_call(calls: Mapping[str, Callable[[], object]], device: torch.device,
                         after_call: Callable[[], object] | None = None) -> dict[str, PeakMemory]:
    """One call of each, in order, inside :class:`PeakMemory`; ``after_call`` runs after each (a progress bar)."""
    memory = {}
    for name, call in calls.items():
        with PeakMemory(device) as peak:
            call()
        memory[name] = peak
        if after_call is not None:
            after_call()
    return memory


def interleaved_times(calls: Mapping[str, Callable[[], object]], rounds: int, device: torch.device,
                      after_call: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """``rounds`` rounds of one timed call (:func:`time_call`, ms) of each, in the :func:`rotated` order of the
    round, so slow drifts of a shared machine's load hit every call alike; ``{name: [ms per round]}``."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(rounds):
        for name in rotated(list(calls), index):
            times[name].append(time_call(calls[name], device))
            if after_call is not None:
                after_call()
    return times


def summarize_ms(times: Sequence[float]) -> dict[str, float]:
    """``{'median', 'min', 'max', 'iqr'}`` of a list of times (ms)."""
    values = sorted(times)
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {'median': statistics.median(values), 'min': values[0], 'max': values[-1],
            'iqr': quartiles[2] - quartiles[0]}


def device_description(device: torch.device) -> str:
    """A human-readable name of the device (GPU name, or CPU model, cores and torch threads)."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores, ' \
           f'{torch.get_num_threads()} torch threads)'


def load_average() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages (None where unavailable): how shared the machine was."""
    try:
        return os.getloadavg()
    except OSError:
        return None
