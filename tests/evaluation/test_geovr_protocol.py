"""GeoVR's own VSI-Bench protocol (``mode='geovr'``, ``prompt_style='geovr'``): hand-computed scores."""
from __future__ import annotations

import os.path as osp

import pytest
from mmengine.config import Config

from geokit.datasets.prompts import build_geovr_prompt
from geokit.evaluation.vsibench import aggregate_scores, geovr_score_prediction, score_prediction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('prediction, geovr, official', [
    ('B', 1.0, 1.0),
    ('B. chair', 1.0, 1.0),          # GeoVR reads the first character
    ('b', 0.0, 1.0),                 # GeoVR compares case-sensitively
    (' The answer is B', 0.0, 0.0),
    ('', 0.0, 0.0),
])
def test_multiple_choice_parsing(prediction, geovr, official):
    assert geovr_score_prediction(prediction, 'B', 'route_planning') == geovr
    assert score_prediction(prediction, 'B', 'route_planning', mode='geovr') == geovr
    assert score_prediction(prediction, 'B', 'route_planning') == official


@pytest.mark.parametrize('prediction, target, geovr, official', [
    ('3', '3', 1.0, 1.0),
    ('3.5', '3', 0.7, 0.7),          # error 1/6 < 1 - c for c = 0.50 .. 0.80: 7 of 10
    ('3.75', '3', 0.5, 0.6),         # error exactly 0.25: GeoVR's '<' drops c = 0.75, the official '<=' keeps it
    ('3 chairs', '3', 0.0, 1.0),     # GeoVR needs the whole text to be a number
    ('six', '3', 0.0, 0.0),
])
def test_numerical_parsing(prediction, target, geovr, official):
    assert geovr_score_prediction(prediction, target, 'object_counting') == pytest.approx(geovr)
    assert score_prediction(prediction, target, 'object_counting', mode='geovr') == pytest.approx(geovr)
    assert score_prediction(prediction, target, 'object_counting') == pytest.approx(official)


def test_zero_ground_truth():
    assert geovr_score_prediction('0', '0', 'object_counting') == 1.0
    assert geovr_score_prediction('1', '0', 'object_counting') == 0.0


def test_aggregation_pools_direction_samples_and_divides_by_eight():
    records = [dict(question_type='object_rel_direction_easy', score=1.0),
               dict(question_type='object_rel_direction_easy', score=1.0),
               dict(question_type='object_rel_direction_hard', score=0.0)]
    geovr = aggregate_scores(records, 'geovr')
    assert geovr['tasks']['object_rel_direction'] == pytest.approx(2 / 3)       # 2 of 3 samples
    assert geovr['overall'] == pytest.approx(2 / 3 / 8)                          # 7 tasks without samples count 0
    official = aggregate_scores(records)
    assert official['tasks']['object_rel_direction'] == pytest.approx(0.5)      # mean of easy 1.0 and hard 0.0
    assert official['overall'] == pytest.approx(0.5)
    with pytest.raises(KeyError, match='scoring mode'):
        aggregate_scores(records, 'lenient')


def test_geovr_prompt():
    mca = dict(question_type='route_planning', question='Which way?', options=['A. left', 'B. right'])
    assert build_geovr_prompt(mca) == "Which way?\nA. left\nB. right\nAnswer with ONLY the option's letter directly."
    na = dict(question_type='object_counting', question='How many chairs?')
    assert build_geovr_prompt(na) == 'How many chairs?\nPlease answer the question ONLY using a single Arabic numeral.'


def test_eval_config_sets_geovr_protocol():
    cfg = Config.fromfile(osp.join(ROOT, 'projects/geovr/eval_geovr_protocol.py'))
    assert cfg.model.generation_cfg == dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20,
                                            repetition_penalty=1.0)
    assert cfg.test_dataloader.dataset.frame_sampler.num_frames == 128
    assert cfg.test_dataloader.dataset.prompt_style == 'geovr' and cfg.test_evaluator.mode == 'geovr'
    assert cfg.model.objectives == [] and cfg.model.teacher is None
    # the training config keeps the official protocol
    train = Config.fromfile(osp.join(ROOT, 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py'))
    assert train.test_evaluator.get('mode', 'official-2024') == 'official-2024'
    assert train.test_dataloader.dataset.get('prompt_style', 'official') == 'official'
