"""Benchmark the fused Triton loss kernels against eager PyTorch and ``torch.compile`` of the references.

For each loss (confidence depth, cosine alignment, SILog) and each mode (forward, forward+backward) it prints the
median time, the achieved bandwidth (a fixed byte model / time, see below), the percentage of the device's peak
memory bandwidth, the speed-ups of the Triton kernels over eager and compiled PyTorch, and the peak memory used on
top of the inputs.

Sizes (default, "realistic"): depth and SILog over 64 frames of 518x518 (``(1, 64, 518, 518)``); feature alignment
over 4 layers x 32 frames x 37x37 tokens x 1024 channels, concatenated into one ``(175232, 1024)`` call.
``--small`` divides the frame counts by 8 so a CPU finishes in reasonable time.

Byte model (the same for every implementation, so GB/s are comparable and measure distance from the roofline):
forward = one read of every input; forward+backward = two reads of every input + one write of every gradient
(the fused kernels do exactly this; eager PyTorch moves far more). Inputs that take gradients: depth ``pred`` and
``conf``, SILog ``pred``, alignment ``student`` (targets come from a frozen teacher).

On CUDA, times come from ``triton.testing.do_bench`` (L2 flushed between runs, median). On CPU only the eager
reference runs (the Triton kernels need a GPU, or the far-too-slow interpreter) and peak memory is the growth of
the process' resident set size during one run (after ``malloc_trim``), sampled every millisecond.

    PYTHONPATH=$PWD python tools/benchmark_kernels.py                    # GPU, realistic sizes
    PYTHONPATH=$PWD python tools/benchmark_kernels.py --small --reps 3   # CPU
    PYTHONPATH=$PWD python tools/benchmark_kernels.py --losses depth --peak-gbps 3350 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from geokit import ops
from geokit.benchmarking.measure import RssSampler, device_description, malloc_trim

#: Peak DRAM bandwidth in GB/s by substring of ``torch.cuda.get_device_name()``, most specific first.
PEAK_GBPS: list[tuple[str, float]] = [
    ('GH200', 4000.0), ('H200', 4800.0), ('H100 NVL', 3900.0), ('H100 PCIe', 2000.0), ('H100', 3350.0),
    ('H800 PCIe', 2000.0), ('H800', 3350.0), ('B200', 8000.0), ('B100', 8000.0),
    ('A100-SXM4-80GB', 2039.0), ('A100 80GB PCIe', 1935.0), ('A100-PCIE-40GB', 1555.0), ('A100-SXM4-40GB', 1555.0),
    ('A100', 1555.0), ('A800', 2039.0), ('A10G', 600.0), ('A10', 600.0), ('L40S', 864.0), ('L40', 864.0),
    ('L4', 300.0), ('RTX 6000 Ada', 960.0), ('RTX 4090', 1008.0), ('RTX 3090', 936.0), ('V100', 900.0),
    ('T4', 320.0),
]


@dataclass
class Result:
    loss: str
    mode: str
    impl: str
    ms: float
    gbps: float
    pct_peak: float | None
    peak_mem_mib: float


def peak_bandwidth(device: torch.device, override: float | None) -> float | None:
    """Peak memory bandwidth in GB/s: ``override``, else looked up by device name (None if unknown or CPU)."""
    if override:
        return override
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    return next((gbps for key, gbps in PEAK_GBPS if key in name), None)


def make_cases(device: torch.device, small: bool, feat_dtype: torch.dtype, depth_dtype: torch.dtype):
    """``{loss: (fn(impl) -> callable(*inputs), inputs, grad_flags)}`` at realistic (or /8 frame) sizes."""
    g = torch.Generator(device=device).manual_seed(0)
    frames = 8 if small else 64
    shape = (1, frames, 518, 518)
    pred = (torch.rand(shape, generator=g, device=device) * 5 + 0.5).to(depth_dtype)
    conf = (1 + torch.rand(shape, generator=g, device=device) * 2).to(depth_dtype)
    target = (torch.rand(shape, generator=g, device=device) * 5 + 0.5).to(depth_dtype)
    mask = torch.rand(shape, generator=g, device=device) < 0.9
    rows = 4 * (4 if small else 32) * 37 * 37
    student = torch.randn(rows, 1024, generator=g, device=device).to(feat_dtype)
    teacher = torch.randn(rows, 1024, generator=g, device=device).to(feat_dtype)
    row_mask = torch.rand(rows, generator=g, device=device) < 0.95
    return {
        'depth': (lambda impl: lambda p, c, t, m: ops.confidence_depth_loss(p, c, t, m, impl=impl),
                  (pred, conf, target, mask), (True, True, False, False)),
        'cosine': (lambda impl: lambda s, t, m: ops.cosine_alignment_loss(s, t, m, impl=impl),
                   (student, teacher, row_mask), (True, False, False)),
        'silog': (lambda impl: lambda p, t, m: ops.silog_loss(p, t, m, impl=impl),
                  (pred, target, mask), (True, False, False)),
    }


def model_bytes(inputs: tuple[torch.Tensor, ...], grad_flags: tuple[bool, ...], backward: bool) -> int:
    read = sum(t.numel() * t.element_size() for t in inputs)
    if not backward:
        return read
    written = sum(t.numel() * t.element_size() for t, f in zip(inputs, grad_flags) if f)
    return 2 * read + written


def measure(step: Callable[[], None], device: torch.device, reps: int,
            grads: list[torch.Tensor]) -> tuple[float, float]:
    """``(median ms, peak extra memory in MiB)`` of ``step``."""
    def run() -> None:
        for t in grads:
            t.grad = None
        step()

    if device.type == 'cuda':
        import triton.testing
        run()  # warm-up: compilation / autotuning
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        ms = triton.testing.do_bench(run, warmup=25, rep=max(reps, 1) * 20, return_mode='median')
        return float(ms), peak
    run()
    malloc_trim()
    with RssSampler() as sampler:
        run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), sampler.peak / 2**20


def benchmark(args: argparse.Namespace) -> list[Result]:
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    on_gpu = device.type == 'cuda'
    feat_dtype = getattr(torch, args.feat_dtype or ('bfloat16' if on_gpu else 'float32'))
    depth_dtype = getattr(torch, args.depth_dtype)
    peak = peak_bandwidth(device, args.peak_gbps)
    cases = make_cases(device, args.small, feat_dtype, depth_dtype)
    impls = ['eager', 'compile', 'triton'] if on_gpu else ['eager']
    results = []
    for name in args.losses:
        build, inputs, flags = cases[name]
        for mode in ('fwd', 'fwd+bwd'):
            backward = mode == 'fwd+bwd'
            leaves = tuple(t.detach().requires_grad_(f and backward) for t, f in zip(inputs, flags))
            grads = [t for t in leaves if t.requires_grad]
            nbytes = model_bytes(inputs, flags, backward)
            for impl in impls:
                fn = build('triton' if impl == 'triton' else 'torch')
                if impl == 'compile':
                    fn = torch.compile(fn)

                def step(fn=fn, leaves=leaves, backward=backward) -> None:
                    if backward:
                        fn(*leaves).backward()
                    else:
                        with torch.no_grad():
                            fn(*leaves)

                ms, mem = measure(step, device, args.reps, grads)
                gbps = nbytes / (ms * 1e-3) / 1e9
                results.append(Result(name, mode, impl, ms, gbps, 100 * gbps / peak if peak else None, mem))
    return results


def format_table(results: list[Result], device_name: str, peak: float | None) -> str:
    by_key = {(r.loss, r.mode, r.impl): r for r in results}
    lines = [f'device: {device_name}; peak bandwidth: {f"{peak:.0f} GB/s" if peak else "unknown (use --peak-gbps)"}',
             f'{"loss":<7} {"mode":<8} {"impl":<8} {"time ms":>9} {"GB/s":>9} {"% peak":>7} {"vs eager":>9} '
             f'{"vs compile":>10} {"peak MiB":>9}']
    for r in results:
        eager = by_key.get((r.loss, r.mode, 'eager'))
        compiled = by_key.get((r.loss, r.mode, 'compile'))
        vs_eager = f'{eager.ms / r.ms:.2f}x' if eager and r.impl != 'eager' else '-'
        vs_compile = f'{compiled.ms / r.ms:.2f}x' if compiled and r.impl == 'triton' else '-'
        pct = f'{r.pct_peak:.1f}' if r.pct_peak is not None else '-'
        lines.append(f'{r.loss:<7} {r.mode:<8} {r.impl:<8} {r.ms:>9.3f} {r.gbps:>9.3g} {pct:>7} {vs_eager:>9} '
                     f'{vs_compile:>10} {r.peak_mem_mib:>9.1f}')
    return '\n'.join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark geokit fused loss kernels (time, GB/s, % of peak).')
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--small', action='store_true', help='1/8 of the frames (8 depth frames, 4 feature frames)')
    parser.add_argument('--losses', nargs='+', default=['depth', 'cosine', 'silog'],
                        choices=['depth', 'cosine', 'silog'], help='which losses to run')
    parser.add_argument('--reps', type=int, default=10, help='timed repetitions on CPU (x20 ms budget on GPU)')
    parser.add_argument('--depth-dtype', default='float32', choices=['float32', 'bfloat16', 'float16'])
    parser.add_argument('--feat-dtype', choices=['float32', 'bfloat16', 'float16'],
                        help='feature dtype (default: bfloat16 on GPU, float32 on CPU)')
    parser.add_argument('--peak-gbps', type=float, help='peak memory bandwidth of the device, GB/s')
    parser.add_argument('--json', help='also write the results to this JSON file')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    results = benchmark(args)
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    name = device_description(device)
    print(format_table(results, name, peak_bandwidth(device, args.peak_gbps)))
    if args.json:
        tmp = f'{args.json}.tmp'
        with open(tmp, 'w') as f:
            json.dump({'device': name, 'small': args.small, 'results': [asdict(r) for r in results]}, f, indent=2)
        os.replace(tmp, args.json)
    return results


if __name__ == '__main__':
    main()
