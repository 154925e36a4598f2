"""Work dirs that cannot lose data: locks, resume without a pointer, no overwrite of another run, killed writes."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from geokit.engine.work_dir import LOCK_NAME, WorkDirError, WorkDirLock, find_resume_checkpoint
from tests.engine.test_train_resume import REPO, _weights, plugin_config  # noqa: F401 (fixture)
from tests.tool_loader import load_tool


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def straight(plugin_config, tmp_path_factory):  # noqa: F811
    """An uninterrupted 12-iteration run: the reference every resumed run must reproduce."""
    runner = load_tool('train').main([str(plugin_config), '--work-dir', str(tmp_path_factory.mktemp('straight'))])
    return _weights(runner)


def _first_half(plugin_config, work):  # noqa: F811
    load_tool('train').main([str(plugin_config), '--work-dir', str(work), '--cfg-options', 'train_cfg.max_iters=6'])
    return work / 'iter_6.safetensors'


@pytest.mark.parametrize('pointer', ['missing', 'empty', 'stale'])
def test_resume_without_a_usable_pointer_continues_from_the_newest_complete_checkpoint(
        plugin_config, straight, tmp_path, pointer):  # noqa: F811
    work = tmp_path / 'w'
    checkpoint = _first_half(plugin_config, work)
    before = _digest(checkpoint)
    if pointer == 'missing':
        (work / 'last_checkpoint').unlink()
    elif pointer == 'empty':
        (work / 'last_checkpoint').write_text('')
    else:
        (work / 'last_checkpoint').write_text(str(work / 'iter_99.safetensors'))
    resumed = load_tool('train').main([str(plugin_config), '--work-dir', str(work), '--resume'])
    assert resumed.iter == 12
    assert _digest(checkpoint) == before, 'the resumed run wrote over the checkpoint it resumed from'
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, straight[key], rtol=0, atol=1e-6, msg=key)


def test_a_fresh_run_refuses_to_overwrite_an_earlier_runs_checkpoints(plugin_config, tmp_path):  # noqa: F811
    work = tmp_path / 'w'
    checkpoint = _first_half(plugin_config, work)
    before = _digest(checkpoint)
    with pytest.raises(WorkDirError, match='--resume'):
        load_tool('train').main([str(plugin_config), '--work-dir', str(work)])
    assert _digest(checkpoint) == before


def test_flexible_runner_configs_get_the_same_guard(plugin_config, straight, tmp_path):  # noqa: F811
    train, work, flexible = load_tool('train'), tmp_path / 'w', ['--cfg-options', 'runner_type=FlexibleRunner']
    checkpoint = _first_half(plugin_config, work)
    with pytest.raises(WorkDirError, match='--resume'):
        train.main([str(plugin_config), '--work-dir', str(work), *flexible])
    (work / 'last_checkpoint').unlink()
    before = _digest(checkpoint)
    resumed = train.main([str(plugin_config), '--work-dir', str(work), '--resume', *flexible])
    assert type(resumed).__name__ == 'GeoKitFlexibleRunner' and resumed.iter == 12
    assert _digest(checkpoint) == before
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, straight[key], rtol=0, atol=1e-6, msg=key)


HOLDER = textwrap.dedent('''
    import sys, time
    from geokit.engine.work_dir import WorkDirLock
    with WorkDirLock(sys.argv[1]):
        print('locked', flush=True)
        time.sleep(60)
''')


def _holder(work):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, '-c', HOLDER, str(work)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == 'locked'
    return process


def test_a_second_run_on_a_busy_work_dir_is_refused_naming_the_holder(plugin_config, tmp_path):  # noqa: F811
    work = tmp_path / 'w'
    holder = _holder(work)
    try:
        with pytest.raises(WorkDirError) as error:
            load_tool('train').main([str(plugin_config), '--work-dir', str(work)])
        message = str(error.value)
        assert f'pid {holder.pid}' in message and socket.gethostname() in message and 'started' in message
        assert not list(work.glob('*.safetensors'))
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over(plugin_config, tmp_path):  # noqa: F811
    work = tmp_path / 'w'
    holder = _holder(work)
    holder.kill()  # SIGKILL: the holder cannot clean up; its lock file stays behind
    holder.wait()
    assert json.loads((work / LOCK_NAME).read_text())['pid'] == holder.pid
    runner = load_tool('train').main([str(plugin_config), '--work-dir', str(work), '--cfg-options',
                                      'train_cfg.max_iters=6'])
    assert runner.iter == 6 and not (work / LOCK_NAME).exists()
    with WorkDirLock(work):  # released at the end of the run
        pass


KILLED_WRITE = textwrap.dedent('''
    import os, signal, sys
    import torch
    import geokit.engine.checkpoint as checkpoint

    def dies_half_way(tensors, path, metadata=None):
        with open(path, 'wb') as handle:
            handle.write(b'x' * 1000)
            handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.save_file = dies_half_way
    checkpoint.save_checkpoint_safetensors({'state_dict': {'w': torch.ones(3)}}, sys.argv[1])
''')


def test_a_kill_during_a_checkpoint_write_loses_nothing(plugin_config, straight, tmp_path):  # noqa: F811
    work = tmp_path / 'w'
    _first_half(plugin_config, work)
    target = work / 'iter_12.safetensors'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, '-c', KILLED_WRITE, str(target)], env=env)
    assert result.returncode == -9
    assert not target.exists() and len(list(work.glob('.tmp-*'))) == 1
    assert find_resume_checkpoint(work) == str(work / 'iter_6.safetensors')
    resumed = load_tool('train').main([str(plugin_config), '--work-dir', str(work), '--resume'])
    assert resumed.iter == 12 and not list(work.glob('.tmp-*'))
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, straight[key], rtol=0, atol=1e-6, msg=key)


def test_a_truncated_newest_checkpoint_is_passed_over(plugin_config, tmp_path):  # noqa: F811
    work = tmp_path / 'w'
    checkpoint = _first_half(plugin_config, work)
    truncated = work / 'iter_12.safetensors'
    truncated.write_bytes(checkpoint.read_bytes()[:-64])
    (work / 'last_checkpoint').write_text(str(truncated))
    assert find_resume_checkpoint(work) == str(checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(WorkDirError, match='none is complete'):
        find_resume_checkpoint(work)
