"""Headless PNG renders of point clouds with camera frustums, several reconstructions side by side.

Backends: Open3D's legacy ``Visualizer(visible=False)`` (EGL off-screen rendering when there is no display), or
matplotlib's 3D axes. ``backend='auto'`` tries Open3D and falls back to matplotlib with a logged warning when Open3D
is not importable or cannot create an off-screen context. Open3D is imported only here, lazily, so it never enters
the training path. Every panel is seen from the same viewpoint: behind and above camera 0 (panels are expected in
camera 0's frame, see :func:`~geokit.visualization.pointcloud.build_scene_geometry`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.logging import print_log

from geokit.evaluation.records import save_figure_atomic
from geokit.visualization.pointcloud import SceneGeometry

BACKENDS = ('auto', 'open3d', 'matplotlib')
#: Direction from the look-at point to the eye, in camera-0 coordinates (x right, y down, z forward): above, behind.
VIEW_FRONT = np.array([0.0, -0.8, -1.0])
VIEW_UP = np.array([0.0, -1.0, 0.0])


def _robust_bounds(points: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if points.shape[0] == 0:
        return -np.ones(3), np.ones(3)
    sample = points if points.shape[0] <= 100_000 else points[:: points.shape[0] // 100_000 + 1]
    low = torch.quantile(sample.float(), 0.01, dim=0).numpy()
    high = torch.quantile(sample.float(), 0.99, dim=0).numpy()
    return low, np.maximum(high, low + 1e-3)


def render_open3d(scenes: Sequence[SceneGeometry], width: int = 480, height: int = 360,
                  point_size: float = 2.0) -> list[np.ndarray]:
    """Render scenes off-screen with Open3D (one window, reused); returns ``(height, width, 3)`` uint8 images.

    Raises:
        ImportError / OSError: Open3D (or a system library it needs, e.g. libusb-1.0) is missing.
        RuntimeError: no off-screen context could be created, or a render came back blank.
    """
    import open3d as o3d

    visualizer = o3d.visualization.Visualizer()
    if not visualizer.create_window(visible=False, width=width, height=height):
        raise RuntimeError('Open3D could not create an off-screen window (no display and no EGL).')
    images = []
    try:
        for scene in scenes:
            visualizer.clear_geometries()
            low, high = _robust_bounds(torch.cat([scene.points, scene.frustum_vertices]))
            # Open3D frames the view on the full bounding box: drop far outliers (e.g. sky or noisy teacher depth)
            margin = 0.1 * (high - low)
            inside = ((scene.points.numpy() >= low - margin) & (scene.points.numpy() <= high + margin)).all(1)
            cloud = o3d.geometry.PointCloud()
            cloud.points = o3d.utility.Vector3dVector(scene.points.double().numpy()[inside])
            cloud.colors = o3d.utility.Vector3dVector(scene.colors.double().numpy()[inside])
            lines = o3d.geometry.LineSet()
            lines.points = o3d.utility.Vector3dVector(scene.frustum_vertices.double().numpy())
            lines.lines = o3d.utility.Vector2iVector(scene.frustum_edges.int().numpy())
            lines.colors = o3d.utility.Vector3dVector(scene.frustum_colors.double().numpy())
            visualizer.add_geometry(cloud)
            visualizer.add_geometry(lines)
            option = visualizer.get_render_option()
            option.point_size = point_size
            option.background_color = np.ones(3)
            visualizer.reset_view_point(True)  # the window is reused: fit the view to this scene's geometry
            control = visualizer.get_view_control()
            control.set_lookat((low + high) / 2)
            control.set_front(VIEW_FRONT / np.linalg.norm(VIEW_FRONT))
            control.set_up(VIEW_UP)
            control.set_zoom(0.9)
            visualizer.poll_events()
            visualizer.update_renderer()
            image = np.asarray(visualizer.capture_screen_float_buffer(do_render=True))
            if image.size == 0 or float(image.std()) == 0.0:
                raise RuntimeError('Open3D rendered a blank image (the off-screen context does not draw).')
            images.append((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    finally:
        visualizer.destroy_window()
    return images


def draw_matplotlib(axis, scene: SceneGeometry, point_size: float = 0.6) -> None:
    """Draw a scene into a matplotlib 3D axis, seen from behind and above camera 0 (z up on screen)."""
    def display(p: torch.Tensor) -> np.ndarray:  # camera-0 (x right, y down, z forward) -> (x, z, -y)
        p = p.double().numpy()
        return np.stack([p[:, 0], p[:, 2], -p[:, 1]], 1)

    points, vertices = display(scene.points), display(scene.frustum_vertices)
    axis.scatter(points[:, 0], points[:, 1], points[:, 2], c=scene.colors.numpy(), s=point_size, linewidths=0,
                 depthshade=False)
    for (start, end), color in zip(scene.frustum_edges.tolist(), scene.frustum_colors.numpy()):
        segment = vertices[[start, end]]
        axis.plot(segment[:, 0], segment[:, 1], segment[:, 2], color=color, linewidth=0.8)
    low, high = _robust_bounds(torch.from_numpy(np.concatenate([points, vertices])))
    axis.set_xlim(low[0], high[0])
    axis.set_ylim(low[1], high[1])
    axis.set_zlim(low[2], high[2])
    axis.set_box_aspect(tuple(high - low))
    elevation = np.degrees(np.arctan2(-VIEW_FRONT[1], -VIEW_FRONT[2]))
    axis.view_init(elev=elevation, azim=-90)
    axis.set_axis_off()


def render_panels(scenes: Sequence[SceneGeometry], path: str, backend: str = 'auto',
                  panel_size: tuple[int, int] = (480, 360), title: str | None = None) -> str:
    """Render scenes side by side (each panel titled) into a PNG, headless.

    Args:
        scenes: one :class:`SceneGeometry` per panel (e.g. ground truth, teacher, prediction).
        path: output ``.png`` (written atomically).
        backend: ``'auto'`` (Open3D, else matplotlib with a warning), ``'open3d'`` or ``'matplotlib'``.
        panel_size: ``(width, height)`` of a panel in pixels.
    Returns:
        The backend that rendered (``'open3d'`` or ``'matplotlib'``).
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend={backend!r}; choose one of {BACKENDS}.')
    from matplotlib.figure import Figure  # no pyplot: no global backend state, works headless

    width, height = panel_size
    dpi = 100
    images = None
    if backend in ('auto', 'open3d'):
        try:
            images = render_open3d(scenes, width, height)
            backend = 'open3d'
        except Exception as error:  # noqa: BLE001 - any Open3D failure means: use the fallback renderer
            if backend == 'open3d':
                raise
            print_log(f'Open3D rendering unavailable ({type(error).__name__}: {error}); rendering with matplotlib.',
                      logger='current', level=logging.WARNING)
    extra = 0.35 if title else 0.0
    figure = Figure(figsize=(width * len(scenes) / dpi, height / dpi + 0.3 + extra), dpi=dpi)
    for index, scene in enumerate(scenes):
        if images is not None:
            axis = figure.add_subplot(1, len(scenes), index + 1)
            axis.imshow(images[index])
            axis.set_axis_off()
        else:
            axis = figure.add_subplot(1, len(scenes), index + 1, projection='3d')
            draw_matplotlib(axis, scene)
        axis.set_title(scene.title, fontsize=10)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if not title else 0.84, wspace=0.02)
    save_figure_atomic(figure, path, dpi=dpi, facecolor='white')
    return 'open3d' if images is not None else 'matplotlib'
