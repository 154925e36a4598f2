"""Heads of GeoVR's geometric objectives (registered in ``HEADS``); see :mod:`geokit.models.heads.base`."""
from .alignment_head import FeatureAlignmentHead
from .base import BaseGeometryHead, HeadContext
from .camera_head import CameraHead
from .dpt_head import DPTDepthHead
from .scale_head import ScaleHead

__all__ = ['BaseGeometryHead', 'CameraHead', 'DPTDepthHead', 'FeatureAlignmentHead', 'HeadContext', 'ScaleHead']
