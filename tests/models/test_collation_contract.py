"""The data preprocessor's batch contract: a list of sample dicts; pseudo_collate's dict only through uncollate."""
from __future__ import annotations

import pytest
import torch
from mmengine.dataset import pseudo_collate

from geokit.datasets import geometry_collate, list_collate
from geokit.registry import MODELS

from .conftest import make_sample, model_config


@pytest.fixture(scope='module')
def preprocessor():
    return MODELS.build(model_config(objectives=(), teacher=None)).data_preprocessor


@pytest.mark.parametrize('training', [True, False])
def test_pseudo_collate_batch_gives_the_list_batch_inputs(preprocessor, training):
    samples = [make_sample(0), make_sample(1)]     # two samples of two turns: batch size == number of turns
    expected = preprocessor(list_collate(samples), training)
    got = preprocessor(pseudo_collate(samples), training)
    assert set(got['inputs']) == set(expected['inputs'])
    for key, value in expected['inputs'].items():
        assert torch.equal(got['inputs'][key], value) if isinstance(value, torch.Tensor) else \
            got['inputs'][key] == value
    assert torch.equal(got['data_samples']['frames'], expected['data_samples']['frames'])
    assert got['data_samples']['meta'] == expected['data_samples']['meta']


def test_other_batch_forms_are_an_error_naming_list_collate(preprocessor):
    samples = [make_sample(0), make_sample(1)]
    with pytest.raises(TypeError, match=r"collate_fn=dict\(type='geokit.list_collate'\)"):
        preprocessor(geometry_collate(samples), True)
    with pytest.raises(TypeError, match=r"collate_fn=dict\(type='geokit.list_collate'\)"):
        preprocessor(samples[0]['frames'], True)
