"""Training engine: the safetensors-checkpointing runner, FlexibleRunner strategies and training hooks."""
from geokit.engine.checkpoint import load_checkpoint_safetensors, save_checkpoint_safetensors
from geokit.engine.hooks import RNGStateHook
from geokit.engine.optim_wrappers import AutocastOptimWrapper
from geokit.engine.runner import GeoKitFlexibleRunner, GeoKitRunner, load_checkpoint_file
from geokit.engine.strategies import GeoKitDDPStrategy, GeoKitSingleDeviceStrategy

__all__ = ['AutocastOptimWrapper', 'GeoKitDDPStrategy', 'GeoKitFlexibleRunner', 'GeoKitRunner',
           'GeoKitSingleDeviceStrategy', 'RNGStateHook', 'load_checkpoint_file', 'load_checkpoint_safetensors',
           'save_checkpoint_safetensors']
