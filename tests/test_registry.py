"""Registries: unknown types fail early and list what is registered."""
from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

from geokit.registry import HOOKS, LOSSES, MODELS, check_config_types


@LOSSES.register_module()
class _RegistryTestLoss(torch.nn.Module):
    def forward(self, x):
        return x.sum()


def test_unknown_type_lists_registered_names_when_building():
    with pytest.raises(KeyError) as error:
        LOSSES.build(dict(type='NoSuchLoss'))
    message = str(error.value)
    assert "'NoSuchLoss' is not registered in the geokit::loss registry" in message
    assert '_RegistryTestLoss' in message
    assert '@LOSSES.register_module()' in message


def test_known_type_builds():
    assert isinstance(LOSSES.build(dict(type='_RegistryTestLoss')), _RegistryTestLoss)


def test_check_config_types_names_the_config_path_and_registry():
    cfg = Config(dict(model=dict(type='GeometricMLLMTypo',
                                 objectives=[dict(loss=dict(type='_RegistryTestLoss'))])))
    with pytest.raises(KeyError) as error:
        check_config_types(cfg.to_dict())
    message = str(error.value)
    assert 'cfg.model.type' in message and 'geokit::model registry' in message


def test_check_config_types_checks_nested_losses_and_hooks():
    cfg = dict(model=dict(type='_NotChecked', objectives=[dict(loss=dict(type='Typo'))]))
    MODELS.register_module(name='_NotChecked', module=torch.nn.Identity, force=True)
    with pytest.raises(KeyError, match=r'cfg\.model\.objectives\[0\]\.loss\.type'):
        check_config_types(cfg)
    with pytest.raises(KeyError, match=r'cfg\.default_hooks\.logger\.type.*hook registry'):
        check_config_types(dict(default_hooks=dict(logger=dict(type='LogerHook'))))
    check_config_types(dict(default_hooks=dict(logger=dict(type='LoggerHook')), custom_hooks=[
        dict(type='RNGStateHook')]))
    assert HOOKS.get('RNGStateHook') is not None
