"""The one error type for user files that cannot be read: videos, geometry files, annotation rows, checkpoints,
teacher-cache shards.

Every message has the same three parts, so a user can act on it without reading code::

    <file>[:<line>]: <cause>. Fix: <what to do>.

Catch :class:`InputFileError` to handle all of them (datasets do, for ``skip_bad_inputs``); a missing file raises
:class:`InputFileNotFoundError`, which is also a ``FileNotFoundError``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ['InputFileError', 'InputFileNotFoundError', 'reading']


class InputFileError(RuntimeError):
    """A user file is missing, truncated, corrupt or holds values geokit cannot use.

    Attributes:
        path: the file.
        line: 1-based line of a text file (annotation JSONL), or ``None``.
        cause: what is wrong with it.
        fix: what the user can do.
    """

    def __init__(self, path: str | os.PathLike, cause: str, fix: str, line: int | None = None) -> None:
        self.path, self.line, self.cause, self.fix = str(path), line, cause.rstrip('.'), fix.rstrip('.')
        where = self.path if line is None else f'{self.path}:{line}'
        super().__init__(f'{where}: {self.cause}. Fix: {self.fix}.')

    def __reduce__(self):  # picklable across dataloader worker processes
        return type(self), (self.path, self.cause, self.fix, self.line)


class InputFileNotFoundError(InputFileError, FileNotFoundError):
    """The file does not exist."""


@contextmanager
def reading(path: str | os.PathLike, what: str, fix: str) -> Iterator[None]:
    """Turn any failure while reading ``path`` into an :class:`InputFileError` naming the file, the cause and ``fix``.

    Example::

        with reading(path, 'geometry file', fix='re-create it'):
            tensors = safetensors.torch.load_file(path)
    """
    if not os.path.exists(path):
        raise InputFileNotFoundError(path, f'{what} does not exist', fix)
    try:
        yield
    except InputFileError:
        raise
    except Exception as error:  # noqa: BLE001 - re-raised with the file, the cause and the fix
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else ''
        cause = f'cannot read this {what} ({type(error).__name__}{": " + detail if detail else ""}); the file is ' \
                f'truncated or corrupt'
        raise InputFileError(path, cause, fix) from error
