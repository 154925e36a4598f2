"""Every geokit registry, in one place.

The mmengine-managed kinds (models, datasets, transforms, metrics, hooks, ...) are children of mmengine's root
registries, so the mmengine ``Runner`` finds geokit's classes when ``default_scope='geokit'``. The geokit-specific
kinds (MLLM backbones, 3D teachers, heads, losses, connectors, frame samplers, GRPO rewards) are registries of
their own in the same scope. Every registry has ``locations=`` so that building from a config imports the module
that defines the class: a config never has to import geokit by hand.

An unknown ``type=`` fails with a message that names the registry and lists what is registered in it (see
:func:`build_from_cfg_listing` and :func:`check_config_types`).
"""
from __future__ import annotations

from typing import Any

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry, build_from_cfg, build_model_from_cfg

SCOPE = 'geokit'


def _unknown_type_message(registry: Registry, type_name: str) -> str:
    registry.import_from_location()
    registered = sorted(registry.module_dict)
    return (f"'{type_name}' is not registered in the {registry.scope}::{registry.name} registry. "
            f"Registered there: {', '.join(registered) if registered else '(nothing)'}. "
            f"Fix the `type=` in your config, or register your class with "
            f"@{_variable_name(registry)}.register_module() (from geokit.registry) in a file imported through "
            f"`custom_imports`.")


def _variable_name(registry: Registry) -> str:
    for name, value in globals().items():
        if value is registry and name.isupper():
            return name
    return registry.name.upper()


def _raise_if_unknown(cfg: Any, registry: Registry) -> None:
    type_name = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(type_name, str) and registry.get(type_name) is None:
        raise KeyError(_unknown_type_message(registry, type_name))


def build_from_cfg_listing(cfg: Any, registry: Registry, default_args: dict | None = None) -> Any:
    """mmengine's ``build_from_cfg``, with an unknown type reported together with what is registered."""
    _raise_if_unknown(cfg, registry)
    return build_from_cfg(cfg, registry, default_args)


def build_module_listing(cfg: Any, registry: Registry, default_args: dict | None = None) -> Any:
    """mmengine's ``build_model_from_cfg`` (a list of configs gives an ``nn.Sequential``) with the same errors."""
    for item in cfg if isinstance(cfg, list) else [cfg]:
        _raise_if_unknown(item, registry)
    return build_model_from_cfg(cfg, registry, default_args)


# ----------------------------------------------------------------- children of mmengine's roots
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['geokit.engine'])
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES, locations=['geokit.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['geokit.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['geokit.engine'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, locations=['geokit.engine'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, build_func=build_from_cfg_listing,
                    locations=['geokit.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS,
                         locations=['geokit.datasets', 'geokit.evaluation'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, build_func=build_from_cfg_listing,
                      locations=['geokit.datasets'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['geokit.datasets'])
MODELS = Registry('model', parent=MMENGINE_MODELS, build_func=build_module_listing,
                  locations=['geokit.models', 'geokit.rl'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['geokit.models'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['geokit.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['geokit.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      locations=['geokit.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['geokit.engine'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['geokit.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['geokit.evaluation'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, locations=['geokit.visualization'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, locations=['geokit.visualization'])

# ----------------------------------------------------------------- geokit's own kinds
MLLMS = Registry('mllm', scope=SCOPE, build_func=build_module_listing, locations=['geokit.models.mllms'])
TEACHERS = Registry('teacher', scope=SCOPE, build_func=build_module_listing, locations=['geokit.models.teachers'])
HEADS = Registry('head', scope=SCOPE, build_func=build_module_listing, locations=['geokit.models.heads'])
LOSSES = Registry('loss', scope=SCOPE, build_func=build_module_listing,
                  locations=['geokit.models.losses', 'geokit.rl'])
CONNECTORS = Registry('connector', scope=SCOPE, build_func=build_module_listing,
                      locations=['geokit.models.connectors'])
FRAME_SAMPLERS = Registry('frame_sampler', scope=SCOPE, build_func=build_from_cfg_listing,
                          locations=['geokit.datasets.frame_samplers'])
REWARDS = Registry('reward', scope=SCOPE, build_func=build_from_cfg_listing, locations=['geokit.rl'])

#: Which registry builds the dict found under a config key (used by :func:`check_config_types`).
CONFIG_KEY_REGISTRIES: dict[str, Registry] = {
    'model': MODELS,
    'mllm': MLLMS, 'backbone': MLLMS,
    'teacher': TEACHERS, 'spatial_encoder': TEACHERS, 'scale_teacher': TEACHERS,
    'head': HEADS,
    'loss': LOSSES,
    'connector': CONNECTORS,
    'frame_sampler': FRAME_SAMPLERS,
    'reward': REWARDS, 'rewards': REWARDS,
    'dataset': DATASETS,
    'pipeline': TRANSFORMS,
    'sampler': DATA_SAMPLERS,
    'optimizer': OPTIMIZERS,
    'optim_wrapper': OPTIM_WRAPPERS,
    'param_scheduler': PARAM_SCHEDULERS,
    'custom_hooks': HOOKS,
    'val_evaluator': METRICS, 'test_evaluator': METRICS,
    'train_cfg': LOOPS, 'val_cfg': LOOPS, 'test_cfg': LOOPS,
    'log_processor': LOG_PROCESSORS,
    'strategy': STRATEGIES,
    'visualizer': VISUALIZERS, 'vis_backends': VISBACKENDS,
}


#: Config keys holding a dict of ``name -> cfg`` whose values all belong to one registry.
CONFIG_MAPPING_KEYS: dict[str, Registry] = {'default_hooks': HOOKS}


def _registry_for_key(key: str) -> Registry | None:
    if key in CONFIG_KEY_REGISTRIES:
        return CONFIG_KEY_REGISTRIES[key]
    for suffix in ('loss', 'head', 'teacher', 'connector', 'frame_sampler', 'dataset', 'pipeline'):
        if key.endswith(suffix) or key.endswith(suffix + 's') or key.endswith(suffix + 'es'):
            return CONFIG_KEY_REGISTRIES[suffix]
    return None


def check_config_types(cfg: Any, path: str = 'cfg', registry: Registry | None = None) -> None:
    """Walk a config and fail early, before anything is built, on a ``type=`` that is not registered.

    The registry of a dict is taken from the key it sits under (``loss=``/``losses=`` -> LOSSES,
    ``teacher=`` -> TEACHERS, ...; see :data:`CONFIG_KEY_REGISTRIES`). Types given as classes, ``'scope.Name'``
    strings and dicts under keys with no known registry are left to the builders.
    Raises:
        KeyError: naming the config path, the registry and what is registered there.
    """
    if isinstance(cfg, dict):
        type_name = cfg.get('type')
        if registry is not None and isinstance(type_name, str) and '.' not in type_name \
                and registry.get(type_name) is None:
            raise KeyError(f'{path}.type: ' + _unknown_type_message(registry, type_name))
        for key, value in cfg.items():
            if key == 'type':
                continue
            if key in CONFIG_MAPPING_KEYS and isinstance(value, dict):
                for name, item in value.items():
                    check_config_types(item, f'{path}.{key}.{name}', CONFIG_MAPPING_KEYS[key])
                continue
            check_config_types(value, f'{path}.{key}', _registry_for_key(str(key)))
    elif isinstance(cfg, (list, tuple)):
        for index, item in enumerate(cfg):
            check_config_types(item, f'{path}[{index}]', registry)
