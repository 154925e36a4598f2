"""Training step time, samples/s and peak memory of SFT, GeoVR (online / cached teacher) and Spatial-MLLM, and
inference latency of the base MLLM, the GeoVR export and Spatial-MLLM, side by side in one run; checks the goals
of issue 10 (ratios against baselines measured in the same run). Library: :mod:`geokit.benchmarking`.

    python tools/benchmark.py                                   # tiny embedded configs on SynthVSI (CPU is fine)
    python tools/benchmark.py --scale paper --steps 10          # paper architectures, random weights (CUDA GPU)
    python tools/benchmark.py --threads 1 --steps 3 --latency-reps 3 --out work_dirs/bench_quick  # shared CPU

Writes ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` to ``--out`` (default ``work_dirs/benchmark``).
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction
from mmengine.logging import print_log

from geokit.benchmarking.report import format_markdown, write_report
from geokit.benchmarking.suite import BenchmarkSettings, resolve_device, run_benchmark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark training steps and inference latency of geokit models.')
    parser.add_argument('--scale', default='tiny', choices=['tiny', 'paper'],
                        help='tiny: embedded configs + SynthVSI; paper: Qwen3-VL-2B / Qwen2.5-VL-3B / VGGT-1B '
                             'architectures with random weights on synthetic videos (needs CUDA)')
    parser.add_argument('--steps', type=int, default=20, help='timed training steps per case (median reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed training steps per case')
    parser.add_argument('--latency-reps', type=int, default=20, help='timed generations per inference model')
    parser.add_argument('--new-tokens', type=int, default=16, help='tokens generated after the prefill')
    parser.add_argument('--num-batches', type=int, default=2, help='distinct training batches cycled through')
    parser.add_argument('--batch-size', type=int, help="default: the GeoVR config's (tiny) or 1 (paper)")
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--sequential', action='store_true',
                        help='measure one case at a time (default at paper scale) instead of interleaving steps')
    parser.add_argument('--threads', type=int, help="torch threads for the model measurements (default: torch's)")
    parser.add_argument('--insertion-threads', type=int, default=1,
                        help='torch threads for the geometry-token insertion benchmark (0: keep the default)')
    parser.add_argument('--work-dir', help='where the temporary teacher cache and export go (default: $TMPDIR)')
    parser.add_argument('--out', default='work_dirs/benchmark', help='output directory')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override keys of both project configs, e.g. train_dataloader.dataset.data_root=DIR')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = BenchmarkSettings(
        scale=args.scale, steps=args.steps, warmup=args.warmup, latency_reps=args.latency_reps,
        new_tokens=args.new_tokens, num_batches=args.num_batches, batch_size=args.batch_size, device=args.device,
        interleave=False if args.sequential else None, cfg_options=dict(args.cfg_options or {}),
        insertion=dict(threads=args.insertion_threads or None), work_dir=args.work_dir, threads=args.threads)
    try:
        resolve_device(settings)
    except RuntimeError as error:
        raise SystemExit(f'error: {error}') from None
    results = run_benchmark(settings)
    paths = write_report(results, args.out)
    print_log('\n' + format_markdown(results), logger='current')
    print_log(f"benchmark: wrote {paths['json']}, {paths['markdown']}, {paths['plot']}", logger='current')
    return results


if __name__ == '__main__':
    main()
