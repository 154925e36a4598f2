"""Frozen teachers outside the module tree: not saved, not optimised, moved by .to(); one rule for geometry tokens."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from geokit.models.frozen import FrozenModules, HoldsFrozenModules
from geokit.models.geometric_mllm import geometry_token_use
from geokit.registry import MODELS, TEACHERS

from .conftest import FakeTeacher, model_config


@TEACHERS.register_module(force=True)
class _TeacherWithWeights(FakeTeacher):
    """FakeTeacher plus a parameter, so parameters()/requires_grad/dtype have something to show; test-only."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.weight = nn.Parameter(torch.ones(3))


def test_teachers_are_frozen_unsaved_unoptimised_and_move_with_the_model():
    model = MODELS.build(model_config(objectives=('scale',), teacher=dict(type='_TeacherWithWeights'),
                                      scale_teacher=dict(type='_TeacherWithWeights')))
    teachers = [model.teacher, model.scale_teacher]
    assert all(isinstance(t, _TeacherWithWeights) for t in teachers) and teachers[0] is not teachers[1]
    assert all(not t.training and not t.weight.requires_grad for t in teachers)
    owned = {id(p) for p in model.parameters()}
    assert not any(id(p) in owned for t in teachers for p in t.parameters())
    assert not any('weight' == key.rsplit('.', 1)[-1] and 'teacher' in key for key in model.state_dict())
    assert not any(name for name, _ in model.named_modules() if 'teacher' in name)
    model.train()                                     # the surrounding model's mode does not reach the teachers
    assert not any(t.training for t in teachers)
    model.to(torch.float64)
    assert all(t.weight.dtype == torch.float64 and t.proj.dtype == torch.float64 for t in teachers)
    assert next(model.heads.parameters()).dtype == torch.float64


def test_frozen_modules_replace_an_entry_frozen_and_skip_missing_ones():
    class Owner(HoldsFrozenModules):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 2)
            self.frozen = FrozenModules(encoder=nn.Linear(2, 2), absent=None)

    owner = Owner()
    assert list(owner.state_dict()) == ['layer.weight', 'layer.bias'] and len(list(owner.parameters())) == 2
    assert owner.frozen['absent'] is None and len(list(owner.frozen)) == 1
    owner.frozen['encoder'] = replacement = nn.Linear(2, 3)
    assert owner.frozen['encoder'] is replacement and not replacement.weight.requires_grad and not replacement.training
    owner.half()
    assert replacement.weight.dtype == torch.float16 and owner.layer.weight.dtype == torch.float16
    assert 'encoder=Linear' in repr(owner.frozen)


@pytest.mark.parametrize('kind, present, objectives, read', [
    ('loss', True, True, True), ('loss', False, True, True), ('loss', True, False, False),
    ('tensor', True, True, True), ('tensor', False, True, False), ('tensor', True, False, False),
    ('geometry', True, True, True), ('generate', True, True, False), ('generate', False, True, False),
])
def test_geometry_token_use_is_one_rule_per_kind(kind, present, objectives, read):
    use = geometry_token_use({'geometry_tokens': present}, kind, objectives)
    assert (use.present, use.read_taps) == (present, read)


def test_geometry_token_use_errors():
    with pytest.raises(ValueError, match='geometry_tokens_in_predict=True'):
        geometry_token_use({'geometry_tokens': False}, 'geometry', True)
    with pytest.raises(ValueError, match="kind must be one of"):
        geometry_token_use({}, 'predict', True)
