"""A tiny SynthVSI dataset shared by the dataset tests (3 scenes: 1 train / 1 val / 1 test, 8 frames, 64x64)."""
from __future__ import annotations

import pytest
import torch

from geokit.datasets.synthvsi import SynthVSIParams, make_synthvsi

TINY = SynthVSIParams(num_scenes=3, frames=8, resolution=(64, 64), seed=0)


@pytest.fixture(scope='session')
def tiny_params() -> SynthVSIParams:
    return TINY


@pytest.fixture(scope='session')
def tiny_synthvsi(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster and immune to CPU oversubscription
    try:
        return make_synthvsi(tmp_path_factory.mktemp('synthvsi') / 'root', TINY, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_scene_dirs(tiny_synthvsi):
    return sorted(p.parent for p in tiny_synthvsi.glob('*/scene_*/scene.json'))


@pytest.fixture
def single_thread():
    """Run a test's rendering with one torch thread (faster for tiny scenes, robust to oversubscribed CPUs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
