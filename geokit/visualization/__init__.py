"""Visualisation: coloured point clouds with camera frustums, PLY export, headless PNG renders, logging backends.

Open3D is optional and imported lazily by :func:`render_panels` only (never on the training path).
"""
from geokit.visualization.io import load_geometry
from geokit.visualization.log_backends import GeoKitVisualizer, logging_backends
from geokit.visualization.ply import read_ply, write_ply
from geokit.visualization.pointcloud import (
    SceneGeometry,
    build_scene_geometry,
    camera_frustums,
    depth_colormap,
    depth_to_colored_points,
    first_frame_extrinsics,
    resize_frames,
)
from geokit.visualization.render import draw_matplotlib, render_open3d, render_panels

__all__ = ['GeoKitVisualizer', 'SceneGeometry', 'build_scene_geometry', 'camera_frustums', 'depth_colormap',
           'depth_to_colored_points', 'draw_matplotlib', 'first_frame_extrinsics', 'load_geometry', 'logging_backends',
           'read_ply', 'render_open3d', 'render_panels', 'resize_frames', 'write_ply']
