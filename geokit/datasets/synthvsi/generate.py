"""Generate SynthVSI scenes and datasets on disk, and generate-on-first-use (:func:`ensure_synthvsi`).

Layout of a dataset root::

    <root>/synthvsi_meta.json                  generation parameters (marker; written last)
    <root>/<split>/<scene_name>/video.mp4      H.264 RGB video
    <root>/<split>/<scene_name>/geometry.safetensors
        depth (T, H, W) float32 metres (z-depth, 0 = invalid), extrinsics (T, 3, 4) float32 OpenCV
        camera-from-world, intrinsics (T, 3, 3) float32 pixels, instance (T, H, W) int32 (0 = room)
    <root>/<split>/<scene_name>/scene.json     room size, objects (category, center, size, yaw), camera, visibility
    <root>/train.jsonl                         VSI-590K format: {id, video, conversations, ...}
    <root>/val.jsonl, <root>/test.jsonl        VSI-Bench format: {id, dataset, scene_name, question_type, question,
                                               options, ground_truth} + video / geometry paths relative to root

Every scene has its own random stream seeded by ``(seed, scene_index)``, so the same parameters always give
byte-identical files.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import print_log
from safetensors.torch import save_file
from tqdm import tqdm

from ..prompts import build_vsibench_prompt
from ..video_io import write_video
from .qa import generate_qa, seen_objects
from .renderer import render, scene_boxes
from .scene import sample_scene
from .trajectory import sample_trajectory

DATASET_NAME = 'synthvsi'
FORMAT_VERSION = 1
MARKER = 'synthvsi_meta.json'
SPLITS = ('train', 'val', 'test')


@dataclass(frozen=True)
class SynthVSIParams:
    """Generation parameters; they are the identity of a generated dataset (stored in the marker file)."""

    num_scenes: int = 32
    frames: int = 16
    resolution: tuple[int, int] = (112, 112)
    seed: int = 0
    fps: float = 4.0
    questions_per_type: int = 2
    min_visible_fraction: float = 0.002

    def to_json(self) -> dict:
        return dict(asdict(self), resolution=list(self.resolution), version=FORMAT_VERSION)


def split_sizes(num_scenes: int) -> dict[str, int]:
    """Scenes per split: 1/8 val, 1/8 test (at least one each from 3 scenes up), the rest train."""
    held_out = max(1, round(num_scenes / 8)) if num_scenes >= 3 else 0
    return dict(train=num_scenes - 2 * held_out, val=held_out, test=held_out)


def scene_split(index: int, num_scenes: int) -> str:
    sizes = split_sizes(num_scenes)
    if index < sizes['train']:
        return 'train'
    return 'val' if index < sizes['train'] + sizes['val'] else 'test'


def generate_scene(index: int, params: SynthVSIParams) -> dict:
    """Sample, render and annotate one scene (nothing is written).

    Returns:
        dict with ``scene`` (the ``scene.json`` content), ``rgb`` uint8 ``(T, H, W, 3)``, ``geometry`` (the four
        tensors of ``geometry.safetensors``) and ``qa`` (list of question dicts, see :func:`~.qa.generate_qa`).
    """
    rng = np.random.default_rng([params.seed, index])
    height, width = params.resolution
    for _ in range(20):
        scene = sample_scene(rng)
        try:
            camera = sample_trajectory(scene, params.frames, (height, width), rng)
            break
        except ValueError:  # no free floor for the camera: draw another layout
            continue
    else:
        raise RuntimeError(f'could not sample a walkable layout for scene {index} (seed {params.seed})')
    extrinsics = torch.tensor(camera['extrinsics'], dtype=torch.float32)
    intrinsics = torch.tensor(camera['intrinsics'], dtype=torch.float32)
    out = render(scene_boxes(scene), scene['room']['size'], extrinsics, intrinsics, (height, width))
    num_ids = len(scene['objects']) + 1
    counts = torch.stack([torch.bincount(f.reshape(-1).long(), minlength=num_ids) for f in out['instance']]).numpy()
    min_pixels = max(4, int(round(params.min_visible_fraction * height * width)))
    qa = generate_qa(scene, counts, min_pixels, rng, per_type=params.questions_per_type)
    first_seen = seen_objects(counts, min_pixels)
    scene_json = dict(
        scene_name=f'scene_{index:05d}', split=scene_split(index, params.num_scenes), dataset=DATASET_NAME,
        room=scene['room'], objects=scene['objects'],
        camera=dict(num_frames=params.frames, fps=params.fps, image_size=[height, width],
                    fov_x_deg=camera['fov_x_deg'], eye_height=camera['eye_height']),
        visibility=dict(min_pixels=min_pixels, first_frame={str(k): v for k, v in first_seen.items()},
                        pixel_counts={str(k): counts[:, k].tolist() for k in range(1, num_ids)}),
        conventions=dict(world='z up, floor z=0, room [0,Lx]x[0,Ly]x[0,height], metres',
                         yaw='radians counter-clockwise about +z; local x = length, y = depth (+y = back), z = up',
                         camera='OpenCV (x right, y down, z forward); extrinsics camera-from-world; intrinsics '
                                'pixels, pixel (row i, col j) at (u, v) = (j, i)',
                         instance='0 = room surfaces, k = objects[k-1]'))
    geometry = dict(depth=out['depth'].contiguous(), extrinsics=extrinsics.contiguous(),
                    intrinsics=intrinsics.contiguous(), instance=out['instance'].contiguous())
    return dict(scene=scene_json, rgb=out['rgb'], geometry=geometry, qa=qa)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_scene(scene_dir: Path, record: dict, fps: float) -> None:
    """Write one generated scene's ``video.mp4``, ``geometry.safetensors`` and ``scene.json``."""
    scene_dir.mkdir(parents=True, exist_ok=True)
    write_video(scene_dir / 'video.mp4', record['rgb'], fps=fps)
    tmp = scene_dir / 'geometry.safetensors.tmp'
    # one metadata key: safetensors writes a multi-key metadata map in hash order, which would break byte-determinism
    save_file(record['geometry'], str(tmp), metadata={'format': f'synthvsi-v{FORMAT_VERSION}'})
    os.replace(tmp, scene_dir / 'geometry.safetensors')
    _write_json(scene_dir / 'scene.json', record['scene'])


def _annotation(item: dict, split: str, qid: int, scene_name: str) -> dict:
    rel = f'{split}/{scene_name}'
    bench = dict(id=qid, dataset=DATASET_NAME, scene_name=scene_name, question_type=item['question_type'],
                 question=item['question'], options=item['options'], ground_truth=item['ground_truth'])
    if split != 'train':
        return dict(bench, video=f'{rel}/video.mp4', geometry=f'{rel}/geometry.safetensors')
    conversations = [dict(value='<video>\n' + build_vsibench_prompt(bench), **{'from': 'human'}),
                     dict(value=item['ground_truth'], **{'from': 'gpt'})]
    return dict(id=qid, video=f'{rel}/video.mp4', conversations=conversations, dataset=DATASET_NAME,
                scene_name=scene_name, question_type=item['question_type'], options=item['options'],
                geometry=f'{rel}/geometry.safetensors')


def _generate_and_write(index: int, params: SynthVSIParams, out: Path) -> tuple[str, str, list[dict]]:
    record = generate_scene(index, params)
    split, name = record['scene']['split'], record['scene']['scene_name']
    write_scene(out / split / name, record, params.fps)
    return split, name, record['qa']


def _single_thread_worker() -> None:
    torch.set_num_threads(1)


def make_synthvsi(out: str | os.PathLike, params: SynthVSIParams, progress: bool = True, workers: int = 1) -> Path:
    """Generate a whole dataset into ``out`` (created; must not hold another dataset). Returns ``out``.

    ``workers > 1`` renders scenes in that many single-threaded processes; the files are identical either way.
    """
    out = Path(out)
    if (out / MARKER).exists():
        raise FileExistsError(f'{out} already holds a SynthVSI dataset ({MARKER}); choose another --out or delete it.')
    out.mkdir(parents=True, exist_ok=True)
    indices = range(params.num_scenes)
    bar = dict(total=params.num_scenes, desc='SynthVSI scenes', disable=not progress)
    if workers > 1:
        context = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_thread_worker) as pool:
            results = list(tqdm(pool.map(_generate_and_write, indices, repeat(params), repeat(out)), **bar))
    else:
        results = [_generate_and_write(index, params, out) for index in tqdm(indices, **bar)]
    annotations: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for split, name, qa in results:
        for item in qa:
            annotations[split].append(_annotation(item, split, len(annotations[split]), name))
    for split, rows in annotations.items():
        tmp = out / f'{split}.jsonl.tmp'
        tmp.write_text(''.join(json.dumps(row) + '\n' for row in rows))
        os.replace(tmp, out / f'{split}.jsonl')
    _write_json(out / MARKER, params.to_json())
    return out


def ensure_synthvsi(root: str | os.PathLike, num_scenes: int = 32, frames: int = 16,
                    resolution: tuple[int, int] | list[int] = (112, 112), seed: int = 0, workers: int = 1,
                    **kwargs) -> Path:
    """Make sure a SynthVSI dataset with these parameters exists at ``root``; generate it if it is missing.

    Idempotent and atomic: the dataset is generated into a temporary sibling folder that is renamed to ``root``
    when complete, so an interrupted run never leaves a half-written dataset behind. ``workers`` only sets the
    number of generating processes (not part of the dataset's identity). Extra keyword arguments are
    further :class:`SynthVSIParams` fields (``fps``, ``questions_per_type``, ``min_visible_fraction``).

    Raises:
        ValueError: ``root`` holds a dataset generated with different parameters, or something that is not a
            SynthVSI dataset.
    """
    root = Path(root)
    params = SynthVSIParams(num_scenes=num_scenes, frames=frames, resolution=tuple(int(r) for r in resolution),
                            seed=seed, **kwargs)
    wanted = params.to_json()
    marker = root / MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != wanted:
            diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
            raise ValueError(f'SynthVSI at {root} was generated with different parameters '
                             f'(key: (on disk, requested)) {diff}. Fix: point `data_root` at another folder, make '
                             f'`generate_if_missing` match the parameters on disk, or delete {root} to regenerate.')
        return root
    if root.exists() and any(root.iterdir()):
        raise ValueError(f'{root} exists but has no {MARKER}: it is not a (complete) SynthVSI dataset. Fix: delete '
                         f'it to let it be generated, or point `data_root` at a SynthVSI folder.')
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f'.{root.name}.tmp-{os.getpid()}')
    if tmp.exists():
        shutil.rmtree(tmp)
    print_log(f'SynthVSI: generating {num_scenes} scenes ({frames} frames, {params.resolution[0]}x'
              f'{params.resolution[1]}, seed {seed}) into {root} ...', logger='current')
    make_synthvsi(tmp, params, workers=workers)
    try:
        if root.exists():
            root.rmdir()  # an empty placeholder folder
        os.replace(tmp, root)
    except OSError:
        # another process finished first: keep its copy if it matches
        shutil.rmtree(tmp, ignore_errors=True)
        if not marker.exists():
            raise
        return ensure_synthvsi(root, num_scenes, frames, resolution, seed, workers, **kwargs)
    return root
