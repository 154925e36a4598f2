"""geokit models: the generic :class:`GeometricMLLM`, its backbones, heads, losses, teachers and connectors.

Importing this package registers every model-side class (MODELS, MLLMS, HEADS, LOSSES, TEACHERS, CONNECTORS), so
configs build them by ``type=`` name without manual imports.
"""
import importlib

from . import heads, mllms
from .data_preprocessor import QwenVLDataPreprocessor
from .geometric_mllm import GeometricMLLM, GeometricMLLMOutputs

for _name in ('losses', 'teachers', 'connectors'):
    try:
        importlib.import_module(f'{__name__}.{_name}')
    except ModuleNotFoundError as _error:  # a sibling area not written yet; its registry location still works
        if _error.name != f'{__name__}.{_name}':
            raise

__all__ = ['GeometricMLLM', 'GeometricMLLMOutputs', 'QwenVLDataPreprocessor', 'heads', 'mllms']
