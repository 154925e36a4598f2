"""MLLM backbones: thin wrappers around transformers' stock Qwen-VL classes (registered in ``MLLMS``)."""
from .geometry_tokens import insert_geometry_tokens, video_token_layout
from .qwen_vl import DEFAULT_GEOMETRY_TOKENS, Qwen3VLBackbone, Qwen25VLBackbone, QwenVLBackbone, resolve_path
from .taps import HiddenStateTaps, TapRequest, Taps

__all__ = ['DEFAULT_GEOMETRY_TOKENS', 'HiddenStateTaps', 'Qwen25VLBackbone', 'Qwen3VLBackbone', 'QwenVLBackbone',
           'TapRequest', 'Taps', 'insert_geometry_tokens', 'resolve_path', 'video_token_layout']
