"""SynthVSI geometry: multi-view consistency of depth + poses, scene/camera ranges, no interpenetration, files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geokit.datasets.synthvsi.generate import generate_scene, write_scene
from geokit.datasets.synthvsi.scene import sample_scene


def _unproject(depth, extrinsics, intrinsics):
    """World points (H, W, 3) of a z-depth map; pixel (row i, col j) sits at (u, v) = (j, i) (written here, not
    imported, so the test checks the data against an independent derivation)."""
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing='ij')
    pix = np.stack([u, v, np.ones_like(u)], -1)
    cam = (pix @ np.linalg.inv(intrinsics).T) * depth[..., None]
    rot, trans = extrinsics[:, :3], extrinsics[:, 3]
    return (cam - trans) @ rot                                   # R^T (x - t)


def _project(points, extrinsics, intrinsics):
    cam = points @ extrinsics[:, :3].T + extrinsics[:, 3]
    uvw = cam @ intrinsics.T
    return uvw[..., :2] / uvw[..., 2:3], cam[..., 2]


def _reprojection_errors(geo, i, j):
    depth = geo['depth'].double().numpy()
    inst = geo['instance'].numpy()
    ext, intr = geo['extrinsics'].double().numpy(), geo['intrinsics'].double().numpy()
    h, w = depth.shape[1:]
    points = _unproject(depth[i], ext[i], intr[i]).reshape(-1, 3)
    uv, z = _project(points, ext[j], intr[j])
    u0, v0 = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (z > 0) & (u0 >= 0) & (v0 >= 0) & (u0 < w - 1) & (v0 < h - 1)
    src_inst = inst[i].reshape(-1)
    u0, v0, uv, z, src_inst = u0[inside], v0[inside], uv[inside], z[inside], src_inst[inside]
    corners = [(v0, u0), (v0, u0 + 1), (v0 + 1, u0), (v0 + 1, u0 + 1)]
    same = np.all([inst[j][vv, uu] == src_inst for vv, uu in corners], axis=0)   # co-visible: same surface
    fu, fv = uv[:, 0] - u0, uv[:, 1] - v0
    weights = [(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv]
    inv_depth = sum(wt / depth[j][vv, uu] for wt, (vv, uu) in zip(weights, corners))  # 1/z is affine on planes
    return np.abs(1.0 / inv_depth[same] - z[same])


def test_multiview_depth_consistency(tiny_scene_dirs):
    checked = 0
    for scene_dir in tiny_scene_dirs:
        geo = load_file(str(scene_dir / 'geometry.safetensors'))
        for i in range(geo['depth'].shape[0] - 1):
            for j in (i + 1, min(i + 2, geo['depth'].shape[0] - 1)):
                errors = _reprojection_errors(geo, i, j)
                if len(errors) < 50:
                    continue
                assert np.median(errors) < 0.01, f'{scene_dir.name} frames {i}->{j}: median {np.median(errors):.4f} m'
                checked += 1
    assert checked >= 5, 'too few co-visible frame pairs to check multi-view consistency'


def test_files_shapes_and_camera_ranges(tiny_scene_dirs, tiny_params):
    t, (h, w) = tiny_params.frames, tiny_params.resolution
    for scene_dir in tiny_scene_dirs:
        geo = load_file(str(scene_dir / 'geometry.safetensors'))
        assert geo['depth'].shape == (t, h, w) and geo['depth'].dtype == torch.float32
        assert geo['instance'].shape == (t, h, w) and geo['instance'].dtype == torch.int32
        assert geo['extrinsics'].shape == (t, 3, 4) and geo['intrinsics'].shape == (t, 3, 3)
        assert (geo['depth'] > 0).all()
        scene = json.loads((scene_dir / 'scene.json').read_text())
        rot = geo['extrinsics'][:, :, :3].double()
        assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(t, 3, 3), atol=1e-5)
        centers = -(rot.transpose(1, 2) @ geo['extrinsics'][:, :, 3:].double()).squeeze(-1)
        assert ((centers[:, 2] > 1.15) & (centers[:, 2] < 1.85)).all()                # eye height (+-3 cm bob)
        lx, ly, lz = scene['room']['size']
        assert 2.5 <= lx <= 12 and 2.5 <= ly <= 12 and 2.4 <= lz <= 3.2
        assert ((centers[:, 0] > 0) & (centers[:, 0] < lx) & (centers[:, 1] > 0) & (centers[:, 1] < ly)).all()
        fov = 2 * torch.rad2deg(torch.atan(w / 2 / geo['intrinsics'][:, 0, 0]))
        assert ((fov >= 50 - 1e-3) & (fov <= 90 + 1e-3)).all()
        # camera y axis points down in the world (z up): R row 1 has a negative z component
        assert (rot[:, 1, 2] < 0).all()
        with open(scene_dir / 'video.mp4', 'rb') as handle:
            assert handle.read(12)[4:8] == b'ftyp'


def _inside(points, obj, shrink=1e-3):
    c, s = np.cos(obj['yaw']), np.sin(obj['yaw'])
    d = points - np.array(obj['center'])
    local = np.stack([d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c, d[:, 2]], -1)
    return np.all(np.abs(local) < np.array(obj['size']) / 2 - shrink, axis=-1)


@pytest.mark.parametrize('seed', range(6))
def test_layouts_respect_ranges_and_never_interpenetrate(seed):
    scene = sample_scene(np.random.default_rng(seed))
    objects = scene['objects']
    assert 3 <= len(objects) <= 20
    lx, ly, lz = scene['room']['size']
    grid = np.stack(np.meshgrid(*[np.linspace(-0.5, 0.5, 7)] * 3, indexing='ij'), -1).reshape(-1, 3)
    for a in objects:
        c, s = np.cos(a['yaw']), np.sin(a['yaw'])
        local = grid * np.array(a['size'])
        pts = np.array(a['center']) + np.stack([local[:, 0] * c - local[:, 1] * s,
                                                local[:, 0] * s + local[:, 1] * c, local[:, 2]], -1)
        assert (pts[:, 0] >= -1e-6).all() and (pts[:, 0] <= lx + 1e-6).all()
        assert (pts[:, 1] >= -1e-6).all() and (pts[:, 1] <= ly + 1e-6).all()
        assert (pts[:, 2] >= -1e-6).all() and (pts[:, 2] <= lz + 1e-6).all()
        for b in objects:
            if b is not a:
                assert not _inside(pts, b).any(), f'{a["category"]} interpenetrates {b["category"]}'


def test_categories_are_many_and_visually_distinct():
    from geokit.datasets.synthvsi.categories import CATEGORIES
    assert len(CATEGORIES) >= 12
    colors = np.array([c.color for c in CATEGORIES])
    patterns = [c.pattern for c in CATEGORIES]
    for i in range(len(CATEGORIES)):
        for j in range(i + 1, len(CATEGORIES)):
            assert np.abs(colors[i] - colors[j]).sum() > 0.1 or patterns[i] != patterns[j]


def test_generation_is_deterministic(tiny_scene_dirs, tiny_params, tmp_path, single_thread):
    TINY = tiny_params  # noqa: N806
    original = tiny_scene_dirs[0]
    index = int(original.name.split('_')[1])
    write_scene(tmp_path / 'again', generate_scene(index, TINY), TINY.fps)
    for name in ('video.mp4', 'geometry.safetensors', 'scene.json'):
        assert (tmp_path / 'again' / name).read_bytes() == (original / name).read_bytes(), name
    other = generate_scene(index, type(TINY)(**{**TINY.__dict__, 'seed': 1}))
    assert other['scene']['objects'] != json.loads((original / 'scene.json').read_text())['objects']
