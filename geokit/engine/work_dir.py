"""A training work dir that cannot lose data: one run at a time, resume from the newest complete checkpoint.

* :class:`WorkDirLock` -- an exclusive ``flock`` on ``<work_dir>/.geokit-train.lock`` held for the whole run. The
  kernel drops it when the process dies (even by ``kill -9``), so a dead run's lock is free and the next run takes
  it over atomically; the file's content (pid, host, start time, command) names the holder to a refused second run.
* :func:`find_resume_checkpoint` -- what ``--resume`` continues from: the ``last_checkpoint`` pointer when it names a
  complete checkpoint, else the newest complete checkpoint in the folder (pointer missing, empty or stale).
* :func:`remove_orphan_temp_files` -- ``.tmp-*`` files left by writes that were killed before their rename.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import os.path as osp
import re
import socket
import sys
from pathlib import Path

from mmengine.logging import print_log
from safetensors import safe_open

from geokit.engine.checkpoint import METADATA_KEY, is_complete_checkpoint

LOCK_NAME = '.geokit-train.lock'
POINTER_NAME = 'last_checkpoint'
TEMP_PREFIX = '.tmp-'
CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.safetensors$')


class WorkDirError(RuntimeError):
    """The work dir is in use by another run, or a new run would overwrite an earlier run's checkpoints."""


def _holder_text(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')} "
            f"({info.get('command', '?')})")


class WorkDirLock:
    """Exclusive lock of a work dir for one training run (``with WorkDirLock(work_dir): ...``).

    Raises:
        WorkDirError: another live process holds the lock; the message names its pid, host and start time.
    """

    def __init__(self, work_dir: str | os.PathLike) -> None:
        self.path = osp.join(str(work_dir), LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_lock_info(fd)
                os.close(fd)
                raise WorkDirError(
                    f'work_dir {osp.dirname(self.path)} is in use by another training run: {_holder_text(holder)}. '
                    f'Fix: wait for it to finish, stop it, or give this run another --work-dir. (Its lock is '
                    f'{self.path}; it frees itself when that process exits.)') from None
            # the holder may have removed the file between our open and our flock: then we locked a dead inode
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_lock_info(fd)
        if previous:
            print_log(f'Took over the lock of {osp.dirname(self.path)} left by a run that no longer exists '
                      f'({_holder_text(previous)}).', logger='current', level=logging.WARNING)
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                    command=' '.join(sys.argv)[:300])
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # unlink while still holding the lock, so nobody can lock this inode after we let go
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WorkDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_lock_info(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        return json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {}


def remove_orphan_temp_files(work_dir: str | os.PathLike) -> list[str]:
    """Delete ``.tmp-*`` files in ``work_dir`` (atomic writes killed before their rename); call while holding the
    :class:`WorkDirLock`, when no write of this work dir can be in flight. Returns the removed paths."""
    removed = []
    for path in sorted(Path(work_dir).glob(f'{TEMP_PREFIX}*')):
        if path.is_file():
            path.unlink()
            removed.append(str(path))
    if removed:
        print_log(f'Removed {len(removed)} unfinished temporary file(s) of an interrupted checkpoint write: '
                  f'{[osp.basename(p) for p in removed]}.', logger='current', level=logging.WARNING)
    return removed


def checkpoint_files(work_dir: str | os.PathLike) -> list[Path]:
    """Training checkpoints (``iter_N`` / ``epoch_N`` ``.safetensors``) in ``work_dir``, complete or not."""
    folder = Path(work_dir)
    return sorted(p for p in folder.glob('*.safetensors') if CHECKPOINT_NAME.match(p.name)) if folder.is_dir() else []


def _checkpoint_progress(path: Path) -> tuple[int, float]:
    """(iteration or epoch recorded in the checkpoint, mtime) -- the order of "newest"."""
    step = int(CHECKPOINT_NAME.match(path.name).group(2))
    try:
        with safe_open(str(path), framework='pt') as handle:
            skeleton = json.loads(handle.metadata()[METADATA_KEY])['checkpoint']
        meta = skeleton['__dict__']['meta']['__dict__']
        step = int(meta.get('iter') or meta.get('epoch') or step)
    except (KeyError, TypeError, ValueError, OSError):
        pass
    return step, path.stat().st_mtime


def find_resume_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint ``--resume`` (without a path) continues from.

    The ``last_checkpoint`` pointer when it names a complete checkpoint; otherwise (pointer missing, empty, or naming
    a missing/incomplete file) the complete checkpoint of the highest iteration in ``work_dir``, with a warning.
    ``None`` when the folder holds no checkpoint at all (a fresh start).

    Raises:
        WorkDirError: checkpoint files exist but none of them is complete.
    """
    pointer = Path(work_dir) / POINTER_NAME
    named = pointer.read_text(encoding='utf-8').strip() if pointer.is_file() else ''
    if named and osp.isdir(named):
        return named  # a DeepSpeed checkpoint folder: its engine reads and checks it
    if named:
        candidate = named if osp.isabs(named) else osp.join(str(work_dir), osp.basename(named))
        if osp.isfile(named) and is_complete_checkpoint(named):
            return named
        if osp.isfile(candidate) and is_complete_checkpoint(candidate):
            return candidate
    files = checkpoint_files(work_dir)
    complete = [p for p in files if is_complete_checkpoint(str(p))]
    if not complete:
        if files:
            raise WorkDirError(f'--resume: {work_dir} holds checkpoint files {[p.name for p in files]} but none is '
                               f'complete (truncated or corrupt). Fix: pass a complete checkpoint with '
                               f'--resume PATH, or move these files away to start afresh.')
        return None
    newest = max(complete, key=_checkpoint_progress)
    state = f'names {named!r}, which is not a complete checkpoint' if named else \
        ('is empty' if pointer.is_file() else 'is missing')
    print_log(f'--resume: {pointer} {state}; resuming from the newest complete checkpoint {newest} instead.',
              logger='current', level=logging.WARNING)
    return str(newest)
