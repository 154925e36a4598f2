"""docs/adding_an_objective.md: the user-file example registers a loss that a config builds via custom_imports."""
import re
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from geokit.registry import LOSSES

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'adding_an_objective.md'


def python_blocks(text):
    return re.findall(r'```python\n(.*?)```', text, flags=re.S)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    blocks = python_blocks(DOC.read_text())
    (tmp_path / 'my_losses.py').write_text(blocks[0])
    (tmp_path / 'my_config.py').write_text(blocks[1])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop('my_losses', None)
    LOSSES.module_dict.pop('LogDepthL1Loss', None)


def test_doc_example_builds_and_runs(user_dir):
    assert LOSSES.get('LogDepthL1Loss') is None
    cfg = Config.fromfile(str(user_dir / 'my_config.py'))
    loss = LOSSES.build(cfg.depth_loss)
    assert type(loss).__name__ == 'LogDepthL1Loss' and loss.loss_weight == 0.5
    pred = torch.full((1, 2, 3, 3), 2.0, requires_grad=True)
    target = torch.ones(1, 2, 3, 3)
    target[0, 0, 0, 0] = float('nan')
    out = loss(pred, target, conf=None)
    torch.testing.assert_close(out['loss'], 0.5 * torch.log(torch.tensor(2.0)))
    out['loss'].backward()
    assert torch.isfinite(pred.grad).all()
    build_block = python_blocks(DOC.read_text())[2]
    namespace = {}
    exec(compile(build_block, 'adding_an_objective.md', 'exec'), namespace)
    assert type(namespace['loss']).__name__ == 'LogDepthL1Loss'
