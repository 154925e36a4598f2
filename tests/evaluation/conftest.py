import pytest

from geokit.datasets import ensure_synthvsi


@pytest.fixture(scope='session')
def synthvsi_root(tmp_path_factory):
    """A tiny SynthVSI dataset (3 scenes: one per split; ~17 test questions), generated once per session."""
    return str(ensure_synthvsi(tmp_path_factory.mktemp('synthvsi') / 'data', num_scenes=3, frames=4,
                               resolution=(32, 48), seed=0))
