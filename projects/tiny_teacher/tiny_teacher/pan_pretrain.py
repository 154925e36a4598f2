"""``PanPretrainHook``: teach a from-scratch VGGT cross-frame correspondence on pans before its geometry training.

A tiny VGGT trained from random init on SynthVSI ground truth learns depth but not relative pose: its yaw stays at
chance for thousands of steps (projects/tiny_teacher/README.md). The same network first trained to tell which way a
seamless pan moved (:func:`~.direction_probe.direction_probe`, through the camera head) picks up real camera turns
within a few hundred steps. This hook runs that curriculum once, before the first training iteration.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import print_log

from geokit.registry import HOOKS

from .direction_probe import collect_frames, direction_probe, windowed_accuracy


@HOOKS.register_module()
class PanPretrainHook(Hook):
    """Pretrain ``runner.model.vggt`` on pan-direction pairs drawn from the training videos, before training.

    Skipped when resuming (the checkpoint already holds the pretrained and further trained weights), so an
    interrupted run continues exactly.

    Args:
        shift: pan in pixels of the teacher view (28: two 14 px patches).
        steps, batch_size, lr: AdamW pretraining (its own optimizer; the runner's is untouched).
        videos: distinct training videos whose frames the pans are cut from.
        seed: draws of frames and directions.
    """

    priority = 'NORMAL'

    def __init__(self, shift: int = 28, steps: int = 1500, batch_size: int = 16, lr: float = 3e-4,
                 videos: int = 64, seed: int = 0) -> None:
        if steps < 1 or videos < 1:
            raise ValueError(f'PanPretrainHook needs steps >= 1 and videos >= 1, got steps={steps}, videos={videos}.')
        self.shift, self.steps, self.batch_size, self.lr = shift, steps, batch_size, lr
        self.videos, self.seed = videos, seed

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        if not hasattr(model, 'vggt') or not hasattr(model, 'oracle'):
            raise TypeError(f'PanPretrainHook pretrains the `vggt` of a VGGTGeometryModel; the runner model is a '
                            f'{type(model).__name__}. Fix: remove the hook from `custom_hooks`.')
        images = collect_frames(runner.train_dataloader.dataset, model.oracle.view, self.videos)
        accuracies = direction_probe(model.vggt, images, self.shift, self.steps, self.batch_size, 'camera-head',
                                     self.lr, seed=self.seed)
        windows = windowed_accuracy(accuracies, window=max(1, min(100, self.steps)))
        print_log(f'pan pretraining ({self.shift} px, {self.steps} steps, {images.shape[0]} frames): direction '
                  f'accuracy per 100 steps {[round(a, 2) for a in windows]}', logger='current')
