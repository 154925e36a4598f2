"""Point clouds, frustums, PLY files and headless PNG renders (matplotlib backend; Open3D optional)."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from safetensors.torch import load_file, save_file

from geokit.datasets import ensure_synthvsi
from geokit.geometry.pose_encoding import extrinsics_intrinsics_to_pose_encoding
from geokit.visualization import (
    build_scene_geometry,
    camera_frustums,
    depth_to_colored_points,
    load_geometry,
    read_ply,
    render_panels,
    write_ply,
)

from ..tool_loader import load_tool


@pytest.fixture(scope='module')
def scene_dir(tmp_path_factory):
    root = ensure_synthvsi(tmp_path_factory.mktemp('synthvsi') / 'data', num_scenes=3, frames=4,
                           resolution=(32, 48), seed=0)
    return str(root / 'test' / 'scene_00002')


@pytest.fixture(scope='module')
def visualize():
    return load_tool('visualize')


def check_png(path, min_hw=(100, 100)):
    """A decodable PNG with several distinct colours (not a blank canvas)."""
    assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    image = imread(path)
    assert image.shape[0] >= min_hw[0] and image.shape[1] >= min_hw[1] and image.shape[2] in (3, 4)
    rgb = image[..., :3]
    non_white = (rgb < 0.95).any(-1).mean()
    assert 0.005 < non_white < 0.9, f'{path}: {non_white:.3%} of the pixels are drawn'
    assert len(np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)) > 20
    return image


@pytest.mark.parametrize('binary', [True, False])
def test_ply_round_trip(tmp_path, binary):
    g = torch.Generator().manual_seed(0)
    points = torch.randn(50, 3, generator=g)
    colors = torch.rand(50, 3, generator=g)
    edges = torch.tensor([[0, 1], [2, 49]])
    path = write_ply(str(tmp_path / 'cloud.ply'), points, colors, edges=edges, edge_colors=torch.ones(2, 3),
                     binary=binary)
    back = read_ply(path)
    np.testing.assert_allclose(back['points'], points.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(back['colors'], np.round(colors.numpy() * 255).astype(np.uint8))
    np.testing.assert_array_equal(back['edges'], edges.numpy())
    np.testing.assert_array_equal(back['edge_colors'], np.full((2, 3), 255, dtype=np.uint8))
    with pytest.raises(ValueError, match='indices into the 50 points'):
        write_ply(str(tmp_path / 'bad.ply'), points, edges=torch.tensor([[0, 50]]))


def test_frustum_geometry():
    """Apex at the camera centre ``-R^T t``; base corners on the rays through the image corners at depth ``size``."""
    angle = 0.3
    rotation = torch.tensor([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]],
                            dtype=torch.float32)
    translation = torch.tensor([0.5, -1.0, 2.0])
    extrinsics = torch.stack([torch.cat([torch.eye(3), torch.zeros(3, 1)], 1),
                              torch.cat([rotation, translation[:, None]], 1)])
    intrinsics = torch.tensor([[10.0, 0, 20], [0, 10.0, 15], [0, 0, 1]]).expand(2, 3, 3)
    vertices, edges = camera_frustums(extrinsics, intrinsics, (30, 40), size=0.5)
    assert vertices.shape == (10, 3) and edges.shape == (16, 2)
    assert torch.allclose(vertices[0], torch.zeros(3))
    expected = torch.tensor([[-1.0, -0.75, 0.5], [1.0, -0.75, 0.5], [1.0, 0.75, 0.5], [-1.0, 0.75, 0.5]])
    assert torch.allclose(vertices[1:5], expected)
    assert torch.allclose(vertices[5], -rotation.T @ translation, atol=1e-6)
    # the corners of camera 1, mapped back into camera 1's frame, are the same local pyramid
    local = (vertices[6:10] @ rotation.T) + translation
    assert torch.allclose(local, expected, atol=1e-5)
    assert edges[8:].min() == 5 and edges.max() == 9


def test_points_and_scene_geometry():
    depth = torch.full((2, 4, 6), 2.0)
    depth[0, 0, 0] = 0  # invalid
    extrinsics = torch.cat([torch.eye(3), torch.zeros(3, 1)], 1).expand(2, 3, 4).clone()
    extrinsics[1, 2, 3] = -1.0  # camera 1 one unit further back: its points are one unit further away
    intrinsics = torch.tensor([[3.0, 0, 3], [0, 3.0, 2], [0, 0, 1]]).expand(2, 3, 3)
    points, colors = depth_to_colored_points(depth, extrinsics, intrinsics, stride=1, max_points=None)
    assert points.shape == (47, 3) and colors.shape == (47, 3)
    assert set(points[:, 2].tolist()) == {2.0, 3.0}
    scene = build_scene_geometry(depth, extrinsics, intrinsics, title='x', stride=1)
    assert scene.frustum_colors[0].tolist() == pytest.approx([0.1, 0.7, 0.1])  # camera 0 is green
    with pytest.raises(ValueError, match='images must be'):
        depth_to_colored_points(depth, extrinsics, intrinsics, images=torch.zeros(2, 3, 3, 3, dtype=torch.uint8))


def test_png_headless_matplotlib(tmp_path, scene_dir, visualize):
    written = visualize.main(['--scene', scene_dir, '--out-dir', str(tmp_path), '--backend', 'matplotlib',
                              '--panel-size', '240', '180', '--ply'])
    png, ply = written
    check_png(png)
    cloud = read_ply(ply)
    assert cloud['points'].shape[0] > 100 and cloud['edges'].shape == (4 * 8, 2)


def test_png_ground_truth_and_teacher_side_by_side(tmp_path, scene_dir, visualize):
    """A teacher file (half-scale depth, pose encodings, frames 1..3 in the metadata) next to the ground truth."""
    gt = load_file(osp.join(scene_dir, 'geometry.safetensors'))
    index = [1, 2, 3]
    hw = tuple(gt['depth'].shape[-2:])
    pose_enc = extrinsics_intrinsics_to_pose_encoding(gt['extrinsics'][index], gt['intrinsics'][index], hw)
    teacher = str(tmp_path / 'teacher.safetensors')
    save_file({'depth': gt['depth'][index] * 0.5, 'pose_enc': pose_enc, 'metric_scale': torch.tensor(2.0)}, teacher,
              metadata={'frame_indices': '[1, 2, 3]', 'image_hw': str(list(hw))})
    assert load_geometry(teacher)['frame_indices'].tolist() == index
    png = visualize.main(['--scene', scene_dir, '--teacher', teacher, '--out-dir', str(tmp_path), '--name', 'pair',
                          '--backend', 'matplotlib', '--panel-size', '200', '160'])[0]
    image = check_png(png)
    assert image.shape[1] == 400  # two panels
    # each half is drawn
    for half in (image[:, :200], image[:, 200:]):
        assert (half[..., :3] < 0.95).any(-1).mean() > 0.005


def test_png_auto_backend(tmp_path, scene_dir, visualize, monkeypatch):
    """backend='auto' renders with whatever works here; without Open3D it falls back to matplotlib."""
    check_png(visualize.main(['--scene', scene_dir, '--out-dir', str(tmp_path), '--name', 'auto',
                              '--panel-size', '240', '180'])[0])
    monkeypatch.setitem(sys.modules, 'open3d', None)  # import open3d -> ImportError
    scene = build_scene_geometry(**{k: v for k, v in load_geometry(scene_dir).items()
                                    if k in ('depth', 'extrinsics', 'intrinsics')}, title='gt')
    path = str(tmp_path / 'fallback.png')
    assert render_panels([scene], path, backend='auto', panel_size=(240, 180)) == 'matplotlib'
    check_png(path)
    with pytest.raises(ImportError):
        render_panels([scene], path, backend='open3d')
    with pytest.raises(ValueError, match='choose one of'):
        render_panels([scene], path, backend='vtk')


def test_visualize_needs_an_input(tmp_path, visualize):
    with pytest.raises(SystemExit, match='Nothing to show'):
        visualize.main(['--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='geometry.safetensors'):
        load_geometry(str(tmp_path))
