"""Training engine: the safetensors-checkpointing runner and training hooks."""
from geokit.engine.checkpoint import load_checkpoint_safetensors, save_checkpoint_safetensors
from geokit.engine.hooks import RNGStateHook
from geokit.engine.runner import GeoKitRunner, load_checkpoint_file

__all__ = ['GeoKitRunner', 'RNGStateHook', 'load_checkpoint_file', 'load_checkpoint_safetensors',
           'save_checkpoint_safetensors']
