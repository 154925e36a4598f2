"""Readers for VSI-Bench (test) and VSI-590K (training) style JSONL + videos; one family for real and SynthVSI data.

Each item becomes the sample dict of the data contract (docs/architecture.md, "Sample contract")::

    {'frames': uint8 (T, H, W, 3), 'frame_indices': long (T,),
     'conversations': [{'from': 'human', 'value': '<video>\\n...'}, {'from': 'gpt', 'value': answer}],
     'meta': {'id', 'dataset', 'scene_name', 'question_type', 'options', 'ground_truth', 'video', 'fps'},
     'geometry': None | {'depth' (T, H, W) m, 'extrinsics' (T, 3, 4) cam-from-world, 'intrinsics' (T, 3, 3) px,
                         'instance' (T, H, W) int32}}

Video path of an item: its ``video`` field (relative to ``data_root``) when present, else
``video_path_template.format(**item)`` (VSI-Bench's layout is ``'{dataset}/{scene_name}.mp4'``). Geometry: the
item's ``geometry`` field, else ``geometry.safetensors`` next to the video, loaded when ``load_geometry`` is true and
the file exists.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from geokit.errors import InputFileError, InputFileNotFoundError
from geokit.registry import DATASETS, FRAME_SAMPLERS

from .geometry_io import GEOMETRY_FIX, read_geometry_file
from .prompts import PROMPT_STYLES
from .published import normalize_training_row, read_annotation_rows
from .synthvsi.generate import ensure_synthvsi
from .video_io import VideoReadError, probe_video, read_video_frames  # noqa: F401 (VideoReadError re-exported)

VIDEO_TOKEN = '<video>'


class _VideoQADataset(BaseDataset):
    """Shared machinery: JSONL loading, frame sampling, video decoding, geometry, bad-video handling.

    Args:
        ann_file: JSONL file (relative to ``data_root`` unless absolute).
        data_root: folder the ``video`` / ``geometry`` paths are relative to.
        frame_sampler: a ``FRAME_SAMPLERS`` config (default ``UniformSampler(num_frames=16)``).
        video_path_template: used when an item has no ``video`` field.
        load_geometry: attach ground-truth geometry when available (SynthVSI has it).
        skip_bad_inputs: False -> a missing/corrupt video or geometry file raises
            :class:`~geokit.errors.InputFileError` (:class:`VideoReadError` for videos) naming the file; True ->
            items with missing videos are dropped at load time and items whose video or geometry file cannot be
            read are replaced by the next item, each with a logged warning.
        skip_bad_videos: deprecated name of ``skip_bad_inputs``.
        generate_if_missing: ``dict(num_scenes=..., frames=..., resolution=..., seed=...)`` to generate SynthVSI at
            ``data_root`` on first use (:func:`~geokit.datasets.synthvsi.ensure_synthvsi`); None for real data.
        question_types: keep only these question types (None = all).
        **kwargs: ``mmengine.dataset.BaseDataset`` arguments (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    def __init__(self, ann_file: str, data_root: str = '', frame_sampler: dict | None = None,
                 video_path_template: str = '{dataset}/{scene_name}.mp4', load_geometry: bool = True,
                 skip_bad_inputs: bool = False, generate_if_missing: dict | None = None,
                 question_types: list[str] | None = None, skip_bad_videos: bool | None = None, **kwargs) -> None:
        if skip_bad_videos is not None:
            print_log('`skip_bad_videos` is deprecated: it is now `skip_bad_inputs` (it also covers geometry files).',
                      logger='current', level=30)
            skip_bad_inputs = skip_bad_inputs or skip_bad_videos
        if generate_if_missing is not None:
            ensure_synthvsi(data_root, **generate_if_missing)
        self.frame_sampler = FRAME_SAMPLERS.build(frame_sampler or dict(type='UniformSampler', num_frames=16))
        self.video_path_template = video_path_template
        self.load_geometry = load_geometry
        self.skip_bad_inputs = skip_bad_inputs
        self.question_types = set(question_types) if question_types else None
        self._video_probes: dict[str, tuple[int, float | None]] = {}
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)
        self._metainfo.setdefault('data_root', self.data_root)  # metrics resolve their side files against it

    # ------------------------------------------------------------------ loading
    def _resolve(self, relative: str) -> str:
        path = Path(relative)
        return str(path if path.is_absolute() else Path(self.data_root or '.') / path)

    #: fields every annotation row must have
    required_fields: tuple[str, ...] = ()

    def _read_jsonl(self) -> list[tuple[int, dict]]:
        """``(line number, row)`` of every non-empty line."""
        path = Path(self.ann_file)
        if not path.is_file():
            raise InputFileNotFoundError(path, 'annotation file does not exist',
                                         'set `ann_file` / `data_root` in the dataset config (or '
                                         '`generate_if_missing=dict(...)` for SynthVSI)')
        if path.suffix.lower() in ('.parquet', '.json'):   # the published layouts (geokit.datasets.published)
            numbered = list(enumerate(read_annotation_rows(path), 1))
        else:
            numbered = []
            with path.open(encoding='utf-8') as handle:
                for line_number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            numbered.append((line_number, json.loads(line)))
                        except json.JSONDecodeError as error:
                            raise InputFileError(path, f'not valid JSON ({error})', 'repair or remove this line',
                                                 line=line_number) from error
        for line_number, row in numbered:
            missing = [key for key in self.required_fields if not isinstance(row, dict) or row.get(key) is None]
            if missing:
                has = sorted(row) if isinstance(row, dict) else repr(row)[:80]
                raise InputFileError(
                    path, f'annotation row lacks {missing} (it has {has})',
                    f'add the fields; {type(self).__name__} rows need {list(self.required_fields)}',
                    line=line_number)
        return numbered

    def _to_info(self, row: dict) -> dict:
        raise NotImplementedError

    def load_data_list(self) -> list[dict]:
        infos, left_out = [], 0
        for line_number, row in self._read_jsonl():
            try:
                info = self._to_info(row)
            except InputFileError as error:
                if not self.skip_bad_inputs:
                    raise
                print_log(f'Skipping {self.ann_file}:{line_number} (skip_bad_inputs=True): {error}',
                          logger='current', level=30)
                continue
            except (KeyError, ValueError, IndexError, TypeError) as error:
                raise InputFileError(self.ann_file, f'cannot use this annotation row ({type(error).__name__}: '
                                                    f'{error})', f'fix the row to the {type(self).__name__} format',
                                     line=line_number) from error
            if info is None:   # an image-only training row
                left_out += 1
                continue
            if self.question_types is not None and info['meta']['question_type'] not in self.question_types:
                continue
            if self.skip_bad_inputs and not Path(info['video_path']).is_file():
                print_log(f'Skipping item {info["meta"]["id"]}: video {info["video_path"]} not found '
                          f'(skip_bad_inputs=True).', logger='current', level=30)
                continue
            infos.append(info)
        if left_out:
            print_log(f'{self.ann_file}: left out {left_out} image-only rows (geokit reads videos).',
                      logger='current', level=30)
        return infos

    def _video_info(self, row: dict) -> tuple[str, str | None]:
        video = row.get('video') or self.video_path_template.format(**row)
        video_path = self._resolve(video)
        geometry = row.get('geometry')
        if geometry and self.load_geometry and not Path(self._resolve(geometry)).is_file():
            # named explicitly by the row, so its absence is an error (not "this dataset has no geometry")
            raise InputFileNotFoundError(self._resolve(geometry), 'geometry file named by the annotation row does '
                                         'not exist', GEOMETRY_FIX)
        geometry_path = self._resolve(geometry) if geometry else str(Path(video_path).with_name('geometry.safetensors'))
        return video_path, geometry_path

    # ------------------------------------------------------------------ items
    def frame_indices(self, idx: int) -> torch.Tensor:
        """``(T,)`` the frame indices item ``idx`` reads, without reading its frames: from the video's frame count
        and rate (the container's header; a container without a frame count is scanned once per video).

        What a store keyed by (video, frames), such as the teacher cache, needs to tell whether it already holds an
        item. Raises the same ``InputFileError`` as reading the item when the video is missing or unreadable.
        """
        return self._select_frames(self.get_data_info(idx))[0]

    def _select_frames(self, info: dict) -> tuple[torch.Tensor, int, float | None]:
        path = info['video_path']
        if path not in self._video_probes:  # questions share videos: probe each once
            self._video_probes[path] = probe_video(path)
        num_frames, fps = self._video_probes[path]
        return self.frame_sampler(num_frames, fps, video_path=path), num_frames, fps

    def _load_sample(self, info: dict) -> dict:
        indices, num_frames, fps = self._select_frames(info)
        frames = read_video_frames(info['video_path'], indices)
        geometry = None
        if self.load_geometry and info['geometry_path'] and Path(info['geometry_path']).is_file():
            geometry = read_geometry_file(info['geometry_path'], indices, num_frames)
        meta = copy.deepcopy(info['meta'])
        if fps:
            meta['fps'] = float(fps)  # the processor's timestamps / temporal RoPE spacing (else its 2 fps default)
        return dict(frames=frames, frame_indices=indices, conversations=copy.deepcopy(info['conversations']),
                    meta=meta, geometry=geometry)

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        for attempt in range(len(self)):
            index = (idx + attempt) % len(self)
            info = self.get_data_info(index)
            try:
                sample = self._load_sample(info)
            except InputFileError as error:
                if not self.skip_bad_inputs:
                    raise
                print_log(f'Skipping item {info["meta"]["id"]} (skip_bad_inputs=True): {error}', logger='current',
                          level=30)
                continue
            return self.pipeline(sample)
        raise InputFileError(self.ann_file, 'no item of this dataset has a readable video and geometry file '
                                            '(skip_bad_inputs=True skipped every one)',
                             'check `data_root` and the files named by the warnings above')


@DATASETS.register_module()
class VSIBenchDataset(_VideoQADataset):
    """VSI-Bench style test/val JSONL: ``{id, dataset, scene_name, question_type, question, options, ground_truth}``.

    The human turn is the official VSI-Bench prompt (:func:`~geokit.datasets.prompts.build_vsibench_prompt`) after
    ``'<video>\\n'``; the gpt turn is the ground truth.

    Args:
        prompt_style: ``'official'`` (default) or ``'geovr'`` (GeoVR's own prompt, for comparing with its table;
            see :data:`~geokit.datasets.prompts.PROMPT_STYLES`).
    """

    required_fields = ('id', 'question_type', 'question', 'ground_truth')

    def __init__(self, *args, test_mode: bool = True, prompt_style: str = 'official', **kwargs) -> None:
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f'VSIBenchDataset.prompt_style must be one of {sorted(PROMPT_STYLES)}, got '
                             f'{prompt_style!r}.')
        self.prompt_style = prompt_style
        super().__init__(*args, test_mode=test_mode, **kwargs)

    def _to_info(self, row: dict) -> dict:
        video_path, geometry_path = self._video_info(row)
        meta = dict(id=row['id'], dataset=row.get('dataset'), scene_name=row.get('scene_name'),
                    question_type=row['question_type'], options=row.get('options'),
                    ground_truth=str(row['ground_truth']), video=video_path)
        prompt = PROMPT_STYLES[self.prompt_style](row)
        conversations = [{'from': 'human', 'value': f'{VIDEO_TOKEN}\n' + prompt},
                         {'from': 'gpt', 'value': str(row['ground_truth'])}]
        return dict(video_path=video_path, geometry_path=geometry_path, conversations=conversations, meta=meta)


@DATASETS.register_module()
class VSI590KDataset(_VideoQADataset):
    """VSI-590K style training JSONL: ``{video, conversations: [{from: human, value}, {from: gpt, value}], ...}``.

    Optional fields (``id``, ``dataset``, ``scene_name``, ``question_type``, ``options``) are passed into ``meta``;
    ``ground_truth`` is the last gpt turn. The published VSI-590K and Spatial-MLLM files are read as distributed
    (:func:`~geokit.datasets.published.normalize_training_row`); their image-only rows are left out.
    """

    #: checked after normalize_training_row (published rows may say `conversation`; image-only rows have no video)
    required_fields = ()

    def _to_info(self, row: dict) -> dict | None:
        if 'conversations' in row or 'conversation' in row:
            row = normalize_training_row(row)
            if row is None:   # an image-only row
                return None
        if 'conversations' not in row or not row.get('video'):
            raise ValueError(f'VSI-590K rows need `video` and `conversations`; got keys {sorted(row)}. For VSI-Bench '
                             f'style rows use VSIBenchDataset.')
        video_path, geometry_path = self._video_info(row)
        gpt = [turn['value'] for turn in row['conversations'] if turn['from'] == 'gpt']
        meta = dict(id=row.get('id'), dataset=row.get('dataset'), scene_name=row.get('scene_name'),
                    question_type=row.get('question_type'), options=row.get('options'),
                    ground_truth=gpt[-1] if gpt else None, video=video_path)
        return dict(video_path=video_path, geometry_path=geometry_path, conversations=row['conversations'],
                    meta=meta)
