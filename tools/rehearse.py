"""Rehearse a paper config at its checkpoints' real widths (random weights, depth truncated) on CPU or GPU.

    python tools/rehearse.py projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py
    python tools/rehearse.py projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py
    python tools/rehearse.py CONFIG --device cuda          # full depth on a GPU
    python tools/rehearse.py CONFIG --llm-layers 2 --vit-layers 2 --teacher-depth 2 --steps 3
    torchrun --nproc-per-node 1 tools/rehearse.py CONFIG --strategy fsdp_zero2 --check-resume --steps 1

On CPU at the defaults each paper config takes 5-7 minutes on 2 cores and about 17 GB of RAM (fp32 weights,
gradients and AdamW states of the real-width trainable parameters; docs/benchmarks.md). Prints the component
table, the training steps and the extrapolated full-depth step ratios and memory (see
geokit/benchmarking/rehearsal.py); --json writes everything. --strategy runs the scale-out check instead
(geokit/benchmarking/strategy_check.py).
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

from geokit.benchmarking.rehearsal import RehearsalSettings, markdown_report, rehearse, write_json
from geokit.benchmarking.strategy_check import STRATEGY_NAMES, check_strategy, format_strategy_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Rehearse a paper config at real widths, truncated depth.')
    parser.add_argument('config', help='a paper config (projects/*/..._vsi590k.py)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--llm-layers', type=int, default=None, help='decoder layers (CPU default 1; cuda: all)')
    parser.add_argument('--vit-layers', type=int, default=None, help='ViT blocks (CPU default 1; cuda: all)')
    parser.add_argument('--teacher-depth', type=int, default=None,
                        help='VGGT aggregator / DINOv2 layers (CPU default 1; cuda: all 24)')
    parser.add_argument('--steps', type=int, default=2, help='training steps K (>= 2)')
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    parser.add_argument('--json', default=None, help='write the results here')
    parser.add_argument('--work-dir', default=None, help='where the cache and the export go (default: /tmp)')
    parser.add_argument('--num-frames', type=int, default=None, help='smoke tests only (default: the config\'s)')
    parser.add_argument('--frame-size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='smoke tests only (default: 480 640, VSI-Bench)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--strategy', choices=STRATEGY_NAMES,
                        help='instead of the rehearsal: train --steps iterations under this scale-out strategy '
                             '(configs/_base_/strategies.py) with FlexibleRunner, checkpoint (run under torchrun)')
    parser.add_argument('--check-resume', action='store_true',
                        help='with --strategy: resume from that checkpoint and train one more iteration')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='pytorch',
                        help='with --strategy: the job launcher (torchrun: pytorch)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    truncated = 1 if args.device == 'cpu' else None
    settings = RehearsalSettings(
        config=args.config, device=args.device, steps=args.steps, threads=args.threads, work_dir=args.work_dir,
        llm_layers=args.llm_layers if args.llm_layers is not None else truncated,
        vit_layers=args.vit_layers if args.vit_layers is not None else truncated,
        teacher_depth=args.teacher_depth if args.teacher_depth is not None else truncated,
        cfg_options=args.cfg_options or {}, num_frames=args.num_frames,
        frame_hw=tuple(args.frame_size) if args.frame_size else None)
    if args.strategy:
        result = check_strategy(settings, args.strategy, check_resume=args.check_resume, steps=args.steps,
                                launcher=args.launcher)
        if args.json:
            write_json(result, args.json)
        print(format_strategy_report(result))
        return result
    results = rehearse(settings)
    if args.json:
        write_json(results, args.json)
    print(markdown_report(results))
    return results


if __name__ == '__main__':
    main()
