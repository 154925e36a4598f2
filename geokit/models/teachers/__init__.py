"""3D teachers: frozen models (or ground truth) that produce :class:`geokit.structures.TeacherTargets`.

Importing this package registers every teacher in ``geokit.registry.TEACHERS``. The call contract is documented in
:mod:`geokit.models.teachers.base`. Training a VGGT teacher on ground truth is a research project of its own,
``projects/tiny_teacher`` (loaded by its configs' ``custom_imports``).
"""
from .base import BaseTeacher, stack_frames
from .cached import CachedTeacher, read_shard, shard_name, write_shard
from .metric_scale import MetricDepthModel, MetricScaleTeacher
from .oracle import OracleTeacher, normalize_scene_scale
from .preprocess import TeacherView
from .vggt_teacher import VGGTTeacher

__all__ = ['BaseTeacher', 'CachedTeacher', 'MetricDepthModel', 'MetricScaleTeacher', 'OracleTeacher', 'TeacherView',
           'VGGTTeacher', 'normalize_scene_scale', 'read_shard', 'shard_name', 'stack_frames', 'write_shard']
