"""3D teachers: frozen models (or ground truth) that produce :class:`geokit.structures.TeacherTargets`.

Importing this package registers every teacher in ``geokit.registry.TEACHERS`` (and the tiny-VGGT training model
in ``MODELS``). The call contract is documented in :mod:`geokit.models.teachers.base`.
"""
from .base import BaseTeacher, stack_frames
from .cached import CachedTeacher, read_shard, shard_name, write_shard
from .metric_scale import MetricDepthModel, MetricScaleTeacher
from .oracle import OracleTeacher, normalize_scene_scale
from .pan_pretrain import PanPretrainHook
from .preprocess import TeacherView
from .trainer import VGGTGeometryModel
from .vggt_teacher import VGGTTeacher

__all__ = ['BaseTeacher', 'CachedTeacher', 'MetricDepthModel', 'MetricScaleTeacher', 'OracleTeacher', 'PanPretrainHook',
           'TeacherView',
           'VGGTGeometryModel', 'VGGTTeacher', 'normalize_scene_scale', 'read_shard', 'shard_name', 'stack_frames',
           'write_shard']
