"""Readers for VSI-Bench (test) and VSI-590K (training) style JSONL + videos; one family for real and SynthVSI data.

Each item becomes the sample dict of the data contract::

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

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from safetensors.torch import load_file

from geokit.registry import DATASETS, FRAME_SAMPLERS

from .prompts import build_vsibench_prompt
from .synthvsi.generate import ensure_synthvsi
from .video_io import VideoReadError, probe_video, read_video_frames

VIDEO_TOKEN = '<video>'


class _VideoQADataset(BaseDataset):
    """Shared machinery: JSONL loading, frame sampling, video decoding, geometry, bad-video handling.

    Args:
        ann_file: JSONL file (relative to ``data_root`` unless absolute).
        data_root: folder the ``video`` / ``geometry`` paths are relative to.
        frame_sampler: a ``FRAME_SAMPLERS`` config (default ``UniformSampler(num_frames=16)``).
        video_path_template: used when an item has no ``video`` field.
        load_geometry: attach ground-truth geometry when available (SynthVSI has it).
        skip_bad_videos: False -> a missing/corrupt video raises :class:`VideoReadError` naming the file; True ->
            items with missing videos are dropped at load time and undecodable ones are replaced by the next item,
            each with a logged warning.
        generate_if_missing: ``dict(num_scenes=..., frames=..., resolution=..., seed=...)`` to generate SynthVSI at
            ``data_root`` on first use (:func:`~geokit.datasets.synthvsi.ensure_synthvsi`); None for real data.
        question_types: keep only these question types (None = all).
        **kwargs: ``mmengine.dataset.BaseDataset`` arguments (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    def __init__(self, ann_file: str, data_root: str = '', frame_sampler: dict | None = None,
                 video_path_template: str = '{dataset}/{scene_name}.mp4', load_geometry: bool = True,
                 skip_bad_videos: bool = False, generate_if_missing: dict | None = None,
                 question_types: list[str] | None = None, **kwargs) -> None:
        if generate_if_missing is not None:
            ensure_synthvsi(data_root, **generate_if_missing)
        self.frame_sampler = FRAME_SAMPLERS.build(frame_sampler or dict(type='UniformSampler', num_frames=16))
        self.video_path_template = video_path_template
        self.load_geometry = load_geometry
        self.skip_bad_videos = skip_bad_videos
        self.question_types = set(question_types) if question_types else None
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    # ------------------------------------------------------------------ loading
    def _resolve(self, relative: str) -> str:
        path = Path(relative)
        return str(path if path.is_absolute() else Path(self.data_root or '.') / path)

    def _read_jsonl(self) -> list[dict]:
        path = Path(self.ann_file)
        if not path.is_file():
            raise FileNotFoundError(f'Annotation file not found: {path}. Fix: set `ann_file` / `data_root` in the '
                                    f'dataset config (or `generate_if_missing=dict(...)` for SynthVSI).')
        rows = []
        with path.open(encoding='utf-8') as handle:
            for line_number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise ValueError(f'{path}:{line_number} is not valid JSON ({error}).') from error
        return rows

    def _to_info(self, row: dict) -> dict:
        raise NotImplementedError

    def load_data_list(self) -> list[dict]:
        infos = []
        for row in self._read_jsonl():
            info = self._to_info(row)
            if self.question_types is not None and info['meta']['question_type'] not in self.question_types:
                continue
            if self.skip_bad_videos and not Path(info['video_path']).is_file():
                print_log(f'Skipping item {info["meta"]["id"]}: video {info["video_path"]} not found '
                          f'(skip_bad_videos=True).', logger='current', level=30)
                continue
            infos.append(info)
        return infos

    def _video_info(self, row: dict) -> tuple[str, str | None]:
        video = row.get('video') or self.video_path_template.format(**row)
        video_path = self._resolve(video)
        geometry = row.get('geometry')
        geometry_path = self._resolve(geometry) if geometry else str(Path(video_path).with_name('geometry.safetensors'))
        return video_path, geometry_path

    # ------------------------------------------------------------------ items
    def _load_sample(self, info: dict) -> dict:
        num_frames, fps = probe_video(info['video_path'])
        indices = self.frame_sampler(num_frames, fps, video_path=info['video_path'])
        frames = read_video_frames(info['video_path'], indices)
        geometry = None
        if self.load_geometry and info['geometry_path'] and Path(info['geometry_path']).is_file():
            tensors = load_file(info['geometry_path'])
            geometry = {key: tensors[key][indices] for key in ('depth', 'extrinsics', 'intrinsics', 'instance')}
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
            except VideoReadError as error:
                if not self.skip_bad_videos:
                    raise
                print_log(f'Skipping item {info["meta"]["id"]} (skip_bad_videos=True): {error}', logger='current',
                          level=30)
                continue
            return self.pipeline(sample)
        raise VideoReadError(f'No readable video in the whole dataset {self.ann_file}.')


@DATASETS.register_module()
class VSIBenchDataset(_VideoQADataset):
    """VSI-Bench style test/val JSONL: ``{id, dataset, scene_name, question_type, question, options, ground_truth}``.

    The human turn is the official VSI-Bench prompt (:func:`~geokit.datasets.prompts.build_vsibench_prompt`) after
    ``'<video>\\n'``; the gpt turn is the ground truth.
    """

    def __init__(self, *args, test_mode: bool = True, **kwargs) -> None:
        super().__init__(*args, test_mode=test_mode, **kwargs)

    def _to_info(self, row: dict) -> dict:
        video_path, geometry_path = self._video_info(row)
        meta = dict(id=row['id'], dataset=row.get('dataset'), scene_name=row.get('scene_name'),
                    question_type=row['question_type'], options=row.get('options'),
                    ground_truth=str(row['ground_truth']), video=video_path)
        conversations = [{'from': 'human', 'value': f'{VIDEO_TOKEN}\n' + build_vsibench_prompt(row)},
                         {'from': 'gpt', 'value': str(row['ground_truth'])}]
        return dict(video_path=video_path, geometry_path=geometry_path, conversations=conversations, meta=meta)


@DATASETS.register_module()
class VSI590KDataset(_VideoQADataset):
    """VSI-590K style training JSONL: ``{video, conversations: [{from: human, value}, {from: gpt, value}], ...}``.

    Optional fields (``id``, ``dataset``, ``scene_name``, ``question_type``, ``options``) are passed into ``meta``;
    ``ground_truth`` is the last gpt turn.
    """

    def _to_info(self, row: dict) -> dict:
        if 'conversations' not in row or not row.get('video'):
            raise ValueError(f'VSI-590K rows need `video` and `conversations`; got keys {sorted(row)} in '
                             f'{self.ann_file}. For VSI-Bench style rows use VSIBenchDataset.')
        video_path, geometry_path = self._video_info(row)
        gpt = [turn['value'] for turn in row['conversations'] if turn['from'] == 'gpt']
        meta = dict(id=row.get('id'), dataset=row.get('dataset'), scene_name=row.get('scene_name'),
                    question_type=row.get('question_type'), options=row.get('options'),
                    ground_truth=gpt[-1] if gpt else None, video=video_path)
        return dict(video_path=video_path, geometry_path=geometry_path, conversations=row['conversations'],
                    meta=meta)
