"""The tiny-teacher project: training a small VGGT teacher on SynthVSI ground truth, and why its pose stays at chance.

Not part of the toolkit. Its configs import it through ``custom_imports`` (``projects.tiny_teacher.tiny_teacher``),
which registers :class:`VGGTGeometryModel` in ``MODELS`` and :class:`PanPretrainHook` in ``HOOKS``. See
``projects/tiny_teacher/README.md``.
"""
from .direction_probe import READOUTS, collect_frames, direction_probe, shifted_pairs, windowed_accuracy
from .evaluation import evaluate_pose_references, evaluate_teacher
from .geometry_model import TRAIN_WINDOWS, VGGTGeometryModel
from .pan_pretrain import PanPretrainHook
from .pose_references import REFERENCE_PREDICTORS

__all__ = ['READOUTS', 'REFERENCE_PREDICTORS', 'TRAIN_WINDOWS', 'PanPretrainHook', 'VGGTGeometryModel',
           'collect_frames', 'direction_probe', 'evaluate_pose_references', 'evaluate_teacher', 'shifted_pairs',
           'windowed_accuracy']
