"""tools/benchmark.py + geokit.benchmarking: a 1-step run of every case, the report keys, the loop reference."""
from __future__ import annotations

import json
import os.path as osp
import sys

import pytest
import torch

from geokit.benchmarking.configs import PAPER_HW, case_model_configs, load_project_configs
from geokit.benchmarking.insertion import insert_geometry_tokens_loop, outputs_equal, synthetic_batch
from geokit.benchmarking.suite import (
    GOALS,
    LATENCY_MODELS,
    TRAIN_CASES,
    BenchmarkSettings,
    resolve_device,
    synthetic_samples,
)
from geokit.models.mllms.geometry_tokens import insert_geometry_tokens
from geokit.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_benchmark_tool_writes_all_cases_ratios_and_goals(tmp_path):
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import benchmark

    out = tmp_path / 'out'
    data = tmp_path / 'synthvsi'
    results = benchmark.main([
        '--steps', '1', '--warmup', '0', '--latency-reps', '1', '--new-tokens', '4', '--batch-size', '1',
        '--num-batches', '1', '--threads', '1', '--device', 'cpu', '--out', str(out), '--work-dir', str(tmp_path),
        '--cfg-options', f'train_dataloader.dataset.data_root={data}',
        'train_dataloader.dataset.generate_if_missing.num_scenes=3',
        'train_dataloader.dataset.generate_if_missing.frames=8'])
    saved = json.loads((out / 'benchmark.json').read_text())
    assert saved == json.loads(json.dumps(results))
    assert set(saved['training']) == set(TRAIN_CASES) and set(saved['inference']) == set(LATENCY_MODELS)
    for entry in saved['training'].values():
        assert entry['step_ms']['median'] > 0 and entry['samples_per_s'] > 0 and entry['peak_mem_mib'] >= 0
        assert entry['mem_kind'] == 'cpu rss growth'
    for entry in saved['inference'].values():
        assert entry['latency_ms']['median'] > 0 and entry['new_tokens'] == 4
    # the GeoVR export is a stock transformers model with exactly the base model's parameters
    assert saved['inference']['geovr_export']['params'] == saved['inference']['base']['params']
    assert saved['insertion']['identical'] and saved['insertion']['frames'] == 32
    assert saved['insertion']['tokens_per_frame'] == 256
    assert saved['teacher_cache']['samples'] == 1 and saved['teacher_cache']['total_bytes'] > 0
    assert {'geovr_cached_vs_sft_step', 'geovr_export_vs_base_latency', 'insertion_speedup'} <= set(saved['ratios'])
    assert [g['key'] for g in saved['goals']] == [g[0] for g in GOALS]
    assert all(isinstance(g['passed'], bool) for g in saved['goals'])
    markdown = (out / 'benchmark.md').read_text()
    for text in ('| training case |', 'GeoVR cached step / SFT step', 'GeoVR export latency / base latency',
                 'loop / vectorised'):
        assert text in markdown
    assert markdown.count('PASS') + markdown.count('FAIL') == len(GOALS)
    assert (out / 'benchmark.png').read_bytes()[:4] == b'\x89PNG'


def _random_layout(seed: int, merge: int = 2) -> dict:
    """Rows with 0-2 videos of random grids between random text, right-padded, with carried tensors."""
    g = torch.Generator().manual_seed(seed)
    rows, grids = [], []
    for _ in range(3):
        row = torch.randint(100, 200, (int(torch.randint(0, 5, (1,), generator=g)),), generator=g).tolist()
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
            t, h, w = (int(torch.randint(1, 4, (1,), generator=g)), 2 * int(torch.randint(1, 3, (1,), generator=g)),
                       2 * int(torch.randint(1, 3, (1,), generator=g)))
            grids.append([t, h, w])
            row += [10] * (t * h * w // merge ** 2) + torch.randint(100, 200, (2,), generator=g).tolist()
        rows.append(row)
    length = max(len(r) for r in rows) + 1
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, :len(row)] = 1
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    return dict(input_ids=ids, video_token_id=10, video_grid_thw=torch.tensor(grids).view(-1, 3),
                spatial_merge_size=merge, camera_token_id=11, scale_token_id=12, pad_token_id=0,
                per_token={'attention_mask': (mask, 1, 0), 'labels': (labels, -100, -100)})


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('side', ['right', 'left'])
def test_loop_reference_equals_vectorised_insertion(seed, side):
    kwargs = _random_layout(seed)
    assert outputs_equal(insert_geometry_tokens(**kwargs, padding_side=side),
                         insert_geometry_tokens_loop(**kwargs, padding_side=side))


def test_loop_reference_on_the_benchmark_batch():
    kwargs = synthetic_batch(frames=4, tokens_per_frame=16, batch_size=3)
    new_ids, carried = insert_geometry_tokens_loop(**kwargs)
    assert int((new_ids == 11).sum()) == 3 * 4 and int((new_ids == 12).sum()) == 3
    assert outputs_equal((new_ids, carried), insert_geometry_tokens(**kwargs))
    broken = dict(kwargs, video_grid_thw=kwargs['video_grid_thw'] * torch.tensor([2, 1, 1]))
    with pytest.raises(ValueError):
        insert_geometry_tokens_loop(**broken)


def test_paper_scale_configs_build_on_the_meta_device():
    configs = load_project_configs('paper')
    cfgs = case_model_configs(configs, 'paper', cache_dir=None)
    assert cfgs['sft']['objectives'] == [] and cfgs['sft']['teacher'] is None
    assert not cfgs['sft']['data_preprocessor']['insert_geometry_tokens']
    assert cfgs['geovr_online']['teacher']['type'] == 'VGGTTeacher' and cfgs['geovr_online']['teacher']['load_from'] \
        is None
    # (layers, width, patch, frames, video tokens, camera tokens): 480 x 640 frames keep their full resolution;
    # GeoVR as published gives every frame twice, so one temporal token (and one camera token) per frame
    expected = {'geovr_online': (28, 2048, 16, 32, 32 * 15 * 20, 32),
                'spatial_mllm': (36, 2048, 14, 16, 8 * 17 * 23, 0)}
    for name, (layers, width, patch, frames, video_tokens, camera_tokens) in expected.items():
        with torch.device('meta'):
            model = MODELS.build(cfgs[name])
        sample = synthetic_samples(1, frames, *PAPER_HW)
        ids = model.data_preprocessor(sample, True)['inputs']['input_ids']
        assert int((ids == model.backbone.video_token_id).sum()) == video_tokens
        cameras = [i for k, i in model.backbone.geometry_token_ids.items() if k.startswith('camera')]
        assert int(torch.isin(ids, torch.tensor(cameras)).sum()) == camera_tokens
        backbone = model.backbone
        assert (backbone.num_layers, backbone.hidden_size) == (layers, width)
        assert backbone.config.text_config.vocab_size == 151936
        video_processor = backbone.processor.video_processor
        assert video_processor.patch_size == patch == backbone.config.vision_config.patch_size
        # the model's special ids are the (tiny) tokenizer's, so the processor's video tokens are found
        assert backbone.video_token_id == backbone.processor.tokenizer.convert_tokens_to_ids('<|video_pad|>')
    assert cfgs['geovr_cached']['teacher'] == dict(type='CachedTeacher', cache_dir=None)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error raised on machines without CUDA')
def test_paper_scale_needs_cuda():
    with pytest.raises(RuntimeError, match='needs a CUDA GPU'):
        resolve_device(BenchmarkSettings(scale='paper'))


def test_synthetic_paper_inputs_train_geovr_online_and_cached_on_tiny_models(tmp_path):
    """The paper-scale input path (synthetic videos + ground truth for the oracle scale teacher, the teacher cache)
    on the tiny models, one step each."""
    from mmengine.registry import init_default_scope

    from geokit.benchmarking.suite import TrainCase, build_teacher_cache, synthetic_samples

    init_default_scope('geokit')
    configs = load_project_configs('tiny')
    cfgs = case_model_configs(configs, 'tiny', cache_dir=str(tmp_path / 'cache'))
    samples = synthetic_samples(1, num_frames=4, height=48, width=64)
    cpu = torch.device('cpu')
    cache = build_teacher_cache(cfgs['geovr_online']['teacher'], samples, str(tmp_path / 'cache'), cpu)
    assert cache['samples'] == 1 and cache['total_bytes'] > 0
    for name in ('geovr_online', 'geovr_cached'):
        case = TrainCase(name, cfgs[name], configs['geovr'].optim_wrapper.to_dict(), [samples], cpu)
        before = [p.detach().clone() for p in case.model.heads.parameters()]
        case.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, case.model.heads.parameters()))


def _timed(key: str, times: list[float]) -> dict:
    from geokit.benchmarking.measure import summarize_ms

    return {key: summarize_ms(times), f'{key}_all': times}


def test_ratios_and_goals_on_fixed_timings():
    """Known values: every ratio against its in-run baseline, the paired medians, and the PASS/FAIL decisions."""
    from geokit.benchmarking.suite import ratios_and_goals

    training = {'sft': _timed('step_ms', [10.0, 20.0, 30.0]),
                'geovr_online': _timed('step_ms', [40.0, 40.0, 40.0]),
                'geovr_cached': _timed('step_ms', [11.0, 24.0, 30.0]),  # per round 1.1, 1.2, 1.0 of SFT
                'spatial_mllm': _timed('step_ms', [5.0, 10.0, 15.0])}
    inference = {'base': _timed('latency_ms', [100.0, 200.0]), 'geovr_export': _timed('latency_ms', [104.0, 196.0]),
                 'spatial_mllm': _timed('latency_ms', [300.0, 300.0])}
    ratios, goals = ratios_and_goals(training, inference, {'speedup': 150.0})
    expected = {'geovr_cached_vs_sft_step': 24 / 20, 'geovr_online_vs_sft_step': 2.0,
                'geovr_cached_vs_online_step': 24 / 40, 'spatial_mllm_vs_sft_step': 0.5,
                'geovr_export_vs_base_latency': 150 / 150, 'spatial_mllm_vs_base_latency': 2.0,
                'insertion_speedup': 150.0, 'geovr_cached_vs_sft_step_paired': 1.1,
                'geovr_export_vs_base_latency_paired': (1.04 + 0.98) / 2}
    assert list(ratios) == list(expected)
    assert ratios == pytest.approx(expected)
    by_key = {g['key']: g for g in goals}
    assert [g['key'] for g in goals] == ['cached_step', 'export_latency', 'insertion']
    # judged on the paired ratio (1.1 <= 1.15) although the ratio of the medians (1.2) misses the goal
    assert by_key['cached_step']['ratio_name'] == 'geovr_cached_vs_sft_step_paired'
    assert by_key['cached_step']['ratio'] == pytest.approx(1.1) and by_key['cached_step']['passed'] is True
    assert by_key['cached_step']['ratio_of_medians'] == pytest.approx(1.2)
    assert by_key['export_latency']['passed'] is True and by_key['insertion']['passed'] is True
    assert by_key['insertion']['ratio_name'] == 'insertion_speedup' and by_key['insertion']['goal'] == '>= 100x'

    # sequential training (paper scale): steps are not paired, the goal falls back to the ratio of the medians
    ratios, goals = ratios_and_goals(training, inference, {'speedup': 99.0}, paired_steps=False)
    assert 'geovr_cached_vs_sft_step_paired' not in ratios
    assert goals[0]['ratio_name'] == 'geovr_cached_vs_sft_step' and goals[0]['passed'] is False
    assert goals[2]['passed'] is False
    slow_export = dict(inference, geovr_export=_timed('latency_ms', [106.0, 212.0]))
    assert ratios_and_goals(training, slow_export, {'speedup': 150.0})[1][1]['passed'] is False  # 1.06 > 1 + 5 %


def test_goal_comparisons_and_rotation():
    from geokit.benchmarking.goals import Goal
    from geokit.benchmarking.measure import rotated

    assert Goal('a', 'a', 'r', '<= 2', 2.0, 'at_most').passed(2.0)
    assert not Goal('a', 'a', 'r', '<= 2', 2.0, 'at_most').passed(2.01)
    assert Goal('b', 'b', 'r', '>= 3', 3.0, 'at_least').passed(3.0)
    within = Goal('c', 'c', 'r', '1 +- 10 %', 1.0, 'within', tolerance=0.1)
    assert within.passed(0.95) and within.passed(1.05) and not within.passed(1.2)
    with pytest.raises(ValueError, match='comparison'):
        Goal('d', 'd', 'r', '?', 1.0, 'equal').passed(1.0)
    names = ['a', 'b', 'c']
    assert [rotated(names, i) for i in range(4)] == [['a', 'b', 'c'], ['b', 'c', 'a'], ['c', 'a', 'b'],
                                                     ['a', 'b', 'c']]
    # over len(names) rounds every name stands once in every position
    assert all(sorted(rotated(names, i)[p] for i in range(3)) == names for p in range(3))


def test_torch_threads_restores_the_previous_setting():
    from geokit.benchmarking.measure import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with torch_threads(None) as used:  # None (and 0) keep the current number
        assert used == before


def test_paper_scale_inputs_are_synthetic_batches_with_spatial_first_frames():
    from geokit.benchmarking.configs import PAPER_FRAMES
    from geokit.benchmarking.suite import prepare_inputs

    settings = BenchmarkSettings(scale='paper', num_batches=2)
    inputs = prepare_inputs(settings, load_project_configs('paper'))
    assert inputs.batch_size == 1 and [len(b) for b in inputs.batches['geovr']] == [1, 1]
    sample, spatial = inputs.batches['geovr'][1][0], inputs.batches['spatial_mllm'][1][0]
    assert tuple(sample['frames'].shape) == (PAPER_FRAMES['geovr'], *PAPER_HW, 3)
    assert tuple(spatial['frames'].shape) == (PAPER_FRAMES['spatial_mllm'], *PAPER_HW, 3)
    assert torch.equal(spatial['frames'], sample['frames'][:PAPER_FRAMES['spatial_mllm']])
    assert spatial['geometry'] is None and sample['geometry']['depth'].min() >= 1.5
    # the synthetic camera slides along x: cam-from-world translation -0.05 m per frame
    assert torch.allclose(sample['geometry']['extrinsics'][:3, 0, 3], torch.tensor([0.0, -0.05, -0.1]))
    assert sample['meta']['ground_truth'] == '3' and sample['conversations'][1]['value'] == '3'
