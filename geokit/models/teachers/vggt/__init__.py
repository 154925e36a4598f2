"""geokit's own implementation of VGGT (Wang et al., CVPR 2025), weight-compatible with ``facebook/VGGT-1B``."""
from .aggregator import Aggregator
from .checkpoint import CheckpointMismatchError, load_vggt_weights, save_vggt_weights
from .heads import CameraHead, DPTHead
from .model import VGGT_1B, VGGTNet

__all__ = ['Aggregator', 'CameraHead', 'CheckpointMismatchError', 'DPTHead', 'VGGTNet', 'VGGT_1B',
           'load_vggt_weights', 'save_vggt_weights']
