"""The published datasets as distributed: VSI-Bench, VSI-590K and Spatial-MLLM training files -> geokit rows.

Layouts (as their dataset cards / repositories give them; the fixtures under ``tests/datasets/published`` are
tiny copies of each):

``vsibench`` -- Hugging Face ``nyu-visionx/VSI-Bench``::

    test.jsonl (or test-00000-of-00001.parquet / test_debiased.parquet)   one question per row:
        {id, dataset, scene_name, question_type, question, options (list | null), ground_truth (str)[, pruned]}
    pruned_ids.txt                                   ids removed by Iterative Bias Pruning (VSI-Bench-Debiased
                                                     = every other id)
    arkitscenes.zip, scannet.zip, scannetpp.zip      unpacked to <dataset>/<scene_name>.mp4

``vsi590k`` -- Hugging Face ``nyu-visionx/VSI-590K`` (Cambrian-S)::

    vsi_590k.jsonl   {video | image, conversations: [{from: human, value: '<image>\\n...'}, {from: gpt, value}],
                      question_type, ...}; paths relative to the dataset root
    <source>.tar.gz  (arkitscenes, scannet, scannetppv2, ...) unpacked next to it

``spatial_mllm`` -- Spatial-MLLM's training annotations (Qwen-VL fine-tuning format, ``DATASET_ROOT``)::

    annotations/<name>.jsonl (or .json list)   {video, conversations: [{from, value: '<video>\\n...'}, ...]}
    <video paths relative to DATASET_ROOT>

geokit's readers (:mod:`geokit.datasets.vsi_datasets`) take VSI-Bench rows as they are and VSI-590K / Spatial-MLLM
rows through :func:`normalize_training_row`; ``tools/prepare_data.py`` writes the rows the configs expect and checks
every referenced video.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

VIDEO_PLACEHOLDER = '<video>'
#: Placeholders the published training files put where the video goes (VSI-590K writes ``<image>`` for videos).
MEDIA_PLACEHOLDERS = ('<image>', '<video>', '<|video|>')
VSIBENCH_VIDEO_TEMPLATE = '{dataset}/{scene_name}.mp4'
#: VSI-590K question types -> the VSI-Bench question type they correspond to (the same question, train-side name).
#: Types not listed keep their name (``source_question_type`` always records the original).
VSI590K_QUESTION_TYPES = {
    'absolute_count': 'object_counting',
    'absolute_distance_object': 'object_abs_distance',
    'absolute_size_object': 'object_size_estimation',
    'absolute_size_room': 'room_size_estimation',
    'relative_distance_object': 'object_rel_distance',
}


class AnnotationFormatError(ValueError):
    """An annotation file that is not in the layout its reader expects; the message names the file and the fix."""


def read_annotation_rows(path: str | os.PathLike) -> list[dict]:
    """Rows of an annotation file: JSON lines (``.jsonl``), a JSON list (``.json``) or parquet (``.parquet``).

    Raises:
        FileNotFoundError: no such file.
        AnnotationFormatError: a line that is not JSON (with its line number), a JSON file that is not a list of
            objects, or an unknown extension.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Annotation file not found: {path}. Fix: set `ann_file` / `data_root` in the dataset '
                                f'config, or run tools/prepare_data.py on the downloaded copy.')
    suffix = path.suffix.lower()
    if suffix == '.jsonl':
        rows = []
        with path.open(encoding='utf-8') as handle:
            for line_number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise AnnotationFormatError(f'{path}:{line_number} is not valid JSON ({error}).') from error
        return rows
    if suffix == '.json':
        with path.open(encoding='utf-8') as handle:
            data = json.load(handle)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise AnnotationFormatError(f'{path} must hold a JSON list of objects (one per sample), got '
                                        f'{type(data).__name__}.')
        return data
    if suffix == '.parquet':
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise AnnotationFormatError(f'{path}: unknown annotation format {suffix!r}; expected .jsonl, .json or .parquet.')


def read_id_list(path: str | os.PathLike) -> set[str]:
    """Sample ids of a subset file: one id per line (``pruned_ids.txt``), or the ``id`` column of annotation rows."""
    path = Path(path)
    if path.suffix.lower() in ('.jsonl', '.json', '.parquet'):
        return {str(row['id']) for row in read_annotation_rows(path)}
    if not path.is_file():
        raise FileNotFoundError(f'Subset file not found: {path} (e.g. VSI-Bench\'s pruned_ids.txt).')
    return {line.strip() for line in path.read_text(encoding='utf-8').splitlines() if line.strip()}


def _video_field(row: Mapping) -> str | None:
    video = row.get('video')
    if isinstance(video, (list, tuple)):
        if len(video) != 1:
            raise AnnotationFormatError(f'Row {row.get("id")!r} has {len(video)} videos; geokit reads one per sample.')
        video = video[0]
    return str(video) if video else None


def _with_video_placeholder(conversations: Iterable[Mapping]) -> list[dict]:
    turns = []
    for turn in conversations:
        value = str(turn.get('value', ''))
        if turn.get('from') in ('human', 'user'):
            for placeholder in MEDIA_PLACEHOLDERS:
                value = value.replace(placeholder, VIDEO_PLACEHOLDER)
        turns.append({'from': turn.get('from'), 'value': value})
    return turns


def normalize_training_row(row: Mapping, index: int | None = None) -> dict | None:
    """A VSI-590K / Spatial-MLLM training row in geokit's training layout, or ``None`` for an image-only row.

    ``conversation`` is accepted for ``conversations``, the media placeholder becomes ``<video>``, a one-element
    ``video`` list becomes its element, VSI-590K question types get their VSI-Bench names
    (:data:`VSI590K_QUESTION_TYPES`; the original stays in ``source_question_type``) and a missing ``id`` becomes
    ``index``. Rows already in geokit's layout come back unchanged in content.

    Raises:
        AnnotationFormatError: no conversations.
    """
    conversations = row.get('conversations', row.get('conversation'))
    if not conversations:
        raise AnnotationFormatError(f'Training row {row.get("id", index)!r} has no `conversations`; keys: '
                                    f'{sorted(row)}. VSI-Bench style rows go to VSIBenchDataset.')
    video = _video_field(row)
    if video is None:
        if row.get('image'):
            return None
        raise AnnotationFormatError(f'Training row {row.get("id", index)!r} has no `video`; keys: {sorted(row)}.')
    out = {key: value for key, value in row.items() if key not in ('conversation', 'conversations', 'video')}
    out.update(video=video, conversations=_with_video_placeholder(conversations))
    if out.get('id') is None and index is not None:
        out['id'] = index
    question_type = row.get('question_type')
    if question_type in VSI590K_QUESTION_TYPES:
        out['source_question_type'] = question_type
        out['question_type'] = VSI590K_QUESTION_TYPES[question_type]
    return out


def normalize_vsibench_row(row: Mapping, index: int | None = None) -> dict:
    """A VSI-Bench row with its ``video`` path (``<dataset>/<scene_name>.mp4``) and string ground truth.

    Raises:
        AnnotationFormatError: a field VSI-Bench rows always have is missing.
    """
    missing = [key for key in ('dataset', 'scene_name', 'question_type', 'question', 'ground_truth')
               if row.get(key) is None]
    if missing:
        raise AnnotationFormatError(f'VSI-Bench row {row.get("id", index)!r} lacks {missing}; keys: {sorted(row)}.')
    out = dict(row)
    out.setdefault('id', index)
    out['ground_truth'] = str(row['ground_truth'])
    out['options'] = list(row['options']) if row.get('options') is not None else None
    out.setdefault('video', VSIBENCH_VIDEO_TEMPLATE.format(**row))
    return out


@dataclass(frozen=True)
class PublishedLayout:
    """One published dataset's files and how its rows become geokit rows.

    Attributes:
        name: ``--layout`` of ``tools/prepare_data.py``.
        split: ``'test'`` (VSI-Bench rows, ``VSIBenchDataset``) or ``'train'`` (conversations, ``VSI590KDataset``).
        annotation_files: annotation files looked for in the download, first found wins (relative to its root).
        normalize: row (and its index) -> geokit row, or ``None`` to leave the row out (image-only rows).
        subset_files: ``{subset name: file}`` of id lists shipped with the dataset.
    """

    name: str
    split: str
    annotation_files: tuple[str, ...]
    normalize: Callable[[Mapping, int], dict | None]
    subset_files: tuple[tuple[str, str], ...] = ()


LAYOUTS: dict[str, PublishedLayout] = {
    'vsibench': PublishedLayout('vsibench', 'test', ('test.jsonl', 'test-00000-of-00001.parquet'),
                                normalize_vsibench_row, subset_files=(('debiased', 'pruned_ids.txt'),)),
    'vsi590k': PublishedLayout('vsi590k', 'train', ('vsi_590k.jsonl',), normalize_training_row),
    'spatial_mllm': PublishedLayout('spatial_mllm', 'train', (), normalize_training_row),
}


def find_annotation_file(root: str | os.PathLike, layout: PublishedLayout) -> Path:
    """The first of ``layout.annotation_files`` under ``root``.

    Raises:
        FileNotFoundError: none exists (lists what was looked for).
    """
    for name in layout.annotation_files:
        if (Path(root) / name).is_file():
            return Path(root) / name
    looked = ', '.join(layout.annotation_files) or '(this layout has no default file name)'
    raise FileNotFoundError(f'No {layout.name} annotation file under {root}: looked for {looked}. Pass --ann-file.')


@dataclass
class PreparedData:
    """What :func:`prepare_published` found and wrote.

    Attributes:
        rows: the geokit rows written (those whose video exists and decodes, unless ``allow_missing``).
        missing: referenced video paths (relative to the root) that do not exist, sorted.
        unreadable: ``{video: error}`` of videos that exist but cannot be probed.
        left_out: image-only rows left out.
        videos: ``{video: {'fps', 'num_frames', 'duration'}}`` of every readable video.
        annotation_file / out_file: what was read and written (``out_file`` is None when nothing was written).
        subset_files: ``{subset name: path}`` of the subset files found (e.g. ``debiased: pruned_ids.txt``).
    """

    rows: list
    missing: list
    unreadable: dict
    left_out: int
    videos: dict
    annotation_file: str
    out_file: str | None
    subset_files: dict


def prepare_published(root: str | os.PathLike, layout: str, ann_file: str | os.PathLike | None = None,
                      out_file: str | os.PathLike | None = None, allow_missing: bool = False) -> PreparedData:
    """Turn a downloaded copy of a published dataset into the rows geokit's configs read; check every video.

    Each referenced video is probed once (:func:`~geokit.datasets.video_io.probe_video`): its frame rate, frame
    count and duration (seconds) are written into every row that uses it (``fps``, ``num_frames``, ``duration``).

    Args:
        root: the download's root (videos are relative to it; the configs' ``data_root``).
        layout: a :data:`LAYOUTS` name.
        ann_file: the annotation file (relative to ``root`` or absolute); default: the layout's usual file.
        out_file: where the rows go (JSON lines, written atomically); ``None``: check only, write nothing.
        allow_missing: write the rows whose video is readable even if others are missing or unreadable (they are
            still reported); otherwise nothing is written when any video is missing.
    Raises:
        KeyError: unknown layout.
    """
    from geokit.datasets.video_io import VideoReadError, probe_video

    if layout not in LAYOUTS:
        raise KeyError(f'Unknown layout {layout!r}; known: {sorted(LAYOUTS)}.')
    spec, root = LAYOUTS[layout], Path(root)
    if ann_file is None:
        annotation = find_annotation_file(root, spec)
    else:
        annotation = Path(ann_file) if Path(ann_file).is_absolute() else root / ann_file
    converted, left_out = [], 0
    for index, row in enumerate(read_annotation_rows(annotation)):
        out = spec.normalize(row, index)
        if out is None:
            left_out += 1
        else:
            converted.append(out)
    videos, missing, unreadable = {}, [], {}
    for video in sorted({row['video'] for row in converted}):
        path = Path(video) if Path(video).is_absolute() else root / video
        if not path.is_file():
            missing.append(video)
            continue
        try:
            num_frames, fps = probe_video(path)
        except VideoReadError as error:
            unreadable[video] = str(error).split('. Fix:')[0]
            continue
        videos[video] = dict(fps=fps, num_frames=num_frames, duration=num_frames / fps if fps else None)
    rows = [dict(row, **videos[row['video']]) for row in converted if row['video'] in videos]
    written = None
    if out_file is not None and (allow_missing or not (missing or unreadable)):
        written = Path(out_file) if Path(out_file).is_absolute() else root / out_file
        written.parent.mkdir(parents=True, exist_ok=True)
        tmp = written.with_name(written.name + '.tmp')
        with tmp.open('w', encoding='utf-8') as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + '\n' for row in rows)
        os.replace(tmp, written)
        written = str(written)
    subsets = {name: str(root / path) for name, path in spec.subset_files if (root / path).is_file()}
    return PreparedData(rows=rows, missing=missing, unreadable=unreadable, left_out=left_out, videos=videos,
                        annotation_file=str(annotation), out_file=written, subset_files=subsets)
