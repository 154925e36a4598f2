"""Logging backends as config switches: TensorBoard and Weights & Biases on top of mmengine's local backend.

    visualizer = dict(type='GeoKitVisualizer', tensorboard='auto', wandb=False)   # configs/_base_/default_runtime.py

Every run keeps the local backend (``<work_dir>/<timestamp>/vis_data/scalars.json``). ``tensorboard`` / ``wandb``:
``'auto'`` = on when the package is installed, off (silently) when it is not; ``True`` = on, and a clear error
naming the package to install when it is missing; ``False`` = off; a dict = on, with these arguments for the
mmengine backend (``TensorboardVisBackend`` / ``WandbVisBackend``, e.g. ``dict(init_kwargs=dict(project='geovr'))``).
W&B is off by default (it needs an account, or ``init_kwargs=dict(mode='offline')``).
"""
from __future__ import annotations

import importlib.util

from mmengine.visualization import Visualizer

from geokit.registry import VISUALIZERS

#: switch name -> (mmengine backend type, the package it needs, how to install it)
SWITCHES = {
    'tensorboard': ('TensorboardVisBackend', 'tensorboard', 'pip install tensorboard  (or geokit[logging])'),
    'wandb': ('WandbVisBackend', 'wandb', 'pip install wandb  (or geokit[logging])'),
}


def logging_backends(tensorboard: bool | str | dict = 'auto', wandb: bool | str | dict = False) -> list[dict]:
    """The ``vis_backends`` list for these switches: always ``LocalVisBackend``, then the ones switched on.

    Raises:
        ImportError: a backend switched on (``True`` or a dict) whose package is not installed.
        ValueError: a switch that is not a bool, ``'auto'`` or a dict.
    """
    backends = [dict(type='LocalVisBackend')]
    for name, value in (('tensorboard', tensorboard), ('wandb', wandb)):
        backend, package, install = SWITCHES[name]
        if not (isinstance(value, (bool, dict)) or value == 'auto'):
            raise ValueError(f"visualizer.{name}={value!r}: use True, False, 'auto' or a dict of {backend} arguments.")
        if value is False:
            continue
        available = importlib.util.find_spec(package) is not None
        if value == 'auto':
            if available:
                backends.append(dict(type=backend))
            continue
        if not available:
            raise ImportError(f'visualizer.{name} is switched on but the `{package}` package is not installed: '
                              f"{install}, or set visualizer.{name}=False ('auto' uses it only when installed).")
        backends.append(dict(type=backend, **(value if isinstance(value, dict) else {})))
    return backends


@VISUALIZERS.register_module()
class GeoKitVisualizer(Visualizer):
    """mmengine's ``Visualizer`` whose backends come from the ``tensorboard`` / ``wandb`` switches.

    Args:
        tensorboard / wandb: see :func:`logging_backends`.
        vis_backends: extra backend configs appended after the switched ones.
        name / save_dir / **kwargs: as mmengine's ``Visualizer``.
    """

    def __init__(self, name: str = 'visualizer', tensorboard: bool | str | dict = 'auto',
                 wandb: bool | str | dict = False, vis_backends: list[dict] | None = None,
                 save_dir: str | None = None, **kwargs) -> None:
        backends = logging_backends(tensorboard, wandb) + list(vis_backends or [])
        super().__init__(name=name, vis_backends=backends, save_dir=save_dir, **kwargs)
        self.backend_names = [backend['type'] for backend in backends]
