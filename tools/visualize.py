"""Point clouds with camera frustums from depth + poses: PLY files and a side-by-side PNG (headless).

    # ground truth of a SynthVSI scene, coloured by its video
    python tools/visualize.py --scene data/synthvsi/test/scene_00028 --out-dir work_dirs/vis
    # ground truth | teacher | prediction (a teacher shard of tools/cache_teacher.py; a prediction file written by
    # GeometryMetric(save_predictions=True)); the ground truth uses the frames the teacher/prediction saw
    python tools/visualize.py --scene data/synthvsi/test/scene_00028 --teacher CACHE_DIR/<id>__<hash>.safetensors \\
        --pred work_dirs/geovr/geometry/<id>.safetensors --out-dir work_dirs/vis --ply

Every panel is expressed in its camera 0 frame and seen from behind and above camera 0. Predictions and teacher
outputs are up to scale: ``--scale file`` (default) applies the file's ``alignment_scale`` (else ``metric_scale``)
to depth and camera translations so they are comparable with the metric ground truth.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch
from mmengine.logging import print_log

from geokit.datasets.video_io import probe_video, read_video_frames
from geokit.visualization import build_scene_geometry, load_geometry, render_panels, resize_frames, write_ply


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Render depth + cameras as coloured point clouds with frustums.')
    parser.add_argument('--scene', help='SynthVSI scene directory (geometry.safetensors [+ video.mp4]) or a '
                                        'geometry .safetensors file: the ground-truth panel')
    parser.add_argument('--teacher', help='teacher geometry .safetensors (depth + extrinsics/pose_enc)')
    parser.add_argument('--pred', help='predicted geometry .safetensors (e.g. from GeometryMetric)')
    parser.add_argument('--out-dir', required=True, help='where the PNG (and PLY files) go')
    parser.add_argument('--name', default='reconstruction', help='output file stem')
    parser.add_argument('--frames', help='ground-truth frames to use, python slice "start:stop:step" (default: the '
                                         "prediction's (else the teacher's) frame_indices, else all)")
    parser.add_argument('--stride', type=int, default=2, help='pixel stride of the point clouds')
    parser.add_argument('--max-points', type=int, default=150_000, help='points per panel (random subset)')
    parser.add_argument('--scale', choices=['file', 'metric', 'none'], default='file',
                        help='scale for teacher/prediction: file = alignment_scale (else metric_scale), metric = '
                             'metric_scale, none = as stored')
    parser.add_argument('--backend', choices=['auto', 'open3d', 'matplotlib'], default='auto')
    parser.add_argument('--panel-size', type=int, nargs=2, default=[480, 360], metavar=('W', 'H'))
    parser.add_argument('--ply', action='store_true', help='also write one .ply per panel (points + frustum edges)')
    parser.add_argument('--no-color', action='store_true', help='colour by depth instead of the video frames')
    return parser.parse_args(argv)


def _slice(text: str) -> slice:
    parts = [int(p) if p else None for p in text.split(':')]
    return slice(*parts)


def _scaled(geometry: dict, mode: str) -> dict:
    """Scale depth and camera translations together (a uniform scaling of the reconstruction)."""
    scale = 1.0
    if mode == 'file':
        scale = float(geometry.get('alignment_scale', geometry.get('metric_scale', torch.tensor(1.0))))
    elif mode == 'metric':
        if 'metric_scale' not in geometry:
            raise KeyError('--scale metric needs `metric_scale` in the file; use --scale file or none.')
        scale = float(geometry['metric_scale'])
    extrinsics = geometry['extrinsics'].clone()
    extrinsics[..., :3, 3] *= scale
    return dict(geometry, depth=geometry['depth'] * scale, extrinsics=extrinsics)


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    if not (args.scene or args.teacher or args.pred):
        raise SystemExit('Nothing to show: give --scene, --teacher and/or --pred.')
    os.makedirs(args.out_dir, exist_ok=True)
    panels: list[tuple[str, dict, torch.Tensor | None]] = []
    pred = load_geometry(args.pred) if args.pred else None
    teacher = load_geometry(args.teacher) if args.teacher else None
    frames = None
    if args.scene:
        gt = load_geometry(args.scene)
        video = osp.join(args.scene, 'video.mp4') if osp.isdir(args.scene) else None
        if video and osp.isfile(video) and not args.no_color:
            frames = read_video_frames(video, range(probe_video(video)[0]))
        if args.frames:
            index = torch.arange(gt['depth'].shape[0])[_slice(args.frames)]
        elif any(g is not None and 'frame_indices' in g for g in (pred, teacher)):
            index = next(g for g in (pred, teacher) if g is not None and 'frame_indices' in g)['frame_indices'].long()
        else:
            index = torch.arange(gt['depth'].shape[0])
        gt = {key: gt[key][index] for key in ('depth', 'extrinsics', 'intrinsics')}
        frames = frames[index] if frames is not None else None
        panels.append(('ground truth (m)', gt, frames))
    for title, geometry in (('teacher', teacher), ('prediction', pred)):
        if geometry is not None:
            geometry = _scaled(geometry, args.scale)
            colors = resize_frames(frames, tuple(geometry['depth'].shape[-2:])) \
                if frames is not None and frames.shape[0] == geometry['depth'].shape[0] else None
            panels.append((title, geometry, colors))
    scenes = [build_scene_geometry(g['depth'], g['extrinsics'], g['intrinsics'], colors, title=title,
                                   stride=args.stride, max_points=args.max_points) for title, g, colors in panels]
    written = []
    png = osp.join(args.out_dir, f'{args.name}.png')
    backend = render_panels(scenes, png, backend=args.backend, panel_size=tuple(args.panel_size))
    written.append(png)
    print_log(f'Rendered {len(scenes)} panel(s) with {backend}: {png}', logger='current')
    if args.ply:
        for scene in scenes:
            stem = scene.title.split(' ')[0].replace('/', '_')
            path = osp.join(args.out_dir, f'{args.name}_{stem}.ply')
            written.append(write_ply(path, torch.cat([scene.points, scene.frustum_vertices]),
                                     torch.cat([scene.colors, torch.ones_like(scene.frustum_vertices) * 0.8]),
                                     edges=scene.frustum_edges + scene.points.shape[0],
                                     edge_colors=scene.frustum_colors))
            print_log(f'Wrote {path}', logger='current')
    return written


if __name__ == '__main__':
    main()
