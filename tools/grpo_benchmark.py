"""A documented GRPO run: test the SFT checkpoint, train GRPO from it, test again; report the training reward
over the run (per window of steps), the test scores before and after, and the rollout reward of the SFT and the
GRPO weights on the same fixed training prompts with the same sampling seeds (docs/grpo.md).

    python tools/grpo_benchmark.py projects/spatial_mllm/grpo.py work_dirs/spatial_mllm/config/iter_150.safetensors \
        --work-dir work_dirs/grpo_benchmark --cfg-options train_cfg.max_iters=40
    # for a finished run (tools/train.py): its per-step rewards (from the checkpoint's log history) and the
    # fixed-prompt comparison; test scores come from tools/test.py / the run's final validation
    python tools/grpo_benchmark.py projects/spatial_mllm/grpo.py SFT.safetensors --from-run GRPO.safetensors

Writes ``grpo_benchmark.md`` and ``grpo_benchmark.json`` to ``--work-dir``. Not a timed test: one run, numbers as
they come out.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os.path as osp

from mmengine.config import DictAction

from geokit.engine.runner import load_checkpoint_file
from geokit.evaluation.records import write_json_atomic, write_text_atomic
from geokit.rl.report import fixed_prompt_reward, format_grpo_report, format_probe

TOOLS = osp.dirname(osp.abspath(__file__))


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f'geokit_tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scores(metrics: dict) -> dict[str, float]:
    return {key.removeprefix('vsibench/'): float(value) for key, value in metrics.items()
            if key.startswith('vsibench/')}


def _logged_rewards(log_scalars: dict) -> dict[str, list[float]]:
    """Per-step ``train/reward*`` histories (a runner's message hub or a checkpoint's ``message_hub``)."""
    names = ['reward'] + sorted(key.removeprefix('train/') for key in log_scalars
                                if key.startswith('train/reward/')) + ['reward_std', 'completion_length']
    return {name: [float(v) for v in log_scalars[f'train/{name}'].data[0]] for name in names}


def probe(config: str, checkpoints: dict[str, str], num_prompts: int, options: dict) -> dict[str, dict]:
    """:func:`fixed_prompt_reward` of each checkpoint on the first ``num_prompts`` training samples."""
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_state_dict

    from geokit.engine.launch import load_config
    from geokit.registry import DATASETS, MODELS

    cfg = load_config(config, options)
    init_default_scope('geokit')
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    samples = [dataset[i] for i in range(min(num_prompts, len(dataset)))]
    results = {}
    for name, path in checkpoints.items():
        load_state_dict(model, load_checkpoint_file(path)['state_dict'], strict=False)
        results[name] = fixed_prompt_reward(model, samples)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description='GRPO from an SFT checkpoint: reward curve, test before/after.')
    parser.add_argument('config', help='GRPO config (e.g. projects/spatial_mllm/grpo.py)')
    parser.add_argument('sft_checkpoint', help='the SFT checkpoint GRPO starts from')
    parser.add_argument('--work-dir', default='work_dirs/grpo_benchmark')
    parser.add_argument('--window', type=int, default=10, help='training steps per row of the reward table')
    parser.add_argument('--probe-prompts', type=int, default=32,
                        help='training prompts of the fixed-prompt reward comparison (0: skip it)')
    parser.add_argument('--from-run', metavar='GRPO_CHECKPOINT',
                        help='no training: report the per-step rewards logged in this GRPO checkpoint and compare '
                             'its fixed-prompt reward with the SFT checkpoint\'s')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, help='GRPO config overrides')
    args = parser.parse_args(argv)
    options = [f'{key}={value}' for key, value in args.cfg_options.items()]
    if args.from_run:
        rewards = _logged_rewards(load_checkpoint_file(args.from_run)['message_hub']['log_scalars'])
        results = probe(args.config, {'SFT': args.sft_checkpoint, 'GRPO': args.from_run}, args.probe_prompts,
                        args.cfg_options) if args.probe_prompts else {}
        text = format_grpo_report(rewards, args.window, {}, {}) + ('\n' + format_probe(results, args.probe_prompts)
                                                                    if results else '')
        write_text_atomic(osp.join(args.work_dir, 'grpo_run_report.md'), text)
        write_json_atomic(osp.join(args.work_dir, 'grpo_run_report.json'), dict(rewards=rewards, fixed=results))
        print(text)
        return dict(rewards=rewards, fixed_prompt_reward=results)
    before = _tool('test').main([args.config, args.sft_checkpoint, '--work-dir', osp.join(args.work_dir, 'before'),
                                 *(['--cfg-options', *options] if options else [])])
    runner = _tool('train').main([args.config, '--work-dir', osp.join(args.work_dir, 'grpo'), '--cfg-options',
                                  f'load_from={args.sft_checkpoint}', *options])
    rewards = _logged_rewards(runner.message_hub.log_scalars)
    with open(osp.join(runner.work_dir, 'vsibench', 'summary.json')) as handle:
        summary = json.load(handle)
    after = {'overall': 100 * summary['overall'], **{task: 100 * s for task, s in summary['tasks'].items()}}
    report = format_grpo_report(rewards, args.window, _scores(before), after)
    probes = {}
    if args.probe_prompts:
        last = osp.join(runner.work_dir, f'iter_{runner.iter}.safetensors')
        probes = probe(args.config, {'SFT': args.sft_checkpoint, 'GRPO': last}, args.probe_prompts,
                       args.cfg_options)
        report += '\n' + format_probe(probes, args.probe_prompts)
    write_text_atomic(osp.join(args.work_dir, 'grpo_benchmark.md'), report)
    result = dict(config=args.config, sft_checkpoint=args.sft_checkpoint, options=options, rewards=rewards,
                  before=_scores(before), after=after, fixed_prompt_reward=probes)
    write_json_atomic(osp.join(args.work_dir, 'grpo_benchmark.json'), result)
    runner.logger.info('\n' + report)
    return result


if __name__ == '__main__':
    main()
