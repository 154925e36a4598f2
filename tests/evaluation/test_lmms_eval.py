"""lmms-eval integration: scoring parity with lmms-eval's own ``vsibench`` utilities, the geokit model plugin.

Needs the ``eval`` extra (``pip install -e ".[eval]"``, lmms-eval); without it every test here is skipped with that
reason (shown by ``pytest -ra``). Run: ``python -m pytest tests/evaluation/test_lmms_eval.py -m lmms_eval``.
"""
import json
import os
import os.path as osp

import pytest

from geokit.evaluation import VSIBenchMetric, aggregate_scores, score_prediction
from geokit.evaluation.vsibench import DIRECTION_QUESTION_TYPES, TASKS

from ..tool_loader import load_tool

try:
    from lmms_eval.tasks.vsibench import utils as lmms_vsibench
except ImportError as error:  # the eval extra is not installed
    lmms_vsibench = None
    IMPORT_ERROR = f'{type(error).__name__}: {error}'

pytestmark = [pytest.mark.lmms_eval, pytest.mark.skipif(
    lmms_vsibench is None, reason='needs lmms-eval: pip install -e ".[eval]" (README, "lmms-eval")'
    + ('' if lmms_vsibench is not None else f' -- {IMPORT_ERROR}'))]

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'projects', 'geovr', 'config.py')
#: Generations covering what the two parsing rules read differently (and what they read the same).
ANSWER_STYLES = [
    lambda gt, mc: gt,                                    # exactly right
    lambda gt, mc: f'{gt}.' if mc else f'{gt} meters',    # right, with trailing text
    lambda gt, mc: f'The answer is {gt}.',                # right, after words: only extract_number reads it
    lambda gt, mc: 'Z' if mc else 'many',                 # wrong / no number
    lambda gt, mc: gt.lower() if mc else f'{float(gt) * 1.3:.2f}',   # case / 30 % off
    lambda gt, mc: 'C' if mc else 'three',                # number words
    lambda gt, mc: 'B' if mc else f'about {float(gt) / 2} or {gt}',  # the first number wins
    lambda gt, mc: '' if mc else '-2',
]


def predictions_for(items):
    return [ANSWER_STYLES[index % len(ANSWER_STYLES)](str(item['ground_truth']), bool(item['options']))
            for index, item in enumerate(items)]


@pytest.fixture(scope='module')
def test_items(synthvsi_root):
    items = [json.loads(line) for line in open(osp.join(synthvsi_root, 'test.jsonl'))]
    assert {item['question_type'] for item in items} >= set(DIRECTION_QUESTION_TYPES)   # lmms-eval needs all three
    return items


def lmms_scores(items, predictions):
    """Per-sample docs scored by lmms-eval's own ``vsibench_process_results``, and its aggregation."""
    docs = [lmms_vsibench.vsibench_process_results(dict(item), [prediction])['vsibench_overall']
            for item, prediction in zip(items, predictions)]
    return docs, lmms_vsibench._compute_all_subscores(docs)


def test_scoring_parity_with_lmms_eval_vsibench(test_items, tmp_path):
    predictions = predictions_for(test_items)
    docs, lmms_summary = lmms_scores(test_items, predictions)
    ours = []
    for item, prediction, doc in zip(test_items, predictions, docs):
        metric = 'accuracy' if item['options'] else 'MRA:.5:.95:.05'
        score = score_prediction(prediction, item['ground_truth'], item['question_type'], mode='lmms-eval')
        assert score == pytest.approx(float(doc[metric]), abs=1e-12), (prediction, item['ground_truth'])
        ours.append(dict(question_type=item['question_type'], score=score))
    summary = aggregate_scores(ours)
    assert summary['overall'] == pytest.approx(lmms_summary['overall'], abs=1e-12)
    lmms_tasks = {key.rsplit('_', 1)[0] if key.endswith('_accuracy') else key.split('_MRA')[0]: value
                  for key, value in lmms_summary.items() if key != 'overall'}
    assert set(lmms_tasks) == set(summary['tasks']) <= set(TASKS) and len(lmms_tasks) >= 6
    for task, value in lmms_tasks.items():
        assert summary['tasks'][task] == pytest.approx(value, abs=1e-12)
    # the parsing rules matter on these predictions: the 2024 rules score lower
    official = aggregate_scores([dict(question_type=i['question_type'], score=score_prediction(
        p, i['ground_truth'], i['question_type'])) for i, p in zip(test_items, predictions)])
    assert official['overall'] < summary['overall']

    # the same through geokit's metric (the result files of tools/test.py)
    metric = VSIBenchMetric(out_dir=str(tmp_path), mode='lmms-eval')
    metas = [dict(item, ground_truth=str(item['ground_truth'])) for item in test_items]
    metric.process([dict(meta=m) for m in metas], [dict(prediction=p) for p in predictions])
    metrics = metric.evaluate(len(test_items))
    assert metrics['vsibench/overall'] == pytest.approx(100 * lmms_vsibench.vsibench_aggregate_overall(docs),
                                                        abs=1e-4)   # lmms-eval rounds to 6 decimals


def test_extract_number_parity(test_items):
    texts = ['3', 'There are 3 chairs', 'three', 'twenty-one', 'three hundred and twenty-one', 'one apple, room 2',
             'room 2, one apple', '-1.5 m', 'no', '', '2,5', '1e3', 'a hundred', 'thousand', '3.', '.5', 'eleven 4']
    from geokit.evaluation import extract_number
    for text in texts:
        assert extract_number(text) == lmms_vsibench.extract_number(text), text


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from geokit.engine.checkpoint import save_checkpoint_safetensors
    from geokit.registry import MODELS

    init_default_scope('geokit')
    model = MODELS.build(dict(Config.fromfile(CONFIG).model, teacher=None, scale_teacher=None))
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    path = str(tmp_path_factory.mktemp('ckpt') / 'iter_1.safetensors')
    save_checkpoint_safetensors({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.slow
def test_geokit_model_runs_the_vsibench_task_offline(synthvsi_root, checkpoint, tmp_path, monkeypatch):
    """lmms-eval's evaluator, the local vsibench_synthvsi task and the geokit model plugin, as the docs run them."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.models import get_model
    from lmms_eval.tasks import TaskManager

    from geokit.integrations.lmms_eval import TASKS_DIR, GeokitLMM

    os.makedirs(tmp_path / 'data')
    os.symlink(synthvsi_root, tmp_path / 'data' / 'synthvsi')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HF_DATASETS_OFFLINE', '1')
    assert get_model('geokit') is GeokitLMM                      # registered through the entry point
    model = GeokitLMM(config=CONFIG, checkpoint=checkpoint, batch_size=4)
    model.frame_sampler = dict(type='UniformSampler', num_frames=4)   # the tiny SynthVSI videos have 4 frames
    results = simple_evaluate(model=model, tasks=['vsibench_synthvsi'], task_manager=TaskManager(
        include_path=TASKS_DIR), log_samples=True)   # all questions: lmms-eval's aggregation needs every type
    samples = results['samples']['vsibench_synthvsi']
    assert len(samples) == len(open(osp.join(synthvsi_root, 'test.jsonl')).readlines())
    # geokit's scorer on the generations lmms-eval logged gives lmms-eval's per-sample scores
    for sample in samples:
        doc, prediction = sample['doc'], sample['filtered_resps'][0]
        score = score_prediction(prediction, doc['ground_truth'], doc['question_type'], mode='lmms-eval')
        logged = sample['vsibench_overall']
        assert score == pytest.approx(float(logged['accuracy' if doc['options'] else 'MRA:.5:.95:.05']))
    assert 0 <= results['results']['vsibench_synthvsi']['vsibench_overall,none'] <= 1


@pytest.mark.slow
def test_exported_geovr_checkpoint_runs_with_lmms_eval_qwen_vl_class(checkpoint, tmp_path, monkeypatch):
    """tools/export_hf.py's output is a stock Qwen3-VL checkpoint: lmms-eval's own qwen3_vl model class runs it."""

    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from geokit.datasets import ensure_synthvsi
    from geokit.integrations.lmms_eval import TASKS_DIR

    export_hf = load_tool('export_hf')
    exported = str(tmp_path / 'exported')
    export_hf.main([CONFIG, checkpoint, '--out', exported])
    # decord (lmms-eval's video reader for Qwen-VL) garbles the 32 x 48 videos of the shared fixture; 64 x 64 reads
    synthvsi_root = str(ensure_synthvsi(tmp_path / 'data' / 'synthvsi', num_scenes=3, frames=4, resolution=(64, 64),
                                        seed=0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HF_DATASETS_OFFLINE', '1')
    results = simple_evaluate(
        model='qwen3_vl', model_args=f'pretrained={exported},device=cpu,device_map=cpu,max_num_frames=4,'
                                     f'min_pixels=1024,max_pixels=3136',
        tasks=['vsibench_synthvsi'], task_manager=TaskManager(include_path=TASKS_DIR), log_samples=True,
        batch_size=4)
    samples = results['samples']['vsibench_synthvsi']
    assert len(samples) == len(open(osp.join(synthvsi_root, 'test.jsonl')).readlines())
    assert all(isinstance(sample['filtered_resps'][0], str) for sample in samples)
    assert 0 <= results['results']['vsibench_synthvsi']['vsibench_overall,none'] <= 1
