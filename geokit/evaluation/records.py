"""Where evaluation outputs go and how per-sample records are stored (JSON lines, appended per batch).

A predictions file is append-only while a test runs, so an interrupted run keeps every finished batch; a reader
tolerates a last line cut off mid-write. Summary files are written atomically (tmp file + ``os.replace``).
"""
from __future__ import annotations

import glob
import json
import logging
import os
import os.path as osp
from collections.abc import Iterable, Mapping

from mmengine.logging import MMLogger, print_log

PREDICTIONS_FILE = 'predictions.jsonl'


def runner_work_dir() -> str | None:
    """The ``work_dir`` of the mmengine Runner of this process, or ``None`` outside a Runner.

    The Runner logs to ``<work_dir>/<timestamp>/<timestamp>.log`` (on every rank) through the current ``MMLogger``;
    the work dir is two levels above that file.
    """
    log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
    return osp.dirname(osp.dirname(log_file)) if log_file else None


def resolve_out_dir(out_dir: str | None, subdir: str, config_key: str) -> str:
    """``out_dir`` itself, or ``<work_dir>/<subdir>`` of the running Runner when ``out_dir`` is ``None``.

    Raises:
        ValueError: ``out_dir`` is ``None`` and no Runner is running (names ``config_key`` to set).
    """
    if out_dir is None:
        work_dir = runner_work_dir()
        if work_dir is None:
            raise ValueError(f'No output directory: set `{config_key}` (used outside an mmengine Runner, the '
                             f'work_dir cannot be inferred).')
        out_dir = osp.join(work_dir, subdir)
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def predictions_files(out_dir: str) -> list[str]:
    """The predictions files in ``out_dir``: ``predictions.jsonl`` and per-rank ``predictions.rank*.jsonl``."""
    files = [osp.join(out_dir, PREDICTIONS_FILE)]
    files += sorted(glob.glob(osp.join(out_dir, 'predictions.rank*.jsonl')))
    return [path for path in files if osp.isfile(path)]


def read_jsonl(path: str) -> list[dict]:
    """Records of a JSON-lines file; a malformed line (a write cut off by a crash) is skipped with a warning."""
    records = []
    with open(path, encoding='utf-8') as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                print_log(f'{path}:{line_number} is not valid JSON (an interrupted write?); skipped.',
                          logger='current', level=logging.WARNING)
    return records


def read_records(out_dir: str) -> dict[str, dict]:
    """All scored records found in ``out_dir``'s predictions files, by sample id (a later line wins)."""
    records: dict[str, dict] = {}
    for path in predictions_files(out_dir):
        for record in read_jsonl(path):
            if 'id' in record:
                records[str(record['id'])] = record
    return records


def append_jsonl(path: str, records: Iterable[Mapping]) -> None:
    """Append records as JSON lines and flush them to disk."""
    lines = ''.join(json.dumps(dict(record), ensure_ascii=False) + '\n' for record in records)
    if not lines:
        return
    with open(path, 'a', encoding='utf-8') as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    tmp_path = f'{path}.tmp{os.getpid()}'
    with open(tmp_path, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(tmp_path, path)


def save_figure_atomic(figure, path: str, **savefig_kwargs) -> str:
    """Save a matplotlib ``Figure`` as a PNG at ``path`` through a temporary file and ``os.replace`` (a reader never
    sees half an image); ``savefig_kwargs`` go to ``Figure.savefig`` (e.g. ``dpi``). Returns ``path``."""
    tmp_path = f'{path}.tmp{os.getpid()}.png'  # savefig picks the format from the suffix
    figure.savefig(tmp_path, **savefig_kwargs)
    os.replace(tmp_path, path)
    return path


def write_json_atomic(path: str, obj: object) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + '\n')


def write_jsonl_atomic(path: str, records: Iterable[Mapping]) -> None:
    """Write records as JSON lines, atomically (replaces the file)."""
    write_text_atomic(path, ''.join(json.dumps(dict(record), ensure_ascii=False) + '\n' for record in records))
